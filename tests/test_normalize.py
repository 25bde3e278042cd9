"""Shots and normalize: cuts found where they are, fps resampled by time, sizes and windows as configured."""

from __future__ import annotations

import numpy as np
import pytest

from pvtt.config import MediaSettings, NormalizeSettings, ShotSettings
from pvtt.errors import RejectItem
from pvtt.media.video import decode_frames, read_video
from pvtt.normalize import normalize_video, output_size
from pvtt.shots import detect_shots
from pvtt.testmedia import multi_shot_video, write_video


@pytest.mark.parametrize(
    "size, expected",
    [((1280, 720), (1280, 720)), ((720, 1280), (720, 1280)), ((1080, 1080), (720, 720)),
     ((1280, 1024), (896, 720)), ((736, 800), (720, 784)), ((360, 640), (720, 1280)), ((101, 67), (1088, 720))],
)
def test_output_size_short_side_and_multiples(size, expected):
    out = output_size(*size, NormalizeSettings())
    assert out == expected
    assert out[0] % 16 == 0 and out[1] % 16 == 0


def test_output_size_without_upscale_keeps_small_videos_small():
    assert output_size(360, 640, NormalizeSettings(allow_upscale=False)) == (352, 624)


def test_detect_shots_finds_hard_cuts(tmp_path):
    path = multi_shot_video(tmp_path / "cuts.mp4", [30, 25, 35], fps=20)
    shots = detect_shots(path, ShotSettings(min_gap=0.3))
    assert [s.start_frame for s in shots] == [0, 30, 55]
    assert shots[-1].end_frame == 90
    assert shots[1].start == pytest.approx(1.5)


NO_LEAD_IN = dict(skip_flat_start=False, skip_fade_in=False, skip_title_cards=False)


def _settings(**norm):
    base = dict(fps=10, short_side=64, max_frames=101, min_frames=2)
    base.update(norm)
    return ShotSettings(min_gap=0.3, min_duration=0.5), NormalizeSettings(**base), MediaSettings(preset="ultrafast")


def test_normalize_splits_resamples_and_windows(tmp_path):
    path = multi_shot_video(tmp_path / "v.mp4", [40, 8, 30], fps=20, height=48, width=64)
    shots, norm, media = _settings(max_frames=8, windows="all", min_frames=3)
    result = normalize_video(path, tmp_path / "out", "v", shots, norm, media)
    assert [(s.start_frame, s.end_frame) for s in result.shots] == [(0, 40), (40, 48), (48, 78)]
    # shot 0: 2 s at 10 fps = 20 frames -> windows 8, 8, 4; shot 1 (0.4 s) is dropped; shot 2: 15 -> 8, 7
    assert [(c.clip_id, c.num_frames) for c in result.clips] == [
        ("v-s00-w00", 8), ("v-s00-w01", 8), ("v-s00-w02", 4), ("v-s02-w00", 8), ("v-s02-w01", 7)]
    frames, fps = read_video(result.clips[0].path)
    assert frames.shape == (8, 64, 80, 3) and fps == pytest.approx(10)
    assert result.clips[3].start_time == pytest.approx(2.4)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(f"{c.clip_id}.mp4" for c in result.clips)


def test_first_window_policy_keeps_one_window_per_shot(tmp_path):
    path = multi_shot_video(tmp_path / "v.mp4", [40, 30], fps=20, height=48, width=64)
    shots, norm, media = _settings(max_frames=8, windows="first")
    result = normalize_video(path, tmp_path / "out", "v", shots, norm, media)
    assert [(c.clip_id, c.num_frames) for c in result.clips] == [("v-s00-w00", 8), ("v-s01-w00", 8)]


def test_known_cuts_give_the_same_clips_as_detection(tmp_path):
    path = multi_shot_video(tmp_path / "v.mp4", [30, 30], fps=20, height=48, width=64)
    shots, norm, media = _settings()
    detected = normalize_video(path, tmp_path / "a", "v", shots, norm, media)
    known = normalize_video(path, tmp_path / "b", "v", shots, norm, media, known_cuts=[30])
    assert [(c.clip_id, c.num_frames) for c in detected.clips] == [(c.clip_id, c.num_frames) for c in known.clips]
    a, _ = read_video(detected.clips[1].path)
    b, _ = read_video(known.clips[1].path)
    assert np.array_equal(a, b)


def test_variable_frame_rate_is_resampled_by_time(tmp_path):
    # frame i shown from times[i]; its brightness identifies it
    times = [0.0, 0.05, 0.3, 0.35, 0.4, 0.9, 1.0, 1.05, 1.5, 1.95]
    frames = np.stack([np.full((48, 64, 3), 20 + 22 * i, np.uint8) for i in range(len(times))])
    path = write_video(tmp_path / "vfr.mp4", frames, times=times)
    shots, norm, media = _settings(fps=10, **NO_LEAD_IN)  # the frames are flat and brighten on purpose
    clip = normalize_video(path, tmp_path / "out", "v", shots, norm, media).clips[0]
    decoded, _ = read_video(clip.path)
    picked = [int(round((f.mean() - 20) / 22)) for f in decoded]
    ticks = np.arange(len(picked)) / 10
    expected = [int(np.argmin(np.abs(np.array(times) - t))) for t in ticks]
    assert picked == expected
    # 0 .. 1.95 s, plus the last frame shown for one average frame period (the container does not say more)
    assert 20 <= len(picked) <= 22


def test_only_short_shots_is_a_rejection_with_the_numbers(tmp_path):
    path = multi_shot_video(tmp_path / "v.mp4", [5], fps=20, height=48, width=64)
    shots, norm, media = _settings()
    with pytest.raises(RejectItem, match=r"no usable shot: 1 shot\(s\) from 5 frame\(s\), longest 0.25s"):
        normalize_video(path, tmp_path / "out", "v", shots, norm, media)
    assert list((tmp_path / "out").iterdir()) == []  # nothing half-written left behind


def test_real_template_normalizes_to_spec(dev_data, tmp_path):
    shots, media = ShotSettings(), MediaSettings(preset="ultrafast")
    result = normalize_video(dev_data / "videos/jewelry/JEW002.mp4", tmp_path, "JEW002", shots,
                             NormalizeSettings(), media)
    assert len(result.shots) >= 2  # the template has several shots
    first = result.clips[0]
    assert (first.width, first.height, first.num_frames, first.fps) == (896, 720, 101, 20.0)
    frames, _ = read_video(first.path)
    assert frames.shape == (101, 720, 896, 3)


@pytest.mark.parametrize("caption", [False, True], ids=["plain-fade", "fade-under-a-caption"])
def test_a_fade_in_from_black_is_skipped(tmp_path, caption):
    import cv2

    from pvtt.testmedia import panning_frames, textured_background

    frames = panning_frames(textured_background(96, 128, 5), 40, 48, 64).astype(np.float32)
    frames[:10] *= np.linspace(0.0, 0.9, 10)[:, None, None, None]  # a 0.5 s fade-in from black
    frames = frames.astype(np.uint8)
    if caption:  # burnt-in text that stays on screen through the fade (so no frame of it is flat)
        for frame in frames:
            cv2.rectangle(frame, (4, 4), (60, 16), (255, 255, 255), -1)
            cv2.putText(frame, "SALE", (8, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (20, 20, 20), 1, cv2.LINE_AA)
    path = write_video(tmp_path / "fade.mp4", frames, fps=20)
    shots, norm, media = _settings(fps=20)
    result = normalize_video(path, tmp_path / "out", "v", shots, norm, media)
    assert len(result.shots) == 1  # a fade is not a cut
    clip = result.clips[0]
    decoded, _ = read_video(clip.path)
    # flat frames first (unless the caption is there), then frames darker than 0.75 of what the next second reaches
    assert set(clip.lead_in) == ({"fade-in"} if caption else {"flat", "fade-in"})
    # a bright caption adds the same luma to every frame, so the fade reads as done a little earlier
    assert (0.2 <= clip.start_time <= 0.4) if caption else clip.start_time == pytest.approx(0.4)
    assert clip.num_frames == 40 - round(clip.start_time * 20) and decoded[0].mean() >= 0.75 * decoded[-1].mean()
    flat_only = normalize_video(path, tmp_path / "out2", "v", shots, _settings(fps=20, skip_fade_in=False)[1],
                                media).clips[0]
    if caption:
        assert flat_only.start_time == 0.0  # what the flat test alone did: the clip opened on the caption over black
    else:
        assert 0.05 <= flat_only.start_time < 0.4 and set(flat_only.lead_in) == {"flat"}  # mid-fade
    kept = normalize_video(path, tmp_path / "out3", "v", shots, _settings(fps=20, **NO_LEAD_IN)[1], media).clips[0]
    assert kept.num_frames == 40 and kept.start_time == 0.0 and kept.lead_in == {}


def _title_card(gradient: bool, height: int = 144, width: int = 192) -> np.ndarray:
    """White text drawn with cv2.putText on a flat navy background or a pink-to-orange vertical gradient."""
    import cv2

    if gradient:
        t = np.linspace(0.0, 1.0, height)[:, None, None]
        card = np.broadcast_to(np.array([200, 60, 90]) * (1 - t) + np.array([250, 170, 60]) * t, (height, width, 3))
    else:
        card = np.broadcast_to(np.array([30, 40, 110]), (height, width, 3))
    card = np.ascontiguousarray(card, np.uint8)
    cv2.putText(card, "NEW IN", (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2, cv2.LINE_AA)
    cv2.putText(card, "spring collection", (20, 95), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return card


def _footage(frames: int, height: int = 144, width: int = 192) -> np.ndarray:
    from pvtt.testmedia import panning_frames, textured_background

    return panning_frames(textured_background(2 * height, 2 * width, 4, detail=3), frames, height, width, (2.0, 1.0))


def _studio(frames: int, still: int, height: int = 144, width: int = 192) -> np.ndarray:
    """The demo mug on a plain light backdrop (soft falloff, faint noise): still for ``still`` frames, then sliding."""
    from pvtt.demo import draw_product

    rng = np.random.default_rng(0)
    mug = draw_product(0, 60, 0)
    alpha, (ph, pw) = mug[..., 3:4] / 255.0, mug.shape[:2]
    backdrop = np.full((height, width, 3), 215.0) * np.linspace(1.0, 0.9, height)[:, None, None]
    out = np.empty((frames, height, width, 3), np.uint8)
    for i in range(frames):
        frame = backdrop + rng.normal(0, 0.3, backdrop.shape)
        x0 = 30 + 2 * max(0, i - still)
        frame[40:40 + ph, x0:x0 + pw] = frame[40:40 + ph, x0:x0 + pw] * (1 - alpha) + mug[..., :3] * alpha
        out[i] = np.clip(frame, 0, 255).astype(np.uint8)
    return out


@pytest.mark.parametrize("gradient", [False, True], ids=["flat-card", "gradient-card"])
def test_a_title_card_is_not_the_first_frame(tmp_path, gradient):
    card = np.repeat(_title_card(gradient)[None], 30, axis=0)
    footage = _footage(40)
    shots, norm, media = _settings(fps=20, short_side=96)
    # 1. the card dissolves into the footage (no cut): the card and the card-like half of the dissolve go
    blend = np.linspace(0.0, 1.0, 10)[:, None, None, None]
    dissolve = (card[:10] * (1 - blend) + footage[:10] * blend).astype(np.uint8)
    path = write_video(tmp_path / "dissolve.mp4", np.concatenate([card[:20], dissolve, footage[10:]]), fps=20)
    result = normalize_video(path, tmp_path / "a", "v", shots, norm, media)
    assert len(result.shots) == 1 and len(result.clips) == 1
    clip = result.clips[0]
    assert set(clip.lead_in) == {"title card"} and 1.0 <= clip.start_time <= 1.5, clip
    # 2. a hard cut: the card is a shot of its own, dropped with the reason; the footage starts at the cut
    path = write_video(tmp_path / "cut.mp4", np.concatenate([card, footage]), fps=20)
    result = normalize_video(path, tmp_path / "b", "v", shots, norm, media)
    assert [(s.start_frame, s.end_frame) for s in result.shots] == [(0, 30), (30, 70)]
    assert result.dropped == ["shot 0: all 30 frame(s) are lead-in (still plain 30)"]
    assert [(c.clip_id, c.start_time, c.num_frames, c.lead_in) for c in result.clips] == [("v-s01-w00", 1.5, 40, {})]
    # 3. with the card test off, the card stays
    kept = normalize_video(path, tmp_path / "c", "v", shots, _settings(fps=20, short_side=96,
                           skip_title_cards=False)[1], media)
    assert [c.clip_id for c in kept.clips] == ["v-s00-w00", "v-s01-w00"]


@pytest.mark.parametrize("still", [0, 15], ids=["moving", "still-then-moving"])
def test_a_product_on_a_plain_backdrop_keeps_its_start(tmp_path, still):
    """Mostly plain frames, but no card: a product that moves, or stands still until it moves (nothing replaces it)."""
    from pvtt.leadin import look

    path = write_video(tmp_path / "studio.mp4", _studio(60, still), fps=20)
    shots, norm, media = _settings(fps=20, short_side=96)
    first = look(next(decode_frames(path))[1])
    assert first.plain > norm.card_plain  # as plain as a card: only stillness and replacement tell them apart
    result = normalize_video(path, tmp_path / "out", "v", shots, norm, media)
    assert [(c.start_time, c.num_frames, c.lead_in) for c in result.clips] == [(0.0, 60, {})]
    assert result.dropped == []


def test_a_small_product_on_a_white_backdrop_is_no_flat_frame(tmp_path):
    """A thin bracelet on a white studio backdrop: the frame's luma varies as little as a blank frame's, but its edges
    are no plain blocks, so it is content. Blank white frames before it are still dropped."""
    import cv2

    from pvtt.leadin import look

    rng = np.random.default_rng(5)
    frames = []
    for i in range(40):
        frame = np.full((96, 128, 3), 215.0) + rng.normal(0, 0.5, (96, 128, 3))
        cv2.circle(frame, (30 + 2 * i, 50), 20, (160, 150, 150), 1, cv2.LINE_AA)  # the bracelet drifts right
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    blank = [np.full((96, 128, 3), 230, np.uint8)] * 10
    shots, norm, media = _settings(fps=20, short_side=96)
    path = write_video(tmp_path / "bracelet.mp4", np.stack(frames), fps=20)
    first = look(next(decode_frames(path))[1])
    assert first.std < norm.flat_threshold  # as low as a blank frame's
    result = normalize_video(path, tmp_path / "a", "v", shots, norm, media)
    assert [(c.start_time, c.num_frames, c.lead_in) for c in result.clips] == [(0.0, 40, {})]
    path = write_video(tmp_path / "blank_first.mp4", np.stack(blank + frames), fps=20)
    result = normalize_video(path, tmp_path / "b", "v", shots, norm, media)
    assert [(c.start_time, c.num_frames, c.lead_in) for c in result.clips] == [(0.5, 40, {"flat": 10})]
