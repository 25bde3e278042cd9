"""Control signals for the generative propagation backends, in NumPy and OpenCV (no torch).

- :func:`render_points`: tracked semantic points drawn as a sparse control video (``vace-points``);
  each point keeps its colour through the clip, hidden points are not drawn.
- :func:`map_tracks_to_box`: A's tracked points carried onto B's box (box-to-box map on the first
  frame, A's displacements scaled by the same factor afterwards).
- :func:`edit_region`: the per-frame region a backend may repaint (A's mask and B's moving box, dilated).
- :func:`normalized_alpha` / :func:`silhouette_iou`: shape similarity of A and B, used by ``auto``.
- :func:`compose_condition`: source pixels outside the region, a control signal inside it.
- :func:`masks_of_b` / :func:`carry_mask`: where B is in each frame of a generated clip (an estimate
  from B's first-frame mask moved and scaled with A's mask), for the judge and the review overlay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pvtt.types import Box, Tracks


def point_colors(count: int, seed: int = 0) -> np.ndarray:
    """``(count, 3)`` uint8 saturated colours, evenly spread in hue (shuffled by ``seed``), never black."""
    hues = (np.arange(count) * 180.0 / max(count, 1)).astype(np.float32)
    rng = np.random.default_rng(seed)
    hues = hues[rng.permutation(count)] if count else hues
    hsv = np.stack([hues, np.full(count, 255.0), np.full(count, 255.0)], -1).astype(np.uint8)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0] if count else np.zeros((0, 3), np.uint8)


def render_points(points: np.ndarray, visible: np.ndarray, height: int, width: int, radius: int = 4,
                  background: int = 32, colors: np.ndarray | None = None) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 frames of ``points`` ``(T, K, 2)`` drawn as discs where ``visible`` ``(T, K)``.

    The background is dark grey rather than black (VACE control videos do better off pure black);
    point ``k`` has the same colour in every frame, so the model can follow each point's identity.
    """
    points = np.asarray(points, np.float32)
    visible = np.asarray(visible, bool)
    if points.ndim != 3 or points.shape[-1] != 2 or visible.shape != points.shape[:2]:
        raise ValueError(f"points must be (T, K, 2) and visible (T, K), got {points.shape} and {visible.shape}")
    colors = point_colors(points.shape[1]) if colors is None else np.asarray(colors, np.uint8)
    frames = np.full((points.shape[0], height, width, 3), background, np.uint8)
    for t in range(points.shape[0]):
        for k in np.flatnonzero(visible[t] & np.isfinite(points[t]).all(-1)):
            x, y = points[t, k]
            cv2.circle(frames[t], (int(round(x)), int(round(y))), radius, tuple(int(c) for c in colors[k]), -1,
                       lineType=cv2.LINE_AA)
    return frames


def box_of_mask(mask: np.ndarray) -> Box | None:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return Box(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def box_slices(box: Box, width: int, height: int) -> tuple[slice, slice]:
    """``(rows, columns)`` of the pixels ``box`` covers, clipped to a ``width`` x ``height`` frame."""
    b = box.clip_to(width, height)
    return slice(int(b.y0), int(np.ceil(b.y1))), slice(int(b.x0), int(np.ceil(b.x1)))


def map_tracks_to_box(tracks: Tracks, box_a: Box, box_b: Box) -> Tracks:
    """A's points moved onto B: first frame by the box-to-box map, later frames by A's displacement, scaled.

    B keeps A's motion (translation, and rotation/scale as far as the points express them) while
    sitting in its own, aspect-adapted box.
    """
    sx = box_b.width / max(box_a.width, 1e-6)
    sy = box_b.height / max(box_a.height, 1e-6)
    scale = np.float32([sx, sy])
    p0 = tracks.points[0]
    start = (p0 - np.float32([box_a.x0, box_a.y0])) * scale + np.float32([box_b.x0, box_b.y0])
    moved = start[None] + (tracks.points - p0[None]) * scale
    return Tracks(moved.astype(np.float32), tracks.visible.copy(), list(tracks.labels))


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` (H, W) or (T, H, W) bool grown by ``pixels`` (elliptic kernel), per frame."""
    mask = np.asarray(mask, bool)
    if pixels <= 0:
        return mask.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    if mask.ndim == 2:
        return cv2.dilate(mask.astype(np.uint8), kernel) > 0
    return np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in mask])


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


def _centroid(mask: np.ndarray) -> tuple[float, float] | None:
    ys, xs = np.nonzero(mask)
    return (float(xs.mean()), float(ys.mean())) if len(xs) else None


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


def compose_condition(source: np.ndarray, control: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Per frame: ``source`` outside ``region``, ``control`` inside (uint8 ``(T, H, W, 3)``)."""
    return np.where(np.asarray(region, bool)[..., None], control, source).astype(np.uint8)


def paste_rgba(frame: np.ndarray, rgba: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """``rgba`` resized into ``box`` and alpha-composited over ``frame``; returns (frame, (H, W) alpha float)."""
    height, width = frame.shape[:2]
    x0, y0 = int(round(box.x0)), int(round(box.y0))
    bw, bh = max(1, int(round(box.width))), max(1, int(round(box.height)))
    patch = cv2.resize(rgba, (bw, bh), interpolation=cv2.INTER_AREA if bw < rgba.shape[1] else cv2.INTER_CUBIC)
    alpha = np.zeros((height, width), np.float32)
    out = frame.astype(np.float32).copy()
    ys, xs = slice(max(y0, 0), min(y0 + bh, height)), slice(max(x0, 0), min(x0 + bw, width))
    py, px = slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0)
    if ys.stop > ys.start and xs.stop > xs.start:
        a = patch[py, px, 3:4].astype(np.float32) / 255.0
        out[ys, xs] = a * patch[py, px, :3] + (1 - a) * out[ys, xs]
        alpha[ys, xs] = a[..., 0]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), alpha


def on_white(rgba: np.ndarray) -> np.ndarray:
    """An RGBA product photo flattened onto white (how VACE reference images are shown)."""
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    return np.clip(rgba[..., :3] * a + 255.0 * (1 - a) + 0.5, 0, 255).astype(np.uint8)


def letterbox(image: np.ndarray, height: int, width: int, fill: int = 255) -> np.ndarray:
    """``image`` scaled to fit ``height`` x ``width`` (aspect kept) and centred on a ``fill`` canvas."""
    h, w = image.shape[:2]
    scale = min(height / h, width / w)
    nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    canvas = np.full((height, width, 3), fill, np.uint8)
    top, left = (height - nh) // 2, (width - nw) // 2
    canvas[top:top + nh, left:left + nw] = cv2.resize(image[..., :3], (nw, nh), interpolation=cv2.INTER_AREA)
    return canvas


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


def model_size(height: int, width: int, max_area: int, multiple: int) -> tuple[int, int]:
    """The clip's size scaled to about ``max_area`` pixels, aspect kept, sides multiples of ``multiple``."""
    scale = (max_area / float(height * width)) ** 0.5
    h = max(multiple, int(round(height * scale / multiple)) * multiple)
    w = max(multiple, int(round(width * scale / multiple)) * multiple)
    return h, w


@dataclass
class Choice:
    """What ``auto`` chose for one pair, and why (stored on the pair record)."""

    strategy: str
    reason: str
    iou: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "reason": self.reason, "iou": self.iou}


def make_result(frames: np.ndarray, strategy: str, reason: str = "", masks: np.ndarray | None = None,
                **info: Any) -> Any:
    """The :class:`pvtt.propagate.PropagateResult` of a generative backend (``info`` holds its details)."""
    from pvtt.propagate import PropagateResult

    return PropagateResult(frames, masks=masks, info={"strategy": strategy, "reason": reason, **info})


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


def masks_of_b(insert: Any, masks_a: np.ndarray) -> np.ndarray:
    """``(T, H, W)`` bool: where B is estimated to be in each frame (:func:`carry_mask` of its first-frame mask:
    the insert's alpha, else its box, else A's own first-frame mask)."""
    masks_a = as_mask_array(masks_a)
    _, alpha, box = insert_parts(insert)
    if alpha is not None:
        mask0 = alpha > (127 if alpha.dtype == np.uint8 else 0.5)
    elif box is not None:
        mask0 = np.zeros(masks_a.shape[1:], bool)
        mask0[box_slices(box, mask0.shape[1], mask0.shape[0])] = True
    else:
        mask0 = masks_a[0]
    return carry_mask(mask0, masks_a)


def insert_parts(insert: Any) -> tuple[np.ndarray, np.ndarray | None, Box | None]:
    """(edited first frame (H, W, 3) uint8, B's first-frame alpha (H, W) or None, B's box or None) of ``insert``.

    ``insert`` is an :class:`~pvtt.insert.InsertResult`, or just the edited frame as an array.
    """
    if isinstance(insert, np.ndarray):
        return insert, None, None
    frame = next((getattr(insert, n) for n in ("frame", "image", "keyframe") if getattr(insert, n, None) is not None),
                 None)
    if frame is None:
        raise ValueError(f"insert result {type(insert).__name__} has no edited frame (frame/image/keyframe)")
    alpha = next((getattr(insert, n) for n in ("alpha", "mask") if getattr(insert, n, None) is not None), None)
    box = getattr(insert, "box", None)
    if box is not None and not isinstance(box, Box):
        box = Box(*[float(v) for v in box][:4])
    if box is None and alpha is not None:
        box = box_of_mask(np.asarray(alpha) > (0.5 if np.asarray(alpha).dtype != np.uint8 else 127))
    return np.asarray(frame), (None if alpha is None else np.asarray(alpha)), box


def as_mask_array(masks: Any) -> np.ndarray:
    """``(T, H, W)`` bool of a :class:`~pvtt.types.Masks` or an array."""
    return np.asarray(getattr(masks, "data", masks), bool)
