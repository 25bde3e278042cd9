"""Alpha helpers shared by the cutout backends and the video cutout: a product mask (or soft coverage) refined
into an alpha that follows the photo's edges, and a cutout trimmed to its product.

CPU only (OpenCV box filters), no weights.
"""

from __future__ import annotations

import cv2
import numpy as np


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter with a grey guide (float32 in [0, 1]), via box filters."""
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = box(guide), box(src)
    cov_ip = box(guide * src) - mean_i * mean_p
    var_i = box(guide * guide) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box(a) * guide + box(b)


def meaningful_alpha(alpha: np.ndarray) -> bool:
    """Whether an alpha channel already separates a product: some of it transparent, some opaque."""
    transparent = float((alpha < 16).mean())
    opaque = float((alpha > 240).mean())
    return transparent > 0.01 and opaque > 0.01


def refine_alpha(rgb: np.ndarray, coverage: np.ndarray, refine_radius: float) -> np.ndarray:
    """A soft alpha ``(H, W)`` float32 in [0, 1] for the photo ``rgb`` ``(H, W, 3)`` uint8 from the product's
    ``coverage`` (a mask or soft map in [0, 1], at any resolution: resized bilinearly to the photo's): a guided
    filter on the photo's grey levels, radius ``refine_radius`` of the long side (0: none), makes its edge
    follow the photo's edges; the soft band is then tightened a little."""
    height, width = rgb.shape[:2]
    alpha = np.asarray(coverage, np.float32)
    if alpha.shape != (height, width):
        alpha = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_LINEAR)
    radius = int(round(refine_radius * max(height, width)))
    if radius > 0:
        grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        alpha = guided_filter(grey, alpha, radius, 1e-3)
    return np.clip((alpha - 0.5) * 1.6 + 0.5, 0, 1)


def with_alpha(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``(H, W, 4)`` uint8: the photo with ``alpha`` (float in [0, 1]) as its alpha channel."""
    return np.dstack([rgb, (alpha * 255).round().astype(np.uint8)])


def trim(rgba: np.ndarray, margin: float) -> np.ndarray:
    """``rgba`` cropped to its product's box (alpha > 25) plus ``margin`` of the box's long side; unchanged when
    nothing is opaque."""
    ys, xs = np.nonzero(rgba[..., 3] > 25)
    if len(xs) == 0:
        return rgba
    pad = int(round(margin * max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)))
    y0, y1 = max(0, ys.min() - pad), min(rgba.shape[0], ys.max() + 1 + pad)
    x0, x1 = max(0, xs.min() - pad), min(rgba.shape[1], xs.max() + 1 + pad)
    return np.ascontiguousarray(rgba[y0:y1, x0:x1])


__all__ = ["guided_filter", "meaningful_alpha", "refine_alpha", "trim", "with_alpha"]
