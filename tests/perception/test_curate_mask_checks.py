"""curate's mask-drift and given-box checks on generated masks and tracks with a known answer."""

from __future__ import annotations

import numpy as np

from pvtt.curate import CurateSettings
from pvtt.curate.metrics import box_cover, mask_drift
from pvtt.types import Box, Masks, Tracks


def _square_masks(sizes: list[int], frame: int = 200) -> Masks:
    data = np.zeros((len(sizes), frame, frame), bool)
    for t, s in enumerate(sizes):
        data[t, 100 - s // 2:100 + s // 2, 100 - s // 2:100 + s // 2] = True
    return Masks(data, np.ones(len(sizes), np.float32))


def _tracks(scales: list[float]) -> Tracks:
    base = np.array([[-20, -20], [20, -20], [20, 20], [-20, 20], [0, 10], [10, 0]], np.float32)
    points = np.stack([100 + base * s for s in scales])
    return Tracks(points, np.ones(points.shape[:2], bool))


def test_a_mask_that_grows_with_its_points_does_not_drift():
    # a zoom: side 40 -> 60 and the points spread 1.5x: area 2.25x = scale^2
    drift = mask_drift(_square_masks([40, 50, 60]), _tracks([1.0, 1.25, 1.5]))
    assert abs(drift["mask_drift"] - 1.0) < 0.05 and drift["drift_frames"] == 2


def test_a_mask_that_grows_while_its_points_stay_drifts():
    drift = mask_drift(_square_masks([40, 50, 60]), _tracks([1.0, 1.0, 1.0]))
    assert abs(drift["mask_drift"] - 2.25) < 0.05
    assert drift["mask_drift"] > CurateSettings().max_mask_drift


def test_drift_is_not_measured_without_enough_points():
    tracks = _tracks([1.0, 1.0, 1.0])
    tracks.visible[1:, 2:] = False  # only 2 of frame 0's points left
    assert mask_drift(_square_masks([40, 50, 60]), tracks) == {"mask_drift": 1.0, "drift_frames": 0.0}


def test_box_cover_is_the_iou_of_the_masks_box_with_the_given_box():
    masks = _square_masks([40])  # 80..120 on both axes
    assert box_cover(masks, Box(80, 80, 120, 120))["box_iou"] == 1.0
    half = box_cover(masks, Box(80, 80, 120, 160))["box_iou"]  # the mask covers the box's top half only
    assert abs(half - 0.5) < 1e-6 and half < CurateSettings().min_box_iou


def test_box_fill_is_the_share_of_the_given_box_in_the_mask():
    masks = _square_masks([40])  # 80..120 on both axes
    assert box_cover(masks, Box(80, 80, 120, 120))["box_fill"] == 1.0
    assert abs(box_cover(masks, Box(60, 60, 140, 140))["box_fill"] - 0.25) < 1e-6
    beads = np.zeros((1, 200, 200), bool)  # a few small pieces spread over the box: its box spans it, little is in
    for x, y in [(20, 20), (170, 30), (30, 170), (175, 175)]:
        beads[0, y:y + 8, x:x + 8] = True
    cover = box_cover(Masks(beads, np.ones(1, np.float32)), Box(20, 20, 183, 183))
    assert cover["box_iou"] > CurateSettings().min_box_iou
    assert cover["box_fill"] < CurateSettings().min_box_fill


def test_decode_damage_is_rows_of_stripes_not_texture_or_a_shelf_edge(panning_clip):
    """A frame whose lower rows are stripes of unrelated colours (decode damage at a shot's first frame, as in
    SHOE003's clips) is found; textured footage and a sharp horizontal edge are not; and curate names the frame."""
    from pvtt.curate import curate
    from pvtt.curate.metrics import striped_rows
    from pvtt.types import Clip

    frame = panning_clip.frames[0].copy()
    assert striped_rows(frame) == 0.0  # texture: as busy along the rows as across them
    shelf = frame.copy()
    shelf[120:] = (shelf[120:] * 0.3).astype(np.uint8)  # a dark shelf below a hard horizontal edge
    assert striped_rows(shelf) < 0.03
    rng = np.random.default_rng(1)
    damaged = frame.copy()
    damaged[180:230] = rng.integers(0, 256, (50, 1, 3), dtype=np.uint8)  # one colour per row, rows unrelated
    assert striped_rows(damaged) > 0.15

    frames = panning_clip.frames.copy()
    frames[0] = damaged
    masks = Masks(np.zeros(frames.shape[:3], bool))
    masks.data[:, 80:160, 100:200] = True
    no_points = Tracks(np.zeros((len(frames), 0, 2), np.float32), np.zeros((len(frames), 0), bool))
    bad = curate(Clip("damaged", frames, panning_clip.fps), masks, no_points, CurateSettings())
    assert any(r.startswith("damaged frames: 1 frame(s)") and "first at frame 0" in r for r in bad.reasons), \
        bad.reasons
    good = curate(panning_clip, masks, no_points, CurateSettings())
    assert not any(r.startswith("damaged frames") for r in good.reasons) and good.metrics["striped_frames"] == 0
    off = curate(Clip("damaged", frames, panning_clip.fps), masks, no_points, CurateSettings(max_striped_rows=1.0))
    assert not any(r.startswith("damaged frames") for r in off.reasons) and "striped_frames" not in off.metrics


def _horse(frames: int, floating: set[int]) -> Masks:
    """A rocker (a wide bar at the bottom) and, on the ``floating`` frames, a mane hanging above it with the body
    between them left out; on the others the body joins them (one piece)."""
    data = np.zeros((frames, 240, 320), bool)  # the panning clip's frame size
    data[:, 150:165, 40:160] = True  # rocker
    data[:, 60:80, 110:130] = True  # mane
    for t in set(range(frames)) - floating:
        data[t, 80:150, 60:140] = True  # the body joins them
    return Masks(data, np.ones(frames, np.float32))


def test_a_mask_whose_pieces_float_on_most_frames_is_rejected_and_a_frame_now_and_then_is_not(panning_clip):
    """TOYS012-s01's segmentation: the rockers and manes of two rocking horses, not their cream bodies, on every
    frame; a product that loses a thin part on one frame only (a bracelet's chain) stays."""
    from pvtt.curate import curate
    from pvtt.curate.metrics import mask_pieces
    from pvtt.types import Clip

    frames = len(panning_clip.frames)
    pieces = mask_pieces(_horse(frames, set(range(frames))))
    assert pieces["piece_lift"] > 0.5 and pieces["piece_lift_max"] == pieces["piece_lift"]
    assert mask_pieces(_horse(frames, {3}))["piece_lift"] == 0.0
    assert mask_pieces(_horse(frames, set()))["piece_lift_max"] == 0.0
    assert mask_pieces(Masks(np.zeros((4, 50, 50), bool))) == {"piece_lift": 0.0, "piece_lift_max": 0.0}

    clip = Clip("horse", panning_clip.frames, panning_clip.fps)
    no_points = Tracks(np.zeros((frames, 0, 2), np.float32), np.zeros((frames, 0), bool))
    bad = curate(clip, _horse(frames, set(range(frames))), no_points, CurateSettings())
    assert any(r.startswith("mask in floating pieces: on half its frames or more a piece of it hangs 0.")
               for r in bad.reasons), bad.reasons
    good = curate(clip, _horse(frames, {3}), no_points, CurateSettings())
    assert not any(r.startswith("mask in floating pieces") for r in good.reasons), good.reasons
    off = curate(clip, _horse(frames, set(range(frames))), no_points, CurateSettings(max_piece_lift=1.0))
    assert "piece_lift" not in off.metrics
