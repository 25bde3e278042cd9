"""Erase under changing light: the fill follows each frame's lighting (no seam, no stale brightness)."""

from __future__ import annotations

import numpy as np

from pvtt.erase import make_eraser
from pvtt.types import Clip, Masks


def _lit_clip(t_count: int = 10) -> tuple[Clip, Masks, np.ndarray]:
    """A still product on a smooth backdrop whose light ramps up 30% over the clip; the product never moves, so
    the background behind it is never visible. Returns the clip, A's masks and the true background frames."""
    h, w = 120, 160
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    backdrop = np.stack([150 + 30 * xx / w, 120 + 20 * yy / h, 170 - 10 * xx / w], -1)
    gains = np.linspace(0.85, 1.15, t_count)
    truth = np.stack([np.clip(backdrop * g, 0, 255) for g in gains]).astype(np.uint8)
    frames = truth.copy()
    product = ((xx - 80) / 25) ** 2 + ((yy - 60) / 20) ** 2 < 1
    frames[:, product] = (40, 30, 20)
    return Clip("lit", frames, 20.0), Masks(np.repeat(product[None], t_count, 0)), truth


def test_fill_follows_the_lighting_of_each_frame():
    clip, masks, truth = _lit_clip()
    erased = make_eraser().erase(clip, masks)
    stale = make_eraser(seam_correction=False).erase(clip, masks)
    region = erased.region
    assert erased.info["never_visible_fraction"] > 0.9  # nothing to borrow: inpaint + warp only
    err = [np.abs(erased.frames[t][region[t]].astype(float) - truth[t][region[t]]).mean() for t in range(len(truth))]
    err_stale = [np.abs(stale.frames[t][region[t]].astype(float) - truth[t][region[t]]).mean()
                 for t in range(len(truth))]
    assert max(err) < 4.0, err
    assert err_stale[-1] > 3 * err[-1]  # without the correction the last frame keeps frame 0's light


def test_untouched_outside_the_region():
    clip, masks, _ = _lit_clip(4)
    erased = make_eraser().erase(clip, masks)
    outside = ~erased.region
    # the feathered blend may touch a thin band just outside the region, nothing beyond it
    band = np.zeros_like(outside)
    import cv2

    for t in range(len(band)):
        band[t] = cv2.dilate(erased.region[t].astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    far = outside & ~band
    assert np.array_equal(erased.frames[far], clip.frames[far])
