"""Classical first-frame insert: B pasted in A's slot, harmonised, with a contact shadow.

1. B's cutout trimmed to its alpha; scaled so its opaque area equals A's visible area (A's slot,
   with B's own aspect ratio), anchored at A's box bottom centre (standing products) or centre; then
   grown a little (``cover_growth``) while that hides more of A's region, where the silhouettes differ, so
   less of the erase fill shows.
   A slot B cannot fit (scale change or frame overflow beyond the limits) → RejectItem with numbers.
2. Harmonisation in Lab: B's luminance mean/std moved part-way towards the surroundings of A
   (a ring around A's mask), a mild chroma shift towards their colour cast.
3. A soft elliptical contact shadow under B's base (bottom-centre anchor), feathered alpha.
4. Composite over the erased frame 0 with :func:`pvtt.compose.render_product`, which the warp propagation
   uses for every later frame, so every frame gets the same look.
"""

from __future__ import annotations

import cv2
import numpy as np

from pvtt.compose import (area_matched_size, dilate, outside_share, render_product, scale_change, slot_box,
                          slot_misfit, translation)
from pvtt.errors import RejectItem
from pvtt.insert import Inserter
from pvtt.types import Box, InsertResult


def harmonize(rgba: np.ndarray, surround: np.ndarray, strength: float, chroma: float) -> np.ndarray:
    """``rgba``'s Lab luminance mean/std moved ``strength`` of the way to ``surround``'s ((N, 3) RGB pixels),
    its chroma mean ``chroma`` of the way; the mean luminance shift is capped at 25 levels."""
    if len(surround) < 10 or (strength == 0 and chroma == 0):
        return rgba
    lab = cv2.cvtColor(np.ascontiguousarray(rgba[..., :3]), cv2.COLOR_RGB2LAB).astype(np.float32)
    ref = cv2.cvtColor(surround.reshape(-1, 1, 3).astype(np.uint8), cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float32)
    inside = rgba[..., 3] > 127
    if inside.sum() < 10:
        return rgba
    mine = lab[inside]
    m_b, s_b = mine[:, 0].mean(), mine[:, 0].std() + 1e-3
    m_r, s_r = ref[:, 0].mean(), ref[:, 0].std() + 1e-3
    ratio = float(np.clip(1 + strength * (s_r / s_b - 1), 0.75, 1.25))
    shift = float(np.clip(strength * (m_r - m_b), -25, 25))
    lab[..., 0] = (lab[..., 0] - m_b) * ratio + m_b + shift
    lab[..., 1:] += chroma * (ref[:, 1:].mean(axis=0) - mine[:, 1:].mean(axis=0))
    rgb = cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    return np.dstack([rgb, rgba[..., 3]])


def standing_parts(alpha: np.ndarray, min_share: float = 0.1) -> list[tuple[int, int, int, int]]:
    """The parts of a product that stand on the floor: (x0, x1, bottom, height) of each piece of ``alpha`` (h, w)
    bool of at least ``min_share`` of the largest piece's area with no other such piece below its base (a lid lifted
    off its box rests on the box, not on the floor). x0, x1: the columns of its base (its lowest tenth). Specks are
    no parts; the lowest part always stands."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(alpha.astype(np.uint8), connectivity=8)
    if count <= 1:
        h, w = alpha.shape
        return [(0, w, h, h)]
    areas = stats[1:, cv2.CC_STAT_AREA]
    big = np.zeros(count, bool)
    big[1:] = areas >= min_share * areas.max()
    solid = big[labels]
    parts = []
    for i in np.flatnonzero(big):
        top, height = stats[i, cv2.CC_STAT_TOP], stats[i, cv2.CC_STAT_HEIGHT]
        bottom = top + height
        piece = labels[max(top, bottom - max(1, height // 10)):bottom] == i
        cols = np.flatnonzero(piece.any(axis=0))
        x0, x1 = int(cols[0]), int(cols[-1]) + 1
        if not solid[bottom:, x0:x1].any():
            parts.append((x0, x1, int(bottom), int(height)))
    return parts


def contact_shadow(product: np.ndarray, opacity: float) -> tuple[np.ndarray, np.ndarray]:
    """A soft elliptical shadow under the base of each part of ``product`` that stands on the floor
    (:func:`standing_parts`): (map (h, w) float32 with opacity, map → product pixels).

    Two vases standing one behind the other (ART001's photo) each get one; with a single ellipse under the lowest
    base, the rear vase floated. Each ellipse is centred on its base line, so its upper half lies behind the
    product — except where the product has holes (two rings lying side by side, a mug's open handle): there it
    darkened the floor seen through them (the bench's case005: up to 31 levels just above the rings' base), and it is
    taken out."""
    from scipy.ndimage import binary_fill_holes

    h, w = product.shape[:2]
    alpha = product[..., 3] > 127
    parts = standing_parts(alpha)
    bottom = max(p[2] for p in parts)
    sw, sh = max(8, int(w * 1.5)), max(8, int(h * 0.3))
    top = min(p[2] for p in parts) - sh // 2  # the map's first row, in the product's pixels
    shadow = np.zeros((bottom - top + sh - sh // 2, sw), np.float32)
    for x0, x1, base, height in parts:
        layer = np.zeros_like(shadow)
        axes = (max(2, int((x1 - x0) * 0.6)), max(2, int(height * 0.04)))
        cv2.ellipse(layer, (int((x0 + x1) / 2 - w / 2 + sw / 2), base - top), axes, 0, 0, 360, 1.0, -1)
        shadow = np.maximum(shadow, cv2.GaussianBlur(layer, (0, 0), max(1.0, (x1 - x0) * 0.08)))
    shadow *= opacity
    holes = (binary_fill_holes(alpha) & ~alpha).astype(np.float32)
    if holes.any():  # the product's holes, in the shadow map's pixels (it sits at (w/2 - sw/2, top))
        to_map = np.float32([[1, 0, sw / 2 - w / 2], [0, 1, -top]])
        shadow *= 1.0 - cv2.warpAffine(holes, to_map, (sw, shadow.shape[0]), flags=cv2.INTER_LINEAR)
    return shadow, translation(w / 2 - sw / 2, top)


def _uncovered(mask_a: np.ndarray, opaque: np.ndarray, box: Box) -> float:
    """Fraction of A's mask that B's opaque pixels, placed in ``box``, leave visible."""
    frame_h, frame_w = mask_a.shape
    x0, y0 = int(round(box.x0)), int(round(box.y0))
    w, h = max(1, int(round(box.width))), max(1, int(round(box.height)))
    placed = cv2.resize(opaque.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    covered = np.zeros_like(mask_a)
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(frame_w, x0 + w), min(frame_h, y0 + h)
    if fx1 > fx0 and fy1 > fy0:
        covered[fy0:fy1, fx0:fx1] = placed[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    return float((mask_a & ~covered).sum()) / max(float(mask_a.sum()), 1.0)


def _covering_scale(mask_a: np.ndarray, opaque: np.ndarray, box_a: Box, scale: float, s) -> tuple[float, float]:
    """The area-matched ``scale`` grown in 5 % steps, up to ``s.cover_growth`` and within the scale and frame
    limits, until at most ``s.cover_target`` of A's mask shows around B (else the step that hides the most)."""
    height, width = mask_a.shape

    def fits(k: float) -> bool:
        return slot_misfit(box_a, opaque.shape[1] * k, opaque.shape[0] * k, width, height, s) is None

    best = (scale, _uncovered(mask_a, opaque, slot_box(box_a, opaque.shape[1] * scale, opaque.shape[0] * scale,
                                                         s.anchor)))
    growth = 1.05
    while best[1] > s.cover_target and growth <= s.cover_growth + 1e-9 and fits(scale * growth):
        k = scale * growth
        left = _uncovered(mask_a, opaque, slot_box(box_a, opaque.shape[1] * k, opaque.shape[0] * k, s.anchor))
        if left < best[1] - 0.01:
            best = (k, left)
        growth += 0.05
    return best


class CompositeInserter(Inserter):
    """Pastes, harmonises and shadows B in A's slot (see the module docstring)."""

    name = "composite"

    def insert(self, frame: np.ndarray, background: np.ndarray, mask_a: np.ndarray, box_a: Box,
               product: np.ndarray, *, instruction: str = "", description: str | None = None) -> InsertResult:
        s = self.settings
        # 1. check inputs
        frame, background = np.asarray(frame), np.asarray(background)
        mask_a = np.asarray(mask_a, bool)
        rgba = np.asarray(getattr(product, "rgba", product))
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        if background.shape != frame.shape:
            raise ValueError(f"background must be {frame.shape}, got {background.shape}")
        if mask_a.shape != frame.shape[:2]:
            raise ValueError(f"mask_a must be {frame.shape[:2]}, got {mask_a.shape}")
        if rgba.ndim != 3 or rgba.shape[-1] != 4 or rgba.dtype != np.uint8:
            raise ValueError(f"product must be (h, w, 4) uint8 RGBA, got {rgba.shape} {rgba.dtype}")
        if not mask_a.any():
            raise ValueError("mask_a is empty: nothing to replace")
        height, width = frame.shape[:2]
        ys, xs = np.nonzero(rgba[..., 3] > 127)
        if len(xs) == 0:
            raise RejectItem("product cutout is empty (no pixel with alpha > 0.5)")
        rgba = np.ascontiguousarray(rgba[ys.min():ys.max() + 1, xs.min():xs.max() + 1])

        # 2. B's slot: A's visible area, B's aspect ratio, anchored on A's box; grown (up to cover_growth) while
        #    that hides more of A's region, so less of the erase fill shows where the silhouettes differ
        opaque = rgba[..., 3] > 127
        scale, _, _ = area_matched_size(float(mask_a.sum()), opaque)
        scale, uncovered = _covering_scale(mask_a, opaque, box_a, scale, s)
        wb, hb = rgba.shape[1] * scale, rgba.shape[0] * scale
        misfit = slot_misfit(box_a, wb, hb, width, height, s)
        if misfit:
            raise RejectItem(misfit)
        change = scale_change(box_a, wb, hb)
        box_b = slot_box(box_a, wb, hb, s.anchor)
        outside = outside_share(box_b, width, height)
        size = (max(1, round(wb)), max(1, round(hb)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        placed = cv2.resize(rgba, size, interpolation=interp)
        transform = translation(box_b.x0, box_b.y0) @ np.diag([wb / size[0], hb / size[1], 1.0])

        # 3. harmonise to the surroundings of A, feather the edge
        diag = float(np.hypot(box_a.width, box_a.height))
        ring_px = max(3, int(s.ring * diag))
        outer = dilate(mask_a, ring_px)  # a distance transform from 16 px on: 1.1 s of the insert's 1.4 s before
        inner = cv2.dilate(mask_a.astype(np.uint8), np.ones((7, 7), np.uint8))
        ring = outer & (inner == 0)
        placed = harmonize(placed, background[ring], s.harmonize, s.color_transfer)
        if s.feather > 0:
            a = cv2.GaussianBlur(placed[..., 3].astype(np.float32), (0, 0), s.feather)
            placed[..., 3] = np.minimum(placed[..., 3], np.clip(a * 1.0, 0, 255)).astype(np.uint8)

        # 4. contact shadow and composite over the erased frame
        info: dict = {"scale": scale, "scale_change": change, "outside": outside, "anchor": s.anchor,
                      "uncovered": uncovered}
        shadow = shadow_m = None
        if s.anchor == "bottom-center" and s.shadow > 0:
            shadow, to_product = contact_shadow(placed, s.shadow)
            shadow_m = transform @ to_product
            info.update(shadow=shadow, shadow_transform=shadow_m)
        out, alpha = render_product(background, placed, transform, shadow, shadow_m)
        return InsertResult(out, alpha, box_b, placed, transform, info)
