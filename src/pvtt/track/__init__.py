"""Track: semantic points on the product, tracked through the clip with visibility.

The ``lk`` backend (CPU) picks distinctive features inside the first-frame mask (spread by farthest-point
sampling) plus the outline's extremal points, and follows them with pyramidal Lucas-Kanade, checked
forward-backward and against the masks; lost points are re-detected by projecting their first-frame
position through a similarity fitted on the surviving points.

With ``points: vlm`` the semantic points come from a vision-language model instead (the ``points`` stage,
:mod:`pvtt.stages.vlm`): it names ``vlm_parts`` distinctive parts of the product and points at them on frame 0;
points outside the product mask are dropped, and with fewer than ``min_vlm_points`` left the features are used,
with the reason in the track record. The VLM points go first, features fill up to ``num_points``.

Also here: :func:`track_grid` (a regular grid of points for motion scores) and :func:`forward_backward_error`
(a track-quality measure). The ``.npz`` track files are written and read by :mod:`pvtt.artifacts`.
"""

from __future__ import annotations

from typing import Any, Literal

import cv2
import numpy as np
from pydantic import Field

from pvtt.registry import Backend, Registry
from pvtt.settings import Settings
from pvtt.types import Clip, Masks, Tracks

BACKENDS = Registry("track", {"lk": "pvtt.track.lk:LKTracker"})
LK_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)


class TrackSettings(Settings, backends=BACKENDS):
    backend: str = "lk"
    """'lk': pyramidal Lucas-Kanade on features of the first-frame mask (CPU)."""
    num_points: int = Field(12, ge=1)
    """Points per clip (K), extremal points included."""
    num_extremal: int = Field(4, ge=0, le=4)
    """Of these, outline extremes (top, bottom, left, right-most)."""
    max_candidates: int = Field(300, ge=1)
    """Corner candidates (goodFeaturesToTrack) before farthest-point sampling."""
    quality_level: float = Field(0.01, gt=0, le=1)
    """goodFeaturesToTrack quality level (relative to the best corner)."""
    erode: float = Field(0.04, ge=0, le=0.5)
    """Features are taken inside the mask eroded by this fraction of sqrt(mask area)."""
    window: int = Field(21, ge=5)
    """Lucas-Kanade window (px)."""
    levels: int = Field(3, ge=0)
    """Lucas-Kanade pyramid levels above the base."""
    fb_threshold: float = Field(2.0, gt=0)
    """Forward-backward error (px) above which a point becomes invisible."""
    mask_margin: float = Field(0.05, ge=0)
    """A point outside the mask dilated by this fraction of the frame's short side becomes invisible."""
    redetect: bool = True
    """Re-detect lost points by projecting their first-frame position through a RANSAC similarity."""
    recover_from_mask: bool = True
    """When fewer than min_support points are left, align the first frame's product to the frame (ECC on both
    products set on a plain ground, so the outline counts) and re-detect the lost points through that map, so points
    lost under a hand or in a fast turn come back once seen again (with redetect)."""
    min_support: int = Field(4, ge=2)
    """Visible points needed to fit the re-detection similarity."""
    min_ncc: float = Field(0.6, ge=-1, le=1)
    """Normalised cross-correlation with the first-frame patch needed to accept a re-detected point."""
    points: Literal["features", "vlm"] = "features"
    """How the points on frame 0 are chosen: 'features' (corners spread by farthest-point sampling, plus the outline's
    extremes) or 'vlm' (the `vlm` model names `vlm_parts` parts of the product and points at them; features fill up
    to num_points; fewer than `min_vlm_points` inside the mask: features only, the reason in the track record).
    'vlm' stops a run at its start when the VLM weights are missing."""
    vlm_parts: int = Field(6, ge=1)
    """points: vlm — parts of the product the VLM is asked to name and point at."""
    min_vlm_points: int = Field(3, ge=1)
    """points: vlm — fewest VLM points inside the product mask to use them; fewer: the features are used."""


class Tracker(Backend):
    """Base of track backends."""

    def track(self, clip: Clip, masks: Masks, points: tuple[np.ndarray, list[str]] | None = None) -> Tracks:
        """Tracks of points on the product; ``points``: ``((K, 2) frame-0 positions, labels)`` chosen elsewhere
        (the VLM's), which go first."""
        raise NotImplementedError


def make_tracker(settings: TrackSettings | None = None, **overrides: Any) -> Tracker:
    """The track backend named by ``settings.backend``."""
    return BACKENDS.make(settings or TrackSettings(), **overrides)


def _gray(frames: np.ndarray, scale: float = 1.0) -> list[np.ndarray]:
    out = []
    for f in frames:
        g = cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)
        if scale != 1.0:
            g = cv2.resize(g, (round(g.shape[1] * scale), round(g.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        out.append(g)
    return out


def lk_pair(a: np.ndarray, b: np.ndarray, pts: np.ndarray, window: int = 21, levels: int = 3
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LK from ``a`` to ``b`` and back: (positions in ``b``, ok status, forward-backward error in px)."""
    if len(pts) == 0:
        return pts.copy(), np.zeros(0, bool), np.zeros(0, np.float32)
    p = pts.astype(np.float32).reshape(-1, 1, 2)
    q, st1, _ = cv2.calcOpticalFlowPyrLK(a, b, p, None, winSize=(window, window), maxLevel=levels, criteria=LK_CRITERIA)
    r, st2, _ = cv2.calcOpticalFlowPyrLK(b, a, q, None, winSize=(window, window), maxLevel=levels, criteria=LK_CRITERIA)
    fb = np.linalg.norm((r - p).reshape(-1, 2), axis=1)
    ok = (st1.ravel() > 0) & (st2.ravel() > 0) & np.isfinite(fb)
    return q.reshape(-1, 2), ok, fb.astype(np.float32)


def inside(pts: np.ndarray, width: int, height: int) -> np.ndarray:
    return (pts[:, 0] >= 0) & (pts[:, 0] <= width - 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= height - 1)


def track_grid(clip: Clip, step: int = 32, exclude: np.ndarray | None = None, fb_threshold: float = 1.0,
               max_side: int = 640) -> Tracks:
    """A regular grid (``step`` px) on frame 0 tracked by LK; a lost point is re-seeded at its grid position.

    Re-seeding matters for motion scores: LK fails on flat regions (plain backdrops, a black fade-in
    frame), and if lost points stayed lost the score would be measured on the few textured points left,
    often a static text overlay. A re-seeded point is placed on the frame where it was lost and stays
    invisible there, so a step counts (``visible[t-1] & visible[t]``) only when it was really tracked and
    the jump back to the grid never counts as motion.

    ``exclude``: (H,W) or (T,H,W) bool — grid points starting there are dropped, and with (T,H,W) a point
    entering the excluded region becomes invisible (and is not re-seeded inside it). Tracking runs at long
    side ``max_side``; the returned points are in clip pixels.
    """
    height, width = clip.height, clip.width
    scale = min(1.0, max_side / max(height, width))
    gray = _gray(clip.frames, scale)
    xs, ys = np.meshgrid(np.arange(step / 2, width, step), np.arange(step / 2, height, step))
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
    ex = None if exclude is None else np.asarray(exclude, bool)
    if ex is not None:
        ex0 = ex[0] if ex.ndim == 3 else ex
        pts = pts[~ex0[pts[:, 1].astype(int), pts[:, 0].astype(int)]]
    count, k = clip.num_frames, len(pts)
    points = np.zeros((count, k, 2), np.float32)
    visible = np.zeros((count, k), bool)
    points[0], visible[0] = pts, True
    xi0, yi0 = pts[:, 0].astype(int), pts[:, 1].astype(int)
    for t in range(1, count):
        # re-seed the points lost on frame t-1 at their grid position (they stay invisible on t-1)
        seed = ~visible[t - 1]
        if ex is not None and ex.ndim == 3 and k:
            seed &= ~ex[t - 1][yi0, xi0]
        points[t - 1][seed] = pts[seed]
        live = visible[t - 1] | seed
        q, ok, fb = lk_pair(gray[t - 1], gray[t], points[t - 1] * scale, window=15, levels=3)
        full = q / scale
        ok &= live & (fb < fb_threshold) & inside(full, width, height)
        if ex is not None and ex.ndim == 3 and k:
            xi = np.clip(full[:, 0].astype(int), 0, width - 1)
            yi = np.clip(full[:, 1].astype(int), 0, height - 1)
            ok &= ~ex[t][yi, xi]
        points[t] = np.where(ok[:, None], full, points[t - 1])
        visible[t] = ok
    return Tracks(points, visible, ["grid"] * k)


def forward_backward_error(clip: Clip, tracks: Tracks, window: int = 21, levels: int = 3) -> np.ndarray:
    """(T-1, K) px: LK from each point at t to t+1 and back; NaN where the point is invisible at t or t+1."""
    gray = _gray(clip.frames)
    count, k = tracks.points.shape[:2]
    err = np.full((max(0, count - 1), k), np.nan, np.float32)
    for t in range(count - 1):
        sel = tracks.visible[t] & tracks.visible[t + 1]
        if sel.any():
            _, ok, fb = lk_pair(gray[t], gray[t + 1], tracks.points[t][sel], window, levels)
            err[t, np.flatnonzero(sel)] = np.where(ok, fb, np.nan)
    return err


__all__ = ["BACKENDS", "TrackSettings", "Tracker", "forward_backward_error", "make_tracker", "track_grid"]
