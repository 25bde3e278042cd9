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
