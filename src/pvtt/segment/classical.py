"""Classical video segmentation: GrabCut on frame 0, carried by dense optical flow, re-refined by GrabCut.

All work happens at a reduced resolution (``work_long_side``); the soft masks are upsampled at the end.

1. GrabCut seeded by the box (outside = background) on frame 0, local to the box plus a margin.
2. DIS optical flow from each frame back to the previous one; the previous soft mask is pulled along
   it (backward warping leaves no holes; what leaves the frame falls off the border).
3. Every ``refine_every`` frames, or when confidence drops, GrabCut re-segments the frame with the
   warped mask as seeds (its core as foreground, an uncertain band around its edge, background beyond);
   a refinement that disagrees too much with the warped mask is discarded as drift.
4. A majority vote over the flow-aligned masks of frames t-1, t, t+1 removes one-frame flicker.

Per-frame confidence: the fraction of mask pixels whose flow is forward-backward consistent, times the
agreement (IoU) between the warped and the refined mask on frames that were refined.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from pvtt.errors import RejectItem
from pvtt.segment import SegmentSettings, Segmenter, check_box
from pvtt.types import Box, Clip, Masks


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``image`` at ``pixel + flow`` (flow from the destination frame to ``image``'s frame)."""
    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _clean(mask: np.ndarray, min_part: float = 0.02) -> np.ndarray:
    """Drop connected parts smaller than ``min_part`` of the mask's area."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask.astype(bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(count, bool)
    keep[1:] = areas >= min_part * areas.sum()
    return keep[labels]


def _grabcut(image: np.ndarray, seeds: np.ndarray, iterations: int) -> np.ndarray | None:
    """GrabCut with a seed map (cv2.GC_* values); None when a class has no pixels or GrabCut fails."""
    fg = np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD)).any()
    bg = np.isin(seeds, (cv2.GC_BGD, cv2.GC_PR_BGD)).any()
    if not (fg and bg):
        return None
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    seeds = seeds.copy()
    try:
        cv2.grabCut(image, seeds, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return None
    return np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD))


def grabcut_box(image: np.ndarray, box: tuple[int, int, int, int], iterations: int,
                prior_distance: float = 12.0) -> np.ndarray:
    """Foreground of ``image`` (RGB) inside ``box`` (x0, y0, x1, y1), by GrabCut on the box plus a margin.

    Instead of GrabCut's usual "everything in the box is probably foreground", pixels in the box whose
    Lab colour lies within ``prior_distance`` of one of the margin's main colours (k-means, clusters with
    at least 10% of the margin) start as probable background: thin products (bracelets, chains, frames)
    then do not drag the background seen through them into the foreground model.
    """
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box
    # keep at least a one-pixel background frame inside the image
    x0, y0, x1, y1 = max(x0, 1), max(y0, 1), min(x1, w - 1), min(y1, h - 1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros((h, w), bool)
    mx, my = max(8, (x1 - x0) // 4), max(8, (y1 - y0) // 4)
    cx0, cy0, cx1, cy1 = max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)
    crop = np.ascontiguousarray(image[cy0:cy1, cx0:cx1])
    in_box = np.zeros(crop.shape[:2], bool)
    in_box[y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0] = True
    seeds = np.full(crop.shape[:2], cv2.GC_BGD, np.uint8)
    seeds[in_box] = cv2.GC_PR_FGD
    if prior_distance > 0 and (~in_box).sum() >= 50:
        lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB).astype(np.float32)
        margin = lab[~in_box]
        if len(margin) > 20000:
            margin = margin[np.random.default_rng(0).choice(len(margin), 20000, replace=False)]
        k = 6
        _, labels, centres = cv2.kmeans(margin, k, None, (cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0), 1,
                                        cv2.KMEANS_PP_CENTERS)
        share = np.bincount(labels.ravel(), minlength=k) / len(labels)
        centres = centres[share >= 0.1]
        dist = np.min(np.linalg.norm(lab[:, :, None] - centres[None, None], axis=-1), axis=-1)
        distinct = in_box & (dist > prior_distance)
        if distinct.sum() >= 0.02 * in_box.sum():  # else the colours say nothing: plain box init
            seeds[in_box & ~distinct] = cv2.GC_PR_BGD
    fg = _grabcut(crop, seeds, iterations)
    out = np.zeros((h, w), bool)
    if fg is not None:
        out[cy0:cy1, cx0:cx1] = fg
    return _clean(out)


def grabcut_refine(image: np.ndarray, mask: np.ndarray, band: int, iterations: int) -> np.ndarray | None:
    """GrabCut seeded by ``mask``: eroded core = foreground, a ``band``-px band around the edge uncertain."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    pad = 3 * band + 4
    cx0, cy0 = max(0, xs.min() - pad), max(0, ys.min() - pad)
    cx1, cy1 = min(w, xs.max() + 1 + pad), min(h, ys.max() + 1 + pad)
    m = mask[cy0:cy1, cx0:cx1].astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    seeds = np.full(m.shape, cv2.GC_BGD, np.uint8)
    seeds[cv2.dilate(m, kernel) > 0] = cv2.GC_PR_BGD
    seeds[m > 0] = cv2.GC_PR_FGD
    seeds[cv2.erode(m, kernel) > 0] = cv2.GC_FGD
    fg = _grabcut(np.ascontiguousarray(image[cy0:cy1, cx0:cx1]), seeds, iterations)
    if fg is None:
        return None
    out = np.zeros((h, w), bool)
    out[cy0:cy1, cx0:cx1] = fg
    return _clean(out)


class ClassicalSegmenter(Segmenter):
    """GrabCut + DIS optical flow segmentation (CPU, no weights)."""

    name = "classical"

    def __init__(self, settings: SegmentSettings | dict[str, Any] | None = None, **overrides: Any):
        if isinstance(settings, SegmentSettings):
            settings = settings.model_dump()
        self.settings = SegmentSettings.model_validate({**(settings or {}), **overrides})

    def segment(self, clip: Clip, box: Box) -> Masks:
        s = self.settings
        # 1. check inputs
        box = check_box(clip, box)
        count, height, width = clip.num_frames, clip.height, clip.width
        # 2. working resolution
        scale = min(1.0, s.work_long_side / max(height, width))
        w, h = max(8, round(width * scale)), max(8, round(height * scale))
        small = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in clip.frames])
        gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in small]
        # 3. frame 0
        s0 = min(1.0, s.first_long_side / max(height, width))
        w0, h0 = max(8, round(width * s0)), max(8, round(height * s0))
        frame0 = cv2.resize(clip.frames[0], (w0, h0), interpolation=cv2.INTER_AREA) if s0 < 1 else clip.frames[0]
        rect = (int(np.floor(box.x0 * s0)), int(np.floor(box.y0 * s0)), int(np.ceil(box.x1 * s0)),
                int(np.ceil(box.y1 * s0)))
        first_hi = grabcut_box(frame0, rect, s.grabcut_iterations, s.prior_distance)
        if first_hi.mean() < s.min_first_area:
            raise RejectItem(f"empty first-frame mask: GrabCut kept {first_hi.mean():.5f} of the frame "
                             f"< {s.min_first_area} inside box {tuple(round(v) for v in box.as_tuple())}")
        first = cv2.resize(first_hi.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        # 4. flows: back[t] maps frame t to t-1, fwd[t] maps frame t to t+1
        presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                   "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
        dis = cv2.DISOpticalFlow_create(presets[s.flow_preset])
        back = [None] + [dis.calc(gray[t], gray[t - 1], None) for t in range(1, count)]
        fwd = [dis.calc(gray[t], gray[t + 1], None) for t in range(count - 1)] + [None]
        # 5. propagate
        soft = np.zeros((count, h, w), np.float32)
        soft[0] = first
        confidence = np.ones(count, np.float32)
        for t in range(1, count):
            warped = _warp(soft[t - 1], back[t])
            warped = np.clip((warped - 0.5) * 2.0 + 0.5, 0.0, 1.0)  # undo the blur of bilinear sampling
            binary = warped > 0.5
            conf = self._flow_consistency(binary, back[t], fwd[t - 1])
            due = s.refine_every and (t % s.refine_every == 0 or confidence[t - 1] < s.refine_below)
            if due and binary.any():
                ys, xs = np.nonzero(binary)
                band = max(2, int(s.band * np.hypot(xs.max() - xs.min(), ys.max() - ys.min())))
                refined = grabcut_refine(small[t], binary, band, s.refine_iterations)
                if refined is not None:
                    agreement = _iou(refined, binary)
                    if agreement >= s.min_refine_agreement:
                        warped = cv2.GaussianBlur(refined.astype(np.float32), (3, 3), 0)
                    conf *= agreement
            soft[t] = warped
            confidence[t] = conf
        # 6. temporal majority over flow-aligned neighbours
        if s.smooth and count >= 3:
            voted = soft.copy()
            for t in range(1, count - 1):
                voted[t] = (_warp(soft[t - 1], back[t]) + soft[t] + _warp(soft[t + 1], fwd[t])) / 3.0
            soft = voted
        # 7. back to the clip's size
        data = np.empty((count, height, width), bool)
        for t in range(count):
            data[t] = cv2.resize(soft[t], (width, height), interpolation=cv2.INTER_LINEAR) > 0.5
        data[0] = cv2.resize(first_hi.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
        confidence[data.reshape(count, -1).sum(axis=1) == 0] = 0.0
        return Masks(data, confidence)

    @staticmethod
    def _flow_consistency(mask: np.ndarray, back: np.ndarray, fwd_prev: np.ndarray) -> float:
        """Fraction of ``mask`` pixels whose back flow, followed by the previous frame's forward flow, returns within 1 px."""
        if not mask.any():
            return 0.0
        there = _warp(fwd_prev, back)  # forward flow of t-1, sampled where each pixel of t came from
        err = np.linalg.norm(back + there, axis=2)
        return float((err[mask] < 1.0).mean())
