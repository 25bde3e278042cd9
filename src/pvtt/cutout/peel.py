"""Take the surface a product stands on out of its mask: GrabCut inside the mask, the rest of the frame as
background, and only what it gives back to the background *under* the product is removed.

Why: a video frame's product mask (GrabCut + optical flow, or SAM2) often takes in a wedge of the table between
a product's feet — TOYS012's rocking horses carried a wedge of the beige table between their rockers into the
cutout, and from there into every pair that inserted them. The surface continues outside the mask, so GrabCut's
background colour model, learnt from the rest of the frame, claims it back. GrabCut also claims pale parts of
pale products against a pale backdrop (ART001's vase shoulders against a white wall); those lie higher up, so
only pieces whose centre sits in the bottom quarter of the product's box and that reach the mask's lower outline
are taken out — where a support surface is and a product's body is not.

CPU only (OpenCV's GrabCut on the product's box plus a margin), no weights.
"""

from __future__ import annotations

import cv2
import numpy as np

BOTTOM = 0.75  # a peeled piece's centre lies below this fraction of the product box's height


def peel_support(rgb: np.ndarray, mask: np.ndarray, iterations: int = 5, pad: int = 40) -> np.ndarray:
    """The pixels of ``mask`` (H, W bool) in ``rgb`` (H, W, 3 uint8) that belong to the surface under the product:
    GrabCut (initialised with the mask as probable foreground, everything else as background, and the mask's
    bottom-quarter pixels coloured like the surface under it as probable background) returns them to the
    background, they touch the lower half of the mask's outline, and their centre lies in the bottom quarter of the
    mask's box. A bool (H, W) array; empty when the mask is empty or nothing qualifies."""
    mask = np.asarray(mask, bool)
    peel = np.zeros_like(mask)
    ys, xs = np.nonzero(mask)
    if len(ys) < 16:
        return peel
    height, width = mask.shape
    y0, y1 = max(int(ys.min()) - pad, 0), min(int(ys.max()) + pad + 1, height)
    x0, x1 = max(int(xs.min()) - pad, 0), min(int(xs.max()) + pad + 1, width)
    crop, inside = rgb[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    if inside.all():  # no background in reach: nothing to learn it from
        return peel
    labels = np.where(inside, cv2.GC_PR_FGD, cv2.GC_BGD).astype(np.uint8)
    top, bottom = int(ys.min()) - y0, int(ys.max()) - y0
    low = top + BOTTOM * (bottom - top)
    labels[_like_the_surface(crop, inside, low)] = cv2.GC_PR_BGD
    cv2.setRNGSeed(0)  # GrabCut's k-means starts from OpenCV's global RNG: the same frame peels the same way
    try:
        cv2.grabCut(np.ascontiguousarray(crop[..., ::-1]), labels, None, np.zeros((1, 65)), np.zeros((1, 65)),
                    iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # too few colours on one side to model: leave the mask as it is
        return peel
    back = inside & ((labels == cv2.GC_BGD) | (labels == cv2.GC_PR_BGD))
    if not back.any():
        return peel
    outline = inside & ~cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    outline[: (top + bottom) // 2 + 1] = False  # the lower half of the outline
    count, pieces = cv2.connectedComponents(back.astype(np.uint8), connectivity=8)
    rows = np.arange(inside.shape[0], dtype=np.float64)
    sums = np.bincount(pieces.ravel(), weights=np.repeat(rows, inside.shape[1]), minlength=count)
    sizes = np.bincount(pieces.ravel(), minlength=count)
    touching = np.zeros(count, bool)
    touching[np.unique(pieces[outline & back])] = True
    chosen = touching & (sums > low * np.maximum(sizes, 1))
    chosen[0] = False
    peel[y0:y1, x0:x1] = chosen[pieces]
    return peel


def _like_the_surface(crop: np.ndarray, inside: np.ndarray, low: float, band: int = 12) -> np.ndarray:
    """Mask pixels below row ``low`` whose colour is that of the surface right under the mask: the ``band`` pixels
    below each column's lowest mask pixel (Lab, within 2.5 median absolute deviations of their median plus 6).
    GrabCut starts them as probable background; left as probable foreground, a large wedge of table is learnt
    into the product's colour model and stays."""
    height = inside.shape[0]
    cols = np.flatnonzero(inside.any(axis=0))
    lowest = height - 1 - np.argmax(inside[::-1, cols], axis=0)
    rows = (lowest[:, None] + np.arange(1, band + 1)[None, :]).ravel()
    cols = np.repeat(cols, band)
    keep = rows < height
    lab = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2LAB).astype(np.float32)
    under = lab[rows[keep], cols[keep]]
    under = under[~inside[rows[keep], cols[keep]]]
    if len(under) < 20:
        return np.zeros_like(inside)
    centre = np.median(under, axis=0)
    spread = np.median(np.abs(under - centre), axis=0)
    near = (np.abs(lab - centre) <= 2.5 * spread + 6).all(axis=-1)
    below = np.arange(height)[:, None] > low
    return inside & below & near
