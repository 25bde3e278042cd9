"""The bench's truth criterion: what a reviewer holding the true video with B would reject."""

from __future__ import annotations

import numpy as np

from pvtt.bench.run import truth_defects, truth_verdict


def _defects(case, edited, edited_b):
    return truth_defects(case.clip.frames, edited, case.video_b, case.masks_a.data, case.masks_b, edited_b)


def test_the_truth_itself_is_a_good_edit(case):
    metrics = _defects(case, case.video_b, case.masks_b)
    assert truth_verdict(metrics, 0.5) == [], metrics
    assert metrics["a_left"] < 0.02 and metrics["b_offset"] < 0.02 and metrics["b_missing"] < 0.02


def test_a_left_in_place_and_b_missing_are_rejected(case):
    metrics = _defects(case, case.clip.frames, np.zeros_like(case.masks_b))
    reasons = truth_verdict(metrics, 0.5)
    assert any(r.startswith("a_left") for r in reasons) and any(r.startswith("b_missing") for r in reasons), metrics


def test_b_shifted_off_the_truth_is_misplaced(case):
    shift = case.masks_b.shape[2] // 5
    moved = np.roll(case.masks_b, shift, axis=2)
    edited = np.where(moved[..., None], np.roll(case.video_b, shift, axis=2), case.background)
    reasons = truth_verdict(_defects(case, edited, moved), 0.5)
    assert any(r.startswith("b_offset") for r in reasons), reasons


def test_a_flat_fill_where_b_does_not_cover_is_a_smear(case):
    small_b = np.zeros_like(case.masks_b)
    edited = case.background.copy()
    for t in range(len(edited)):
        a = case.masks_a.data[t]
        edited[t][a] = case.background[t][a].reshape(-1, 3).mean(axis=0).astype(np.uint8)
    metrics = truth_defects(case.clip.frames, edited, case.background, case.masks_a.data, small_b, small_b)
    assert any(r.startswith("smear") for r in truth_verdict(metrics, 0.5)), metrics
    clean = truth_defects(case.clip.frames, case.background, case.background, case.masks_a.data, small_b, small_b)
    assert not any(r.startswith("smear") for r in truth_verdict(clean, 0.5)), clean


def test_a_failed_segmentation_is_always_bad():
    assert truth_verdict({"mask_iou": 0.08}, 0.5)[0].startswith("segmentation failed")
