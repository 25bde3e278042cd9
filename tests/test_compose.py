"""compose: regions, boxes and compositing shared by insert, propagate and judge."""

from __future__ import annotations

import numpy as np

from pvtt import compose
from pvtt.types import Box


def ellipse(h, w, cy, cx, ry, rx):
    yy, xx = np.mgrid[:h, :w]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


def test_silhouette_iou_ignores_position_and_scale_but_not_shape():
    small = ellipse(64, 64, 20, 20, 8, 4)
    big = ellipse(128, 128, 70, 60, 40, 20)
    wide = ellipse(64, 64, 32, 32, 6, 24)
    assert compose.silhouette_iou(small, big) > 0.8
    assert compose.silhouette_iou(small, wide) < 0.5


def test_edit_region_covers_b_box_moving_with_a():
    masks = np.zeros((3, 40, 40), bool)
    for t in range(3):
        masks[t, 10:20, 5 + 5 * t:15 + 5 * t] = True
    region = compose.edit_region(masks, Box(5, 5, 25, 20), dilate_px=0)
    assert region[0, 5:20, 5:25].all() and region[2, 5:20, 15:35].all()
    assert not region[2, 30:, :].any()



def test_a_wide_dilation_is_the_same_disc_as_the_kernels():
    """From DISTANCE_DILATE_MIN on, dilate grows by a distance transform (its cost independent of the radius): the
    same disc as OpenCV's elliptic kernel but for a few rim pixels, on a frame and per frame of a clip."""
    import cv2

    from pvtt.compose import DISTANCE_DILATE_MIN, dilate

    strap = np.zeros((300, 400), bool)
    strap[140:160, 60:340] = True
    dot = np.zeros((300, 400), bool)
    dot[150, 200] = True
    yy, xx = np.mgrid[:300, :400]
    for r in (DISTANCE_DILATE_MIN, 40, 90):
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        for mask in (strap, dot):
            expected = cv2.dilate(mask.astype(np.uint8), kernel) > 0
            assert (dilate(mask, r) != expected).sum() <= 0.005 * expected.sum() + 4 * r
        assert np.array_equal(dilate(dot, r), (yy - 150) ** 2 + (xx - 200) ** 2 <= (r + 0.3) ** 2)  # a disc
    clip = np.stack([strap, np.zeros_like(strap)])
    assert np.array_equal(dilate(clip, 40)[0], dilate(strap, 40)) and not dilate(clip, 40)[1].any()


def test_the_pair_overlay_tints_b_outlines_a_at_half_size():
    """The review overlay, made frame by frame: B's region tinted green, A's outline red, everything else as edited,
    at half size (even sides)."""
    from pvtt.review_media import pair_overlay

    edited = np.full((3, 101, 161, 3), 120, np.uint8)
    masks_a = np.zeros((3, 101, 161), bool)
    masks_a[:, 20:60, 20:60] = True
    masks_b = np.zeros((3, 101, 161), bool)
    masks_b[:, 40:90, 90:150] = True
    out = pair_overlay(edited, masks_a, masks_b)
    assert out.shape == (3, 50, 80, 3)
    assert np.array_equal(out[:, 32, 60], np.tile([88, 160, 108], (3, 1)))  # B: 0.6 x 120 + 0.4 x (40, 220, 90)
    assert np.array_equal(out[:, 20, 20], np.tile([120, 120, 120], (3, 1)))  # inside A, off its outline: as edited
    assert out[1, 10, 20, 0] > 200 and out[1, 10, 20, 1] < 80  # A's top edge (row 20, halved): red
    assert np.array_equal(out[:, 45, 5], np.tile([120, 120, 120], (3, 1)))  # elsewhere: as edited
