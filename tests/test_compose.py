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
