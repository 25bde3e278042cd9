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
