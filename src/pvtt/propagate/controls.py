"""Control signals for the generative propagation backends, in NumPy and OpenCV (no torch).

- :func:`render_points`: tracked semantic points drawn as a sparse control video (``vace-points``);
  each point keeps its colour through the clip, hidden points are not drawn.
- :func:`map_tracks_to_box`: A's tracked points carried onto B's box (box-to-box map on the first
  frame, A's displacements scaled by the same factor afterwards).
- :func:`compose_condition`: source pixels outside the region, a control signal inside it.
- :func:`on_white` / :func:`letterbox`: B's photo as VACE's reference image.
- :func:`masks_of_b`: where B is in each frame of a generated clip (:func:`pvtt.compose.carry_mask` of B's
  first-frame mask), for the judge and the review overlay.

The regions, boxes and blending these backends share with insert and judge live in :mod:`pvtt.compose`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pvtt.compose import as_mask_array, box_of_mask, box_slices, carry_mask
from pvtt.propagate import PropagateResult
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


def compose_condition(source: np.ndarray, control: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Per frame: ``source`` outside ``region``, ``control`` inside (uint8 ``(T, H, W, 3)``)."""
    return np.where(np.asarray(region, bool)[..., None], control, source).astype(np.uint8)


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


@dataclass
class Choice:
    """What ``auto`` chose for one pair, and why (stored on the pair record)."""

    strategy: str
    reason: str
    iou: float | None = None
    motion: float | None = None  # A's largest median point displacement, fraction of its box diagonal

    def as_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "reason": self.reason, "iou": self.iou, "motion": self.motion}


def make_result(frames: np.ndarray, strategy: str, reason: str = "", masks: np.ndarray | None = None,
                **info: Any) -> Any:
    """The :class:`pvtt.propagate.PropagateResult` of a generative backend (``info`` holds its details)."""
    return PropagateResult(frames, masks=masks, info={"strategy": strategy, "reason": reason, **info})


def masks_of_b(insert: Any, masks_a: np.ndarray) -> np.ndarray:
    """``(T, H, W)`` bool: where B is estimated to be in each frame (:func:`~pvtt.compose.carry_mask` of its first-frame mask:
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

    ``insert`` is an :class:`~pvtt.types.InsertResult`, or just the edited frame as an array.
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
