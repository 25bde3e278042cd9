"""Editing stages on generated cases with known truth (pvtt.bench.make)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from pvtt.compose import box_of_mask
from pvtt.cutout import CutoutSettings, make_cutter
from pvtt.erase import make_eraser
from pvtt.errors import RejectItem
from pvtt.insert import make_inserter
from pvtt.judge import JudgeSettings, judge
from pvtt.propagate import BACKENDS, PropagateResult, make_propagator
from pvtt.types import Masks, ProductImage, Tracks


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def _psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    mse = np.mean((a[mask].astype(float) - b[mask].astype(float)) ** 2)
    return float(10 * np.log10(255 ** 2 / max(mse, 1e-9)))


def test_cutout_matches_truth_alpha_on_plain_background(case, edited):
    cut = edited[0]
    truth = case.product_b[..., 3] > 127
    ys, xs = np.nonzero(truth)
    truth = truth[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    alpha = cut.rgba[..., 3] > 127
    ys, xs = np.nonzero(alpha)
    alpha = alpha[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    import cv2

    alpha = cv2.resize(alpha.astype(np.uint8), truth.shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
    assert _iou(alpha, truth) > 0.9
    assert not cut.low_confidence


def test_cutout_existing_alpha_used_as_is(case):
    cut = make_cutter().cut_out(ProductImage("b", case.product_b))
    assert cut.confidence == 1.0 and "existing alpha" in cut.notes


def test_cutout_rejects_a_blank_photo():
    blank = np.full((200, 200, 4), 250, np.uint8)
    with pytest.raises(RejectItem, match="no separable product"):
        make_cutter().cut_out(ProductImage("blank", blank))


def test_erase_recovers_the_background(case, edited):
    erased = edited[1]
    mask = case.masks_a.data
    before = _psnr(case.clip.frames, case.background, mask)
    after = _psnr(erased.frames, case.background, mask)
    assert after > 16.0 and after > before + 6
    assert erased.region.shape == mask.shape and (erased.region >= mask).all()
    outside = ~erased.region
    assert _psnr(erased.frames, case.clip.frames, outside) > 40  # untouched outside the region


def test_warp_puts_b_where_the_truth_says(case, edited):
    result = edited[3]
    assert isinstance(result, PropagateResult) and result.info["strategy"] == "warp"
    ious = [_iou(result.masks[t], case.masks_b[t]) for t in range(case.clip.num_frames)]
    assert min(ious) > 0.8, ious
    assert result.transforms.shape == (case.clip.num_frames, 3, 3)


def test_warp_occludes_b_where_a_was_occluded(occluded_case):
    c = occluded_case
    erased = make_eraser().erase(c.clip, c.masks_a)
    m0 = c.masks_a.data[0]
    inserted = make_inserter(cover_growth=1.0).insert(c.clip.frames[0], erased.frames[0], m0, box_of_mask(m0),
                                                      c.product_b)  # at A's area, as the truth
    result = make_propagator().propagate(c.clip, erased.frames, c.masks_a, c.tracks_a, inserted)
    ious = [_iou(result.masks[t], c.masks_b[t]) for t in range(c.clip.num_frames)]
    assert np.mean(ious) > 0.8, ious


def test_judge_keeps_a_good_edit_and_rejects_bad_ones(case, edited):
    cut, _, _, result = edited
    good = judge(case.clip.frames, result.frames, case.masks_a, result.masks, cut.rgba, case.tracks_a, JudgeSettings())
    assert good.verdict == "keep", good.reasons
    destroyed = result.frames.copy()
    destroyed[:, ::2] = 0
    bad = judge(case.clip.frames, destroyed, case.masks_a, result.masks, cut.rgba, case.tracks_a, JudgeSettings())
    assert bad.verdict == "reject" and any(r.startswith("background: psnr") for r in bad.reasons)
    t_count = case.clip.num_frames
    frozen = judge(case.clip.frames, np.repeat(result.frames[:1], t_count, 0), case.masks_a,
                   np.repeat(result.masks[:1], t_count, 0), cut.rgba, case.tracks_a, JudgeSettings())
    assert frozen.verdict == "reject" and any(r.startswith("motion:") for r in frozen.reasons), frozen.reasons


def test_insert_rejects_a_product_far_too_big_for_the_slot(case):
    frame = case.clip.frames[0]
    mask = np.zeros(frame.shape[:2], bool)
    mask[100:104, 20:200] = True  # a long thin slot
    tall = np.zeros((300, 40, 4), np.uint8)
    tall[..., :3], tall[..., 3] = 120, 255
    with pytest.raises(RejectItem, match=r"scale change .*limit"):
        make_inserter().insert(frame, frame, mask, box_of_mask(mask), tall)


def test_warp_rejects_tracks_lost_halfway(case, edited):
    inserted = edited[2]
    visible = case.tracks_a.visible.copy()
    half = case.clip.num_frames // 2
    visible[half:, 2:] = False
    tracks = Tracks(case.tracks_a.points, visible)
    with pytest.raises(RejectItem, match=f"tracks lost at frame {half}: 2 visible points, need 3"):
        make_propagator().propagate(case.clip, edited[1].frames, case.masks_a, tracks, inserted)


def test_backends_are_registered_and_picklable():
    assert {"warp", "motion-lora", "vace-depth", "vace-points", "auto"} <= set(BACKENDS)
    for obj in (make_cutter(CutoutSettings()), make_eraser(), make_inserter(), make_propagator()):
        assert pickle.loads(pickle.dumps(obj)).settings == obj.settings


def test_masks_type_accepted(case, edited):
    """Erase and propagate take segment's Masks (as `edited` passed them) or a bare (T, H, W) bool array alike."""
    assert isinstance(case.masks_a, Masks)
    _, erased, inserted, result = edited
    bare = case.masks_a.data
    assert np.array_equal(make_eraser().erase(case.clip, bare).frames, erased.frames)
    again = make_propagator().propagate(case.clip, erased.frames, bare, case.tracks_a, inserted)
    assert np.array_equal(again.frames, result.frames) and np.array_equal(again.masks, result.masks)
