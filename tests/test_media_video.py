"""Video IO: decoding in display orientation, timestamps, frame-accurate seeks, clear errors on bad files."""

from __future__ import annotations

import numpy as np
import pytest

from pvtt.errors import BadInput
from pvtt.media.video import VideoWriter, iter_frames, probe, read_video, write_video
from pvtt.testmedia import panning_frames, textured_background
from pvtt.testmedia import write_video as write_test_video


@pytest.fixture
def ramp_video(tmp_path):
    """20 fps, 30 frames; frame i has mean brightness close to 8 * i, so frames can be identified."""
    frames = np.stack([np.full((32, 48, 3), 8 * i, np.uint8) for i in range(30)])
    return write_test_video(tmp_path / "ramp.mp4", frames, fps=20)


def test_probe_reports_size_rate_and_length(ramp_video):
    info = probe(ramp_video)
    assert (info.width, info.height) == (48, 32)
    assert info.fps == pytest.approx(20.0)
    assert info.estimated_frames == 30


def test_seek_is_frame_accurate(ramp_video):
    got = list(iter_frames(ramp_video, start=0.5, end=0.75))
    times = [t for t, _ in got]
    assert times == pytest.approx([0.5, 0.55, 0.6, 0.65, 0.7])
    assert [round(float(f.mean()) / 8) for _, f in got] == [10, 11, 12, 13, 14]


def test_rotation_metadata_is_applied(tmp_path):
    frames = np.zeros((5, 32, 64, 3), np.uint8)
    frames[:, :, :16] = 255  # a white band on the left of the stored frame
    path = write_test_video(tmp_path / "rot.mp4", frames, rotation=90)
    info = probe(path)
    assert (info.width, info.height, info.rotation) == (32, 64, 90)
    decoded, _ = read_video(path)
    assert decoded.shape == (5, 64, 32, 3)
    # rotated 90 degrees counter-clockwise: the left band ends up at the bottom
    assert decoded[0, -10:].mean() > 200 and decoded[0, :40].mean() < 30


def test_variable_frame_rate_timestamps_are_kept(tmp_path):
    times = [0.0, 0.02, 0.1, 0.13, 0.3, 0.31, 0.5]
    frames = np.stack([np.full((16, 16, 3), 30 * i, np.uint8) for i in range(len(times))])
    path = write_test_video(tmp_path / "vfr.mp4", frames, times=times)
    assert [t for t, _ in iter_frames(path)] == pytest.approx(times, abs=1e-3)


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty"), (b"this is not a video\n" * 50, "not a readable video")],
    ids=["zero-bytes", "text-file"],
)
def test_broken_files_raise_bad_input(tmp_path, content, message):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(BadInput, match=message):
        probe(path)


def test_missing_file_raises_bad_input(tmp_path):
    with pytest.raises(BadInput, match="not found"):
        probe(tmp_path / "nope.mp4")


def test_truncated_video_is_an_error_not_a_crash(tmp_path):
    frames = panning_frames(textured_background(128, 128, 1), 40, 64, 64)
    path = write_test_video(tmp_path / "full.mp4", frames)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInput):
        read_video(cut)  # either the header or the payload is gone: both are reported as BadInput


def test_resolution_guard(ramp_video):
    with pytest.raises(BadInput, match="exceeds the limit"):
        probe(ramp_video, max_pixels=100)


def test_write_then_read_round_trip(tmp_path):
    frames = panning_frames(textured_background(96, 96, 2), 12, 48, 64)
    write_video(tmp_path / "out.mp4", frames, fps=12.5, crf=10)
    decoded, fps = read_video(tmp_path / "out.mp4")
    assert decoded.shape == frames.shape and fps == pytest.approx(12.5)
    assert np.abs(decoded.astype(int) - frames).mean() < 4


def test_writer_rejects_wrong_frames(tmp_path):
    with pytest.raises(ValueError, match="even"):
        VideoWriter(tmp_path / "x.mp4", 20, 33, 32)
    with VideoWriter(tmp_path / "y.mp4", 20, 32, 32) as writer, pytest.raises(ValueError, match="shape"):
        writer.write(np.zeros((16, 16, 3), np.uint8))


def test_truncated_payload_with_intact_header_is_detected(tmp_path):
    """A 'faststart' MP4 cut in half still opens and decodes without an FFmpeg error; the frame count tells."""
    import av

    frames = panning_frames(textured_background(256, 256, 1), 60, 128, 128)
    path = tmp_path / "faststart.mp4"
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=20)
        stream.width, stream.height, stream.pix_fmt = 128, 128, "yuv420p"
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    assert probe(cut).num_frames == 60  # the header survived
    with pytest.raises(BadInput, match="truncated: decoded"):
        read_video(cut)


def test_the_encoders_yuv_is_integer_bt601_with_2x2_chroma():
    """The frames handed to libx264 are converted here, in integers (FFmpeg's swscale rounds differently on different
    CPUs: the same clip encoded on CI and on the development VM came out different). Checked against the BT.601
    limited-range formulas written out plainly, and against swscale's luma, which agrees to a level."""
    import av

    from pvtt.media.video import rgb_to_yuv420p

    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    c = rgb.astype(np.int64)
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16
    r4, g4, b4 = (p.reshape(24, 2, 32, 2).sum(axis=(1, 3)) for p in (r, g, b))
    u = ((-38 * r4 - 74 * g4 + 112 * b4 + 512) >> 10) + 128
    v = ((112 * r4 - 94 * g4 - 18 * b4 + 512) >> 10) + 128
    want = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(72, 64)
    got = rgb_to_yuv420p(rgb)
    assert got.dtype == np.uint8 and np.array_equal(got, want)
    black, white = np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 255, np.uint8)
    assert rgb_to_yuv420p(black).ravel().tolist() == [16] * 4 + [128, 128]  # limited range
    assert rgb_to_yuv420p(white).ravel().tolist() == [235] * 4 + [128, 128]
    swscale = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()
    assert np.abs(swscale[:48].astype(int) - got[:48]).max() <= 1


def test_written_frames_come_back_within_a_few_levels(tmp_path):
    """Encoded from the integer YUV and decoded by FFmpeg (which assumes BT.601 limited range), a smooth frame comes
    back within a few levels: the colours are not shifted by a range or matrix mismatch."""
    yy, xx = np.mgrid[:64, :96]
    frame = np.stack([xx * 2, yy * 3, 255 - xx * 2], -1).clip(0, 255).astype(np.uint8)
    write_video(tmp_path / "ramp.mp4", np.repeat(frame[None], 4, 0), fps=10, crf=0)
    back, _ = read_video(tmp_path / "ramp.mp4")
    assert np.abs(back.astype(int) - frame).mean() < 1.5
    assert np.abs(back.astype(int) - frame).max() <= 8  # chroma is shared by 2x2 pixels


def test_the_same_frames_give_the_same_file_every_time(tmp_path):
    """libx264's AVX-512 code gave a different stream for the same frames from one encode to the next (this small pan,
    encoded 200 times in one process on the development VM: 3-40 different files; with the writer's
    ``asm=avx2``: one). On a CPU without AVX-512 the writer passes nothing and this holds anyway."""
    import hashlib

    frames = panning_frames(textured_background(256, 256, 1, detail=0.5), 16, 64, 64)
    path = tmp_path / "pan.mp4"
    for write in (write_video, write_test_video):  # the second writes the demo's templates
        files = set()
        for _ in range(100):
            write(path, frames, fps=24)
            files.add(hashlib.md5(path.read_bytes()).hexdigest())
        assert len(files) == 1, write.__module__


def test_libx264_is_kept_off_avx512_only_where_the_cpu_has_it():
    from pvtt.media.video import x264_params

    assert x264_params({"AVX2": True, "AVX512F": True, "AVX512BW": True}) == "asm=avx2"
    assert x264_params({"AVX2": True, "AVX512F": False}) == ""  # an AVX2 CPU: libx264 picks its own code
    assert x264_params({"NEON": True}) == ""  # not x86: `asm=avx2` would be an unknown name there
    assert x264_params({}) == ""
