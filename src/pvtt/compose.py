"""Regions, boxes and compositing shared by insert, propagate, judge, erase and cutout: below them all.

NumPy and OpenCV only; imports nothing of pvtt but :mod:`pvtt.types`.

- Interpolation: :func:`membrane` (values known at some pixels spread smoothly into the rest).
- Masks and boxes: :func:`box_of_mask`, :func:`box_slices`, :func:`as_mask_array`, :func:`dilate`,
  :func:`main_pieces` and :func:`piece_lift` (a mask in pieces, and a piece of it hanging above the rest).
- Regions over a clip: :func:`edit_region` (where a backend may repaint), :func:`carry_mask` (a first-frame
  mask carried through the clip by A's mask).
- Shape: :func:`normalized_alpha` / :func:`silhouette_iou` (A and B compared up to position and scale).
- Blending and resizing: :func:`feather`, :func:`blend`, :func:`resize_frames`, :func:`model_size`,
  :class:`Letterbox` (a clip brought to a model's fixed size by padding to its aspect, never stretched, and
  cropped back), :func:`chunk_spans` (a long clip cut into overlapping chunks).
- Compositing: :func:`render_product` (B's RGBA and its shadow placed by a 3x3 transform over a frame; the
  insert's first frame and every frame the warp propagation renders), :func:`translation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pvtt.types import Box


# --- smooth interpolation ---------------------------------------------------------------------------
def membrane(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Smooth interpolation of ``values`` (H, W, C) float32 from the ``known`` pixels into the rest (push-pull:
    normalised averages down an image pyramid, blended back up); known pixels keep their values."""
    weight = known.astype(np.float32)
    levels = [(values * weight[..., None], weight)]
    while min(levels[-1][1].shape) > 2:
        v, w = levels[-1]
        size = (max(1, w.shape[1] // 2), max(1, w.shape[0] // 2))
        levels.append((cv2.resize(v, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1),
                       cv2.resize(w, size, interpolation=cv2.INTER_AREA)))
    v, w = levels[-1]
    total = float(w.sum())
    mean = v.reshape(-1, v.shape[-1]).sum(0) / max(total, 1e-6)
    est = np.where(w[..., None] > 1e-6, v / np.maximum(w, 1e-6)[..., None], mean)
    for v, w in reversed(levels[:-1]):
        up = cv2.resize(est, (w.shape[1], w.shape[0]), interpolation=cv2.INTER_LINEAR).reshape(v.shape)
        a = np.clip(w, 0, 1)[..., None]
        est = np.where(a > 1e-6, v / np.maximum(w, 1e-6)[..., None], 0) * a + up * (1 - a)
    return est.astype(np.float32)


def local_contrast(grey: np.ndarray, size: int = 5) -> np.ndarray:
    """Local contrast: the standard deviation of the grey level in a ``size`` x ``size`` window (of each channel, for
    an (H, W, C) image)."""
    g = grey.astype(np.float32)
    mean = cv2.blur(g, (size, size))
    return np.sqrt(np.maximum(cv2.blur(g * g, (size, size)) - mean * mean, 0))


def row_texture_mismatch(image: np.ndarray, hole: np.ndarray, strip: int = 8) -> float:
    """How far the local contrast inside ``hole`` is from that of the frame beside it, row by row: per strip of
    ``strip`` rows, the absolute log ratio of the medians of :func:`local_contrast` inside the hole (2 px in from its
    border) and in a band to its left and right (15 % of the hole's size wide), averaged over the hole's pixels. A
    product stands where a wall meets a table: a fill that pulls the flat wall down into the textured table's rows
    scores high, one that keeps the table textured low (`tests/edit/test_erase.py`: above 0.1 and below 0.06)."""
    hole = np.asarray(hole, bool)
    ys, xs = np.nonzero(hole)
    if len(ys) == 0:
        return 0.0
    tex = local_contrast(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY))
    r = max(4, int(0.15 * max(np.ptp(ys) + 1, np.ptp(xs) + 1)))
    beside = (cv2.dilate(hole.astype(np.uint8), np.ones((1, 2 * r + 1), np.uint8)) > 0) & ~hole
    inner = cv2.erode(hole.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    total, weight = 0.0, 0
    for y0 in range(int(ys.min()), int(ys.max()) + 1, strip):
        a, b = inner[y0:y0 + strip], beside[y0:y0 + strip]
        if a.sum() < 10 or b.sum() < 10:
            continue
        inside, around = np.median(tex[y0:y0 + strip][a]), np.median(tex[y0:y0 + strip][b])
        total += abs(float(np.log((inside + 1) / (around + 1)))) * int(a.sum())
        weight += int(a.sum())
    return total / max(weight, 1)


# --- masks and boxes --------------------------------------------------------------------------------
def box_of_mask(mask: np.ndarray) -> Box | None:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return Box(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def slot_box(box_a: Box, width: float, height: float, anchor: str) -> Box:
    """B's ``width`` x ``height`` box in A's slot: centred on A's box horizontally, its bottom on A's bottom
    (``bottom-center``) or its centre on A's centre (``center``)."""
    cx, cy = box_a.center
    bottom = box_a.y1 if anchor == "bottom-center" else cy + height / 2
    return Box(cx - width / 2, bottom - height, cx + width / 2, bottom, source="insert")


def scale_change(box_a: Box, width: float, height: float) -> float:
    """The largest ratio, either way, between a side of a ``width`` x ``height`` box and the same side of A's."""
    return max(width / max(box_a.width, 1), box_a.width / max(width, 1), height / max(box_a.height, 1),
               box_a.height / max(height, 1))


EDGE_PX = 2  # A's box within this many pixels of a frame edge reaches it


def outside_share(box: Box, frame_width: int, frame_height: int, open_sides: frozenset[str] = frozenset(),
                  slack: float = 0.0) -> float:
    """Fraction of ``box`` outside the frame; the frame is taken as unbounded on ``open_sides`` (of left, top,
    right, bottom) and ``slack`` px larger on its other sides."""
    inf = float("inf")
    x0, y0 = (-inf if "left" in open_sides else -slack), (-inf if "top" in open_sides else -slack)
    x1 = inf if "right" in open_sides else frame_width + slack
    y1 = inf if "bottom" in open_sides else frame_height + slack
    inside = max(0.0, min(box.x1, x1) - max(box.x0, x0)) * max(0.0, min(box.y1, y1) - max(box.y0, y0))
    return 1.0 - inside / max(box.area, 1e-6)


def edges_reached(box: Box, frame_width: int, frame_height: int) -> frozenset[str]:
    """The frame edges ``box`` reaches (within :data:`EDGE_PX`)."""
    return frozenset(side for side, hit in (("left", box.x0 <= EDGE_PX), ("top", box.y0 <= EDGE_PX),
                                            ("right", box.x1 >= frame_width - EDGE_PX),
                                            ("bottom", box.y1 >= frame_height - EDGE_PX)) if hit)


def slot_misfit(box_a: Box, width: float, height: float, frame_width: int, frame_height: int, settings: Any
                ) -> str | None:
    """Why B at ``width`` x ``height`` does not fit A's slot, or None: a scale change above
    ``settings.max_scale_change``, more than ``settings.max_outside`` of B's box outside the frame, or more than
    ``settings.max_outside_clear`` past a frame edge that A's box does not reach (``settings``:
    the insert settings, whose ``anchor`` places B). The insert stage rejects a pair with this reason; pairing
    uses it to leave such pairs out before any work."""
    change = scale_change(box_a, width, height)
    if change > settings.max_scale_change:
        return (f"product does not fit A's slot: B's box {width:.0f}x{height:.0f} vs A's "
                f"{box_a.width:.0f}x{box_a.height:.0f} is a {change:.2f}x scale change "
                f"(limit {settings.max_scale_change:.2f}x)")
    slot = slot_box(box_a, width, height, settings.anchor)
    outside = outside_share(slot, frame_width, frame_height)
    if outside > settings.max_outside:
        return (f"product would leave the frame: {outside * 100:.0f}% of B's box {width:.0f}x{height:.0f} lies "
                f"outside the {frame_width}x{frame_height} frame (limit {settings.max_outside * 100:.0f}%)")
    reached = edges_reached(box_a, frame_width, frame_height)
    cut = outside_share(slot, frame_width, frame_height, open_sides=reached, slack=EDGE_PX)  # (rounding: small frames)
    if cut > settings.max_outside_clear:
        return (f"product would be cut by the frame: {cut * 100:.0f}% of B's box {width:.0f}x{height:.0f} lies past "
                f"an edge of the {frame_width}x{frame_height} frame that A stays clear of (limit "
                f"{settings.max_outside_clear * 100:.0f}%)")
    return None


def area_matched_size(area_a: float, opaque_b: np.ndarray) -> tuple[float, float, float]:
    """``(scale, width, height)`` of B (its opaque pixels ``opaque_b``, cropped to their box) scaled to A's visible
    area ``area_a``: where insert starts before it grows B to cover more of A."""
    scale = float(np.sqrt(area_a / max(float(opaque_b.sum()), 1.0)))
    return scale, opaque_b.shape[1] * scale, opaque_b.shape[0] * scale


def box_slices(box: Box, width: int, height: int) -> tuple[slice, slice]:
    """``(rows, columns)`` of the pixels ``box`` covers, clipped to a ``width`` x ``height`` frame."""
    b = box.clip_to(width, height)
    return slice(int(b.y0), int(np.ceil(b.y1))), slice(int(b.x0), int(np.ceil(b.x1)))


def as_mask_array(masks: Any) -> np.ndarray:
    """``(T, H, W)`` bool of a :class:`~pvtt.types.Masks` or an array."""
    return np.asarray(getattr(masks, "data", masks), bool)


def fill_small_holes(mask: np.ndarray, fraction: float) -> np.ndarray:
    """``mask`` (bool) with its holes smaller than ``fraction`` of its area filled: the pieces of the outside
    (4-connected, as the mask is 8-) that do not reach the frame's edge."""
    count, comp, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8), 4)
    if count <= 1:
        return mask
    h, w = mask.shape
    x, y, bw, bh, area = stats[:, 0], stats[:, 1], stats[:, 2], stats[:, 3], stats[:, 4]
    touches = (x == 0) | (y == 0) | (x + bw == w) | (y + bh == h)
    small = (area < fraction * max(1, int(mask.sum()))) & ~touches
    small[0] = False  # label 0: the mask itself
    return mask | small[comp]


# from this radius on, dilate by a distance transform: its cost does not grow with the radius, a kernel's does (a
# 150 px disc on a 1248x720 frame: 0.53 s by cv2.dilate, 0.006 s this way)
DISTANCE_DILATE_MIN = 16


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` (H, W) or (T, H, W) bool grown by ``pixels`` (a disc), per frame.

    Small radii use OpenCV's elliptic kernel; from :data:`DISTANCE_DILATE_MIN` on, every pixel within ``pixels`` +
    0.3 (Euclidean) of the mask — the same disc but for a few pixels on its rim (0.1 % of a 150 px growth's area)."""
    mask = np.asarray(mask, bool)
    if pixels <= 0:
        return mask.copy()
    if mask.ndim == 3:
        return np.stack([dilate(m, pixels) for m in mask])
    if pixels >= DISTANCE_DILATE_MIN:
        if not mask.any():
            return mask.copy()
        distance = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        return distance <= pixels + 0.3
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def convex_hull(mask: np.ndarray) -> np.ndarray:
    """The convex hull of ``mask`` (H, W) bool, filled (all False for an empty mask)."""
    pts = cv2.findNonZero(np.asarray(mask, np.uint8))
    out = np.zeros(np.shape(mask), np.uint8)
    if pts is not None:
        cv2.fillConvexPoly(out, cv2.convexHull(pts), 1)
    return out > 0


def box_diagonal(mask: np.ndarray) -> float:
    """The diagonal (pixels) of ``mask``'s bounding box; 0 for an empty mask."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return 0.0
    return float(np.hypot(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1))


def main_pieces(mask: np.ndarray) -> tuple[np.ndarray, float]:
    """The product's main pieces (at most three, each at least a tenth of the largest) and the fraction of the
    mask they hold: a product is one to three pieces, specks around it are segmentation noise."""
    count, comp, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
    if count <= 1:
        return np.zeros_like(mask, bool), 0.0
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = np.argsort(areas)[::-1][:3]
    keep = np.zeros(count, bool)
    keep[1 + order[areas[order] >= 0.1 * areas.max()]] = True
    kept = keep[comp]
    return kept, float(areas[keep[1:]].sum() / areas.sum())


def piece_lift(mask: np.ndarray, gap: float = 0.05) -> float:
    """How far the highest-hanging piece of ``mask`` floats: the largest lift (its lowest row's height above the
    mask's lowest row, as a fraction of the mask's height) of a piece that has another piece of the mask below it in
    its columns but nothing of the mask within ``gap`` × that height below it; 0 when every piece stands on another
    piece or on nothing of the mask (its own base). A mask whose pieces hang above one another holds parts of an
    object without what joins them (a mane above a rocker, the horse between them left out); two products side by
    side, the rear one's base higher in the frame (two vases at different depths), each stand on their own."""
    count, comp, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
    if count <= 2:
        return 0.0
    rows = np.flatnonzero(mask.any(axis=1))
    bottom, height = rows[-1], rows[-1] - rows[0] + 1
    reach = max(1, int(round(gap * height)))
    worst = 0.0
    for i in range(1, count):
        x, y, w, h = stats[i, :4]
        lowest = y + h - 1
        lift = float(bottom - lowest) / height
        below = comp[lowest + 1:, x:x + w]
        other = (below > 0) & (below != i)
        if lift > worst and other.any() and not other[:reach].any():
            worst = lift
    return worst


def _centroid(mask: np.ndarray) -> tuple[float, float] | None:
    ys, xs = np.nonzero(mask)
    return (float(xs.mean()), float(ys.mean())) if len(xs) else None


# --- regions over a clip ----------------------------------------------------------------------------
def edit_region(masks_a: np.ndarray, box_b: Box | None = None, dilate_px: int = 8) -> np.ndarray:
    """``(T, H, W)`` bool: where a backend may repaint frame ``t``.

    A's mask (the old product must go) united with B's first-frame box moved with A's mask centroid
    (the new product must fit, also where it is larger than A), then dilated by ``dilate_px``.
    """
    masks_a = np.asarray(masks_a, bool)
    region = masks_a.copy()
    if box_b is not None:
        height, width = masks_a.shape[1:]
        c0 = _centroid(masks_a[0])
        for t in range(len(masks_a)):
            ct = _centroid(masks_a[t])
            dx, dy = (ct[0] - c0[0], ct[1] - c0[1]) if c0 is not None and ct is not None else (0.0, 0.0)
            rows, cols = box_slices(Box(box_b.x0 + dx, box_b.y0 + dy, box_b.x1 + dx, box_b.y1 + dy), width, height)
            region[t, rows, cols] = True
    return dilate(region, dilate_px)


def carry_mask(mask0: np.ndarray, masks_a: np.ndarray) -> np.ndarray:
    """``(T, H, W)`` bool: B's first-frame mask ``mask0`` carried through the clip by A's mask.

    Frame ``t`` is ``mask0`` scaled about A's first-frame centroid by ``sqrt(area_t / area_0)`` of A's
    mask and moved with A's centroid. Generative backends paint B themselves and report no mask, so
    this is the estimate of where B is that the judge and the review overlay use; frames where A's
    mask is empty keep the last known placement.
    """
    mask0 = np.asarray(mask0, bool)
    masks_a = np.asarray(masks_a, bool)
    height, width = mask0.shape
    out = np.zeros(masks_a.shape, bool)
    c0, area0 = _centroid(masks_a[0]), masks_a[0].sum()
    if c0 is None or not mask0.any():
        out[:] = mask0
        return out
    m = np.float32([[1, 0, 0], [0, 1, 0]])
    for t in range(len(masks_a)):
        ct = _centroid(masks_a[t])
        if ct is not None:
            scale = float(np.sqrt(masks_a[t].sum() / area0))
            m = np.float32([[scale, 0, ct[0] - scale * c0[0]], [0, scale, ct[1] - scale * c0[1]]])
        out[t] = cv2.warpAffine(mask0.astype(np.uint8), m, (width, height), flags=cv2.INTER_NEAREST) > 0
    return out


# --- shape ------------------------------------------------------------------------------------------
def normalized_alpha(alpha: np.ndarray, size: int = 64, threshold: float = 0.5) -> np.ndarray:
    """A silhouette cropped to its box and scaled (aspect kept) so its long side fills a ``size`` square.

    Position and scale are factored out; aspect ratio and shape remain, so a tall bottle and a wide
    box do not match while two mugs of different sizes do. ``alpha`` is bool, or float/uint8 in [0, 1]/[0, 255].
    """
    alpha = np.asarray(alpha)
    if alpha.dtype == np.uint8:
        alpha = alpha.astype(np.float32) / 255.0
    binary = np.asarray(alpha, np.float32) > threshold
    box = box_of_mask(binary)
    out = np.zeros((size, size), bool)
    if box is None:
        return out
    crop = binary[int(box.y0):int(box.y1), int(box.x0):int(box.x1)].astype(np.uint8)
    h, w = crop.shape
    scale = size / max(h, w)
    nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    resized = cv2.resize(crop * 255, (nw, nh), interpolation=cv2.INTER_AREA) > 127
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top:top + nh, left:left + nw] = resized
    return out


def silhouette_iou(alpha_a: np.ndarray, alpha_b: np.ndarray, size: int = 64) -> float:
    """IoU of the two normalized silhouettes (1 = same shape up to position and scale)."""
    a, b = normalized_alpha(alpha_a, size), normalized_alpha(alpha_b, size)
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


# --- blending and resizing --------------------------------------------------------------------------
def feather(region: np.ndarray, pixels: int) -> np.ndarray:
    """Soft float weights in [0, 1] of a bool ``region`` (H, W) or (T, H, W), blurred over ``pixels``."""
    region = np.asarray(region, np.float32)
    if pixels <= 0:
        return region
    k = 2 * pixels + 1
    if region.ndim == 2:
        return cv2.GaussianBlur(region, (k, k), pixels / 2.0)
    return np.stack([cv2.GaussianBlur(r, (k, k), pixels / 2.0) for r in region])


def blend(generated: np.ndarray, source: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``generated`` where ``weight`` is 1, ``source`` where 0 (uint8, broadcast over channels)."""
    w = np.asarray(weight, np.float32)[..., None]
    return np.clip(w * generated + (1 - w) * source + 0.5, 0, 255).astype(np.uint8)


def resize_frames(frames: np.ndarray, height: int, width: int, nearest: bool = False) -> np.ndarray:
    """Every frame of ``(T, H, W[, C])`` resized to ``height`` x ``width``."""
    if frames.shape[1:3] == (height, width):
        return frames
    mode = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
    return np.stack([cv2.resize(f, (width, height), interpolation=mode) for f in frames])


@dataclass(frozen=True)
class Letterbox:
    """A ``height`` x ``width`` clip at a model's fixed ``model_height`` x ``model_width``, aspect kept.

    :meth:`pad` adds ``fill`` bars (I2VEdit's reference code pads with black, ``pad_to_fit``) on two
    opposite sides until the clip has the model's aspect; :meth:`to_model` pads then resizes; :meth:`crop`
    and :meth:`from_model` undo them. ``crop(pad(x)) == x`` exactly; through the model size only the
    resampling differs. Portrait clips at SVD's landscape 576x1024 would otherwise be squeezed ~2.4x.
    """

    height: int
    width: int
    model_height: int
    model_width: int
    fill: int = 0

    @property
    def padded(self) -> tuple[int, int]:
        """``(height, width)`` after padding: the clip's size grown on one axis to the model's aspect."""
        if self.height * self.model_width > self.width * self.model_height:  # taller than the model: bars left/right
            return self.height, max(self.width, int(round(self.height * self.model_width / self.model_height)))
        return max(self.height, int(round(self.width * self.model_height / self.model_width))), self.width

    @property
    def offset(self) -> tuple[int, int]:
        """``(top, left)`` of the clip inside the padded frame."""
        ph, pw = self.padded
        return (ph - self.height) // 2, (pw - self.width) // 2

    def pad(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames)
        if frames.shape[1:3] != (self.height, self.width):
            raise ValueError(f"letterbox of {self.height}x{self.width} got frames of {frames.shape[1]}x{frames.shape[2]}")
        (ph, pw), (top, left) = self.padded, self.offset
        out = np.full((len(frames), ph, pw) + frames.shape[3:], self.fill, frames.dtype)
        out[:, top:top + self.height, left:left + self.width] = frames
        return out

    def crop(self, frames: np.ndarray) -> np.ndarray:
        top, left = self.offset
        return np.asarray(frames)[:, top:top + self.height, left:left + self.width]

    def to_model(self, frames: np.ndarray, nearest: bool = False) -> np.ndarray:
        return resize_frames(self.pad(frames), self.model_height, self.model_width, nearest)

    def from_model(self, frames: np.ndarray, nearest: bool = False) -> np.ndarray:
        ph, pw = self.padded
        frames = np.asarray(frames)
        if frames.shape[1:3] != (ph, pw):
            mode = cv2.INTER_NEAREST if nearest else cv2.INTER_CUBIC
            frames = np.stack([cv2.resize(f, (pw, ph), interpolation=mode) for f in frames])
        return self.crop(frames)


def chunk_spans(num_frames: int, size: int, overlap: int = 1) -> list[tuple[int, int]]:
    """``[start, stop)`` of the chunks a ``num_frames`` clip is generated in: ``size`` frames each, every
    later chunk starting ``overlap`` frames before the previous one ends (its first frame is the previous
    chunk's edited last frame); the last chunk may be shorter (at least ``overlap + 1`` frames)."""
    if size < 2 or not 0 <= overlap < size:
        raise ValueError(f"chunks need size >= 2 and 0 <= overlap < size, got size {size}, overlap {overlap}")
    spans, start = [], 0
    while True:
        stop = min(num_frames, start + size)
        spans.append((start, stop))
        if stop >= num_frames:
            return spans
        start = stop - overlap


def model_size(height: int, width: int, max_area: int, multiple: int) -> tuple[int, int]:
    """The clip's size scaled to about ``max_area`` pixels, aspect kept, sides multiples of ``multiple``."""
    scale = (max_area / float(height * width)) ** 0.5
    h = max(multiple, int(round(height * scale / multiple)) * multiple)
    w = max(multiple, int(round(width * scale / multiple)) * multiple)
    return h, w


# --- compositing ------------------------------------------------------------------------------------
def translation(dx: float, dy: float) -> np.ndarray:
    """The 3x3 transform that moves by ``(dx, dy)``."""
    return np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1.0]])


def _warp_crop(image: np.ndarray, m: np.ndarray, width: int, height: int, interp: int = cv2.INTER_LINEAR
               ) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """``image`` warped by ``m`` (3x3) into the frame, only over the bbox it lands on: (crop, (x0, y0, x1, y1))."""
    h, w = image.shape[:2]
    corners = np.array([[[0, 0], [w, 0], [w, h], [0, h]]], np.float64)
    proj = cv2.perspectiveTransform(corners, m)[0]
    x0, y0 = int(np.floor(max(0, proj[:, 0].min()))), int(np.floor(max(0, proj[:, 1].min())))
    x1, y1 = int(np.ceil(min(width, proj[:, 0].max() + 1))), int(np.ceil(min(height, proj[:, 1].max() + 1)))
    if x1 <= x0 or y1 <= y0:
        return None
    mc = translation(-x0, -y0) @ m
    if np.allclose(mc[2], [0, 0, 1]):
        out = cv2.warpAffine(image, mc[:2], (x1 - x0, y1 - y0), flags=interp, borderMode=cv2.BORDER_CONSTANT)
    else:
        out = cv2.warpPerspective(image, mc, (x1 - x0, y1 - y0), flags=interp, borderMode=cv2.BORDER_CONSTANT)
    return out, (x0, y0, x1, y1)


def render_product(background: np.ndarray, product: np.ndarray, m: np.ndarray, shadow: np.ndarray | None = None,
                   shadow_m: np.ndarray | None = None, gain: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``product`` (RGBA) composited over ``background`` through ``m`` (product → frame), with an optional
    ``shadow`` map (float, opacity already applied) placed by ``shadow_m``; returns (frame, alpha (H, W) float32).
    Only the box that the shadow and the product land on is worked in floats; the rest is the background as it was."""
    height, width = background.shape[:2]
    out = background.copy()
    alpha = np.zeros((height, width), np.float32)
    shade = _warp_crop(shadow.astype(np.float32), shadow_m, width, height) \
        if shadow is not None and shadow_m is not None else None
    warped = _warp_crop(product, m, width, height)
    boxes = [w[1] for w in (shade, warped) if w is not None]
    if not boxes:
        return out, alpha
    bx0, by0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    bx1, by1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    work = background[by0:by1, bx0:bx1].astype(np.float32)
    if shade is not None:
        sh, (x0, y0, x1, y1) = shade
        work[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0] *= (1.0 - np.clip(sh, 0, 1))[..., None]
    if warped is not None:
        crop, (x0, y0, x1, y1) = warped
        a = crop[..., 3].astype(np.float32) / 255.0
        rgb = crop[..., :3].astype(np.float32) * gain
        region = work[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0]
        work[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0] = region + (rgb - region) * a[..., None]
        alpha[y0:y1, x0:x1] = a
    out[by0:by1, bx0:bx1] = np.clip(work, 0, 255).round().astype(np.uint8)
    return out, alpha
