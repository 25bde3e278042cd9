"""Classical propagation: B follows A's semantic points, warped over the erased background.

1. Per frame, the transform frame 0 → frame t is fitted (RANSAC) to A's points visible in both
   frames: an affine map by default, a similarity or a homography on request (similarity when there
   are too few points: 3 for affine, 4 for a homography).
   A frame whose RANSAC inliers are fewer than ``min_inlier_ratio`` of its visible points (the
   points disagree: drifted tracks) counts as lost too. Runs of at most ``max_lost_frames`` lost
   frames are bridged; longer runs reject the pair ("tracks lost at frame i: …" /
   "tracks inconsistent at frame i: …").
2. Temporal smoothing: the corners of B's box are carried by each transform, smoothed over time
   (Gaussian), and the transforms refitted to the smoothed corners — no jitter from point noise.
3. Each frame: B (the inserted, harmonised RGBA) and its contact shadow warped by the frame's
   transform over ``background[t]``, its brightness following the background's around it.
   B's placement is that transform, or with ``orientation: upright`` only its local scale plus the
   translation that keeps B's anchor (bottom centre) on A's motion: a standing product does not
   shear or roll with the table plane it stands on.
4. Occlusion: inside A's expected footprint (frame-0 mask warped to t) but outside A's mask at t,
   *and* unlike A's frame-0 look carried to t, something is in front of A (a hand): the clip's
   pixels are shown there, over B. A footprint pixel that still looks like A is an under-segmented
   mask, not an occluder (showing the clip there would bring A back). Nor is a pixel of one of A's own
   colours (``occlusion_colour``): A turned or lifted no longer looks like its frame-0 self where its mask
   missed it, but it keeps its colours, which a hand in front of it rarely shares. Nor is a piece that stays in a
   band along the footprint's edge (``occlusion_depth``): there the warped footprint overshoots A's outline onto the
   table beside it, while a hand in front of A reaches into it.
"""

from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter, gaussian_filter1d

from pvtt.compose import box_of_mask, box_slices, render_product
from pvtt.errors import RejectItem
from pvtt.propagate import PropagateResult, Propagator
from pvtt.types import Box, Clip, InsertResult, Masks, Tracks

log = logging.getLogger("pvtt")


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (3x3) mapping ``src`` (N, 2) to ``dst`` (N, 2) (Umeyama, no reflection)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    cov = b.T @ a / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ sign @ vt
    var = (a ** 2).sum() / len(src)
    scale = float(np.trace(np.diag(d) @ sign) / max(var, 1e-12))
    m = np.eye(3)
    m[:2, :2] = scale * rot
    m[:2, 2] = mu_d - scale * rot @ mu_s
    return m


def fit_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares affine map (3x3) of ``src`` (N >= 3, 2) onto ``dst`` (N, 2)."""
    a = np.hstack([src, np.ones((len(src), 1))])
    coef, *_ = np.linalg.lstsq(a, dst, rcond=None)
    return np.vstack([coef.T, [0, 0, 1.0]])


def _fit(p0: np.ndarray, pt: np.ndarray, model: str, threshold: float) -> tuple[np.ndarray | None, int]:
    """Transform (3x3) mapping ``p0`` to ``pt`` by RANSAC, and its inlier count."""
    if model == "affine" and len(p0) >= 3:
        m, inl = cv2.estimateAffine2D(p0, pt, method=cv2.RANSAC, ransacReprojThreshold=threshold)
        if m is not None and inl is not None and inl.sum() >= 3:
            keep = inl.ravel().astype(bool)
            return fit_affine(p0[keep], pt[keep]), int(keep.sum())
    if model == "homography" and len(p0) >= 4:
        h, inl = cv2.findHomography(p0, pt, cv2.RANSAC, threshold)
        if h is not None and abs(np.linalg.det(h[:2, :2])) > 1e-6:
            return h / h[2, 2], int(inl.sum()) if inl is not None else len(p0)
    if len(p0) == 2:
        return fit_similarity(p0, pt), 2
    m, inl = cv2.estimateAffinePartial2D(p0, pt, method=cv2.RANSAC, ransacReprojThreshold=threshold)
    if m is None:
        return None, 0
    keep = inl.ravel().astype(bool) if inl is not None else np.ones(len(p0), bool)
    if keep.sum() >= 2:
        return fit_similarity(p0[keep], pt[keep]), int(keep.sum())
    return np.vstack([m, [0, 0, 1]]), int(keep.sum())


class ColourModel:
    """A smoothed Lab histogram of a set of pixels, and the level below which a colour counts as foreign to them."""

    BINS = 16

    def __init__(self, rgb: np.ndarray, share: float):
        bins = self._bins(np.asarray(rgb, np.uint8).reshape(-1, 1, 3))
        hist = np.bincount(bins, minlength=self.BINS ** 3).reshape((self.BINS,) * 3).astype(np.float64)
        self.hist = gaussian_filter(hist, 0.7, mode="constant").ravel()
        self.level = float(np.quantile(self.hist[bins], share)) if len(bins) else 0.0

    def _bins(self, rgb: np.ndarray) -> np.ndarray:
        """The flat histogram bin of each pixel of ``rgb`` (any shape ending in 3, uint8)."""
        lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.int32) * self.BINS // 256
        return (lab[:, 0] * self.BINS + lab[:, 1]) * self.BINS + lab[:, 2]

    def foreign(self, rgb: np.ndarray) -> np.ndarray:
        """``(H, W)`` bool: the pixels of ``rgb`` whose colour is rarer among the model's pixels than its level."""
        return (self.hist[self._bins(np.ascontiguousarray(rgb))] < self.level).reshape(rgb.shape[:2])


def _product_of(inserted: InsertResult) -> tuple[np.ndarray, np.ndarray]:
    """(RGBA product, product → frame-0 transform); cut from the edited frame when the backend gave none."""
    if getattr(inserted, "product", None) is not None and getattr(inserted, "transform", None) is not None:
        return inserted.product, np.asarray(inserted.transform, np.float64)
    alpha = np.asarray(inserted.alpha, np.float32)
    if alpha.dtype != np.float32 or alpha.max() > 1.0:
        alpha = alpha / 255.0
    ys, xs = np.nonzero(alpha > 0.02)
    if len(xs) == 0:
        raise ValueError("inserted.alpha is empty: B is nowhere in the edited first frame")
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    rgba = np.dstack([inserted.frame[y0:y1, x0:x1], (alpha[y0:y1, x0:x1] * 255).astype(np.uint8)])
    return rgba, np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1.0]])


class WarpPropagator(Propagator):
    """Semantic-point-driven warp of B (see the module docstring)."""

    name = "warp"

    def propagate(self, clip: Clip, background: np.ndarray, masks_a: Masks, tracks_a: Tracks,
                  inserted: InsertResult, **_: Any) -> PropagateResult:
        s = self.settings
        # 1. check inputs
        frames = np.asarray(clip.frames)
        background = np.asarray(background)
        masks = np.asarray(getattr(masks_a, "data", masks_a), bool)
        t_count, height, width = frames.shape[:3]
        if background.shape != frames.shape:
            raise ValueError(f"background must be {frames.shape}, got {background.shape}")
        if masks.shape != frames.shape[:3]:
            raise ValueError(f"masks_a must be {frames.shape[:3]}, got {masks.shape}")
        points = np.asarray(tracks_a.points, np.float64)
        visible = np.asarray(tracks_a.visible, bool)
        if points.shape[:1] != (t_count,) or visible.shape != points.shape[:2]:
            raise ValueError(f"tracks_a must cover {t_count} frames, got points {points.shape}, "
                             f"visible {visible.shape}")
        product, to_frame0 = _product_of(inserted)

        # 2. per-frame transforms from the visible points
        ys, xs = np.nonzero(masks[0])
        diag = float(np.hypot(np.ptp(xs) + 1, np.ptp(ys) + 1)) if len(xs) else float(np.hypot(width, height)) * 0.2
        threshold = max(1.0, s.ransac_threshold * diag)
        transforms = np.tile(np.eye(3), (t_count, 1, 1))
        counts = np.zeros(t_count, int)
        inliers = np.zeros(t_count, int)
        ok = np.zeros(t_count, bool)
        for t in range(t_count):
            common = visible[0] & visible[t]
            counts[t] = int(common.sum())
            if counts[t] < s.min_points:
                continue
            m, inliers[t] = (np.eye(3), counts[t]) if t == 0 else _fit(points[0, common], points[t, common], s.model,
                                                                       threshold)
            if m is not None and inliers[t] >= max(2, s.min_inlier_ratio * counts[t]):
                transforms[t], ok[t] = m, True
        run_start = None
        for t in range(t_count + 1):
            if t < t_count and not ok[t]:
                run_start = t if run_start is None else run_start
                continue
            if run_start is not None and (t - run_start > s.max_lost_frames or run_start == 0):
                if counts[run_start] < s.min_points:
                    raise RejectItem(f"tracks lost at frame {run_start}: {counts[run_start]} visible points, need "
                                     f"{s.min_points} (lost for {t - run_start} frames, at most {s.max_lost_frames} "
                                     f"bridged)")
                raise RejectItem(f"tracks inconsistent at frame {run_start}: {inliers[run_start]} of "
                                 f"{counts[run_start]} visible points agree on one motion, need "
                                 f"{s.min_inlier_ratio * 100:.0f}% (for {t - run_start} frames, at most "
                                 f"{s.max_lost_frames} bridged)")
            run_start = None

        # 3. smooth the box corners over time, bridge lost frames, refit
        ph, pw = product.shape[:2]
        c0 = cv2.perspectiveTransform(np.array([[[0, 0], [pw, 0], [pw, ph], [0, ph]]], np.float64), to_frame0)[0]
        corners = np.stack([cv2.perspectiveTransform(c0[None], transforms[t])[0] for t in range(t_count)])
        good = np.flatnonzero(ok)
        for k in range(4):
            for d in range(2):
                corners[:, k, d] = np.interp(np.arange(t_count), good, corners[good, k, d])
        if s.smooth > 0 and t_count > 2:
            corners = gaussian_filter1d(corners, s.smooth, axis=0, mode="nearest")
        for t in range(t_count):
            if s.model == "homography":
                transforms[t] = cv2.getPerspectiveTransform(c0.astype(np.float32), corners[t].astype(np.float32))
            elif s.model == "affine":
                transforms[t] = fit_affine(c0, corners[t])
            else:
                transforms[t] = fit_similarity(c0, corners[t])

        # B's placement: the fitted motion itself, or (upright) only its scale, and the translation that keeps
        # B's anchor point on A's motion — a standing product filmed by an orbiting camera does not shear or
        # roll with the table plane under it
        info_ins = getattr(inserted, "info", None) or {}
        upright = s.orientation == "upright" or (s.orientation == "auto" and info_ins.get("anchor") == "bottom-center")
        placement = transforms.copy()
        if upright:
            base = (c0[2] + c0[3]) / 2 if info_ins.get("anchor") == "bottom-center" else c0.mean(axis=0)
            probe = np.array([[base, base + [8.0, 0.0], base + [0.0, 8.0]]], np.float64)
            for t in range(t_count):
                q = cv2.perspectiveTransform(probe, transforms[t])[0]
                (ux, uy), (vx, vy) = q[1] - q[0], q[2] - q[0]
                scale = float(np.sqrt(abs(ux * vy - uy * vx) / 64.0))
                placement[t] = (np.array([[1, 0, q[0, 0]], [0, 1, q[0, 1]], [0, 0, 1.0]]) @ np.diag([scale, scale, 1.0])
                                @ np.array([[1, 0, -base[0]], [0, 1, -base[1]], [0, 0, 1.0]]))

        # 4. render every frame, with occlusion and relighting
        shadow, shadow_m = info_ins.get("shadow"), info_ins.get("shadow_transform")
        out = np.empty_like(frames)
        masks_b = np.zeros((t_count, height, width), bool)
        footprint0 = masks[0].astype(np.uint8)
        k = max(3, int(0.03 * diag)) | 1
        opening = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        depth = int(round(s.occlusion_depth * diag))
        inward = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * depth + 1, 2 * depth + 1)) if depth else None
        ref_level = self._level(background[0], c0)
        occluded_px = 0
        colours_a = ColourModel(frames[0][masks[0]], s.occlusion_colour) if s.occlusion_colour > 0 else None
        for t in range(t_count):
            gain = 1.0
            if s.relight and ref_level > 1:
                gain = float(np.clip(self._level(background[t], corners[t]) / ref_level, 0.6, 1.6))
            m = placement[t] @ to_frame0
            frame, alpha = render_product(background[t], product, m, shadow,
                                          None if shadow_m is None else placement[t] @ shadow_m, gain)
            visible_b = alpha > 0.5
            if s.occlusion and t > 0:
                footprint = cv2.warpPerspective(footprint0, transforms[t], (width, height),
                                                flags=cv2.INTER_NEAREST) > 0
                occ = footprint & ~masks[t] & (alpha > 0.02)
                if occ.any() and s.occlusion_threshold > 0:
                    occ &= self._unlike_a(frames[0], frames[t], transforms[t], occ, s.occlusion_threshold)
                if occ.any() and colours_a is not None:
                    crop = box_slices(box_of_mask(occ), width, height)
                    occ[crop] &= colours_a.foreign(frames[t][crop])
                if occ.any():
                    # opened (and, for the depth rule, the footprint eroded) and blended in a crop around it: a margin
                    # of the larger kernel's reach plus the blur's leaves every pixel as the whole frame's would be
                    # (0.3x of this block's time on a 720p clip)
                    box, pad = box_of_mask(occ), max(k, depth) + 5
                    crop = box_slices(Box(box.x0 - pad, box.y0 - pad, box.x1 + pad, box.y1 + pad), width, height)
                    opened = cv2.morphologyEx(occ[crop].astype(np.uint8), cv2.MORPH_OPEN, opening) > 0
                    if inward is not None and opened.any():  # only pieces that reach inside the footprint
                        inner = cv2.erode(footprint[crop].astype(np.uint8), inward) > 0
                        count, labels = cv2.connectedComponents(opened.astype(np.uint8), connectivity=8)
                        deep = np.zeros(count, bool)
                        deep[np.unique(labels[opened & inner])] = True
                        deep[0] = False
                        opened = deep[labels]
                    if opened.any():
                        soft = cv2.GaussianBlur(opened.astype(np.float32), (0, 0), 1.0)[..., None]
                        frame[crop] = (frame[crop] * (1 - soft) + frames[t][crop] * soft).round().astype(np.uint8)
                        visible_b[crop] &= ~opened
                        occluded_px += int(opened.sum())
            out[t] = frame
            masks_b[t] = visible_b
        lost = [int(t) for t in np.flatnonzero(~ok)]
        info = {"strategy": "warp", "reason": "classical point-driven warp", "model": s.model, "upright": upright,
                "bridged_frames": lost, "points_min": int(counts.min()), "points_median": float(np.median(counts)),
                "inlier_ratio_min": float(np.min(inliers[ok] / np.maximum(counts[ok], 1))),
                "occluded_pixels": occluded_px}
        return PropagateResult(out, masks_b, placement, info, strategy="warp", reason=info["reason"])

    @staticmethod
    def _unlike_a(first: np.ndarray, frame: np.ndarray, m: np.ndarray, where: np.ndarray, threshold: float
                  ) -> np.ndarray:
        """Pixels of ``where`` at which ``frame`` differs from ``first`` carried by ``m`` (A's expected look)."""
        ys, xs = np.nonzero(where)
        height, width = where.shape
        x0, y0 = max(0, xs.min() - 4), max(0, ys.min() - 4)
        x1, y1 = min(width, xs.max() + 5), min(height, ys.max() + 5)
        crop = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1.0]]) @ m
        expected = cv2.warpPerspective(first, crop, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                       borderMode=cv2.BORDER_REPLICATE)
        seen = frame[y0:y1, x0:x1]
        diff = np.abs(cv2.blur(seen, (5, 5)).astype(np.float32) - cv2.blur(expected, (5, 5)).astype(np.float32))
        out = np.zeros_like(where)
        out[y0:y1, x0:x1] = diff.mean(axis=2) > threshold
        return out

    @staticmethod
    def _level(image: np.ndarray, corners: np.ndarray) -> float:
        """Mean brightness of ``image`` in a band around the quad ``corners`` (the surroundings of B)."""
        height, width = image.shape[:2]
        x0, y0 = corners.min(0)
        x1, y1 = corners.max(0)
        pad_x, pad_y = (x1 - x0) * 0.3, (y1 - y0) * 0.3
        xa, ya = int(max(0, x0 - pad_x)), int(max(0, y0 - pad_y))
        xb, yb = int(min(width, x1 + pad_x)), int(min(height, y1 + pad_y))
        if xb <= xa or yb <= ya:
            return 0.0
        patch = image[ya:yb, xa:xb].sum(axis=2, dtype=np.float32) / np.float32(image.shape[2])  # = astype + mean
        inner = np.zeros(patch.shape, bool)
        ix0, iy0 = int(max(0, x0 - xa)), int(max(0, y0 - ya))
        ix1, iy1 = int(min(xb, x1) - xa), int(min(yb, y1) - ya)
        inner[iy0:max(iy0, iy1), ix0:max(ix0, ix1)] = True
        band = patch[~inner]
        return float(band.mean()) if band.size else float(patch.mean())
