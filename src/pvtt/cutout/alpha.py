"""Alpha helpers shared by the cutout backends and the video cutout: a product mask (or soft coverage) refined
into an alpha that follows the photo's edges, and a cutout trimmed to its product.

CPU only (OpenCV box filters), no weights.
"""

from __future__ import annotations

import cv2
import numpy as np

from pvtt.compose import membrane


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


def decontaminate(rgb: np.ndarray, alpha: np.ndarray, solid: float = 0.97, clear: float = 0.03,
                  unstable: float = 0.3) -> np.ndarray:
    """The product's own colours where ``alpha`` is soft. A soft edge pixel of a photo mixes the product F and the
    photo's backdrop B, ``I = a F + (1 - a) B``; pasted with alpha ``a`` over another scene it brings ``(1 - a) B``
    along: a white fringe around a product shot on white. B is the backdrop spread smoothly inward from the clear
    pixels (alpha < ``clear``) and F is solved from the mix; where alpha is below ``unstable`` (the solution
    divides by it) F leans, linearly, on the product's colour spread outward from the solid pixels (alpha >
    ``solid``). Solid and clear pixels are unchanged; without clear or solid pixels the photo is returned as is."""
    band = (alpha > clear) & (alpha < solid)
    if not band.any() or not (alpha <= clear).any() or not (alpha >= solid).any():
        return rgb
    ys, xs = np.nonzero(band)
    pad = 8  # the spreads only need the band's surroundings
    y0, y1 = max(0, ys.min() - pad), min(rgb.shape[0], ys.max() + 1 + pad)
    x0, x1 = max(0, xs.min() - pad), min(rgb.shape[1], xs.max() + 1 + pad)
    image, a = rgb[y0:y1, x0:x1].astype(np.float32), alpha[y0:y1, x0:x1, None].astype(np.float32)
    backdrop = membrane(image, a[..., 0] <= clear)
    product = np.clip(membrane(image, a[..., 0] >= solid), 0, 255)
    solved = np.clip((image - (1 - a) * backdrop) / np.maximum(a, clear), 0, 255)
    trust = np.clip((a - clear) / (unstable - clear), 0, 1)
    colour = trust * solved + (1 - trust) * product
    out = rgb.copy()
    inside = band[y0:y1, x0:x1]
    out[y0:y1, x0:x1][inside] = colour[inside].round().astype(np.uint8)
    return out


def unmix_edge(rgb: np.ndarray, alpha: np.ndarray, depth: int = 2, contrast: float = 60.0, clear: float = 0.03
               ) -> np.ndarray:
    """``alpha`` lowered on the product's outermost ``depth`` pixels (those next to clear ones) to the share of the
    product's colour in their colour. A cut's outline can hold pixels that mix product and backdrop at full
    opacity (the guided filter's band is a pixel wide on a small photo): a pale line along a dark product's edge
    once it stands on another background. Their mix ``I = a F + (1 - a) B`` is solved for ``a`` along the line
    from the backdrop B (spread from the clear pixels) to the product F (spread from the solid pixels inside the
    edge), where the two differ by at least ``contrast`` levels; alpha is only ever lowered."""
    clear_px = alpha <= clear
    if not clear_px.any() or clear_px.all():
        return alpha
    near = cv2.dilate(clear_px.astype(np.uint8), np.ones((2 * depth + 1, 2 * depth + 1), np.uint8)) > 0
    edge = near & ~clear_px
    inner = (alpha > clear) & ~(cv2.dilate(clear_px.astype(np.uint8), np.ones((2 * depth + 3, 2 * depth + 3),
                                                                                np.uint8)) > 0)
    if not edge.any() or not inner.any():
        return alpha
    ys, xs = np.nonzero(edge)
    pad = 8  # the spreads only need the edge's surroundings
    y0, y1 = max(0, ys.min() - pad), min(rgb.shape[0], ys.max() + 1 + pad)
    x0, x1 = max(0, xs.min() - pad), min(rgb.shape[1], xs.max() + 1 + pad)
    image = rgb[y0:y1, x0:x1].astype(np.float32)
    backdrop = membrane(image, clear_px[y0:y1, x0:x1])
    product = membrane(image, inner[y0:y1, x0:x1])
    line = product - backdrop
    length2 = (line ** 2).sum(-1)
    share = ((image - backdrop) * line).sum(-1) / np.maximum(length2, 1e-6)
    lower = edge[y0:y1, x0:x1] & (length2 >= contrast ** 2)
    out = alpha.astype(np.float32).copy()
    window = out[y0:y1, x0:x1]
    window[lower] = np.minimum(window[lower], np.clip(share[lower], 0, 1))
    return out


def with_alpha(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``(H, W, 4)`` uint8: the photo with ``alpha`` (float in [0, 1]) as its alpha channel, its colours
    decontaminated where alpha is soft (:func:`decontaminate`: no fringe of the photo's backdrop)."""
    return np.dstack([decontaminate(rgb, alpha), (alpha * 255).round().astype(np.uint8)])


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


__all__ = ["decontaminate", "guided_filter", "meaningful_alpha", "refine_alpha", "trim", "unmix_edge", "with_alpha"]
