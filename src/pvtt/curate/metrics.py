"""Clip measurements for curation: motion (grid tracks), blur, exposure, decode damage, product presence, the
mask's drift, pieces, cover of a given box and of the salient object it lies on, embeddings."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

from pvtt.compose import box_diagonal, box_of_mask, box_slices, convex_hull, dilate, main_pieces, piece_lift
from pvtt.types import Box, Clip, Masks, Tracks


def _steps(tracks: Tracks) -> tuple[np.ndarray, np.ndarray]:
    """Per-step displacement (T-1, K) px and whether the point was visible at both ends."""
    if tracks.points.shape[0] < 2 or tracks.points.shape[1] == 0:
        return np.zeros((0, tracks.points.shape[1])), np.zeros((0, tracks.points.shape[1]), bool)
    d = np.linalg.norm(np.diff(tracks.points, axis=0), axis=2)
    return d, tracks.visible[1:] & tracks.visible[:-1]


def mean_speed(tracks: Tracks) -> tuple[float, float]:
    """Mean per-frame displacement (px) over visible steps, and the fraction of steps that were visible."""
    d, ok = _steps(tracks)
    if ok.size == 0:
        return 0.0, 0.0
    return (float(d[ok].mean()) if ok.any() else 0.0), float(ok.mean())


def motion_scores(clip: Clip, masks: Masks, tracks: Tracks, step: int = 32) -> dict[str, float]:
    """Motion as fractions of the frame diagonal per frame.

    ``motion``: all grid points (Ditto-1M's mean cumulative displacement, per frame); ``camera_motion``:
    grid points outside the dilated product mask; ``object_motion``: the product's points relative to the
    background's median motion of the same frame.
    """
    from pvtt.track import track_grid

    diag = float(np.hypot(clip.width, clip.height))
    grid = track_grid(clip, step, max_side=480)
    motion, tracked = mean_speed(grid)
    out = {"motion": motion / diag, "grid_tracked": tracked}
    # background = grid points that never touch the dilated mask
    data = np.asarray(masks.data, bool)
    margin = max(1, int(0.03 * min(clip.width, clip.height)))
    xi = np.clip(grid.points[..., 0].astype(int), 0, clip.width - 1)
    yi = np.clip(grid.points[..., 1].astype(int), 0, clip.height - 1)
    on_product = np.zeros_like(grid.visible)
    f = 4  # dilate at a quarter of the resolution
    small_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * (margin // f) + 1, 2 * (margin // f) + 1))
    for t in range(clip.num_frames):
        small = data[t, ::f, ::f].astype(np.uint8)
        dil = cv2.dilate(small, small_kernel) > 0
        on_product[t] = dil[np.minimum(yi[t] // f, dil.shape[0] - 1), np.minimum(xi[t] // f, dil.shape[1] - 1)]
    bg = Tracks(grid.points, grid.visible & ~on_product, grid.labels)
    camera, _ = mean_speed(bg)
    out["camera_motion"] = camera / diag
    # object motion: product points relative to the background's median step
    obj = 0.0
    if tracks.points.shape[0] > 1 and tracks.points.shape[1]:
        dp = np.diff(tracks.points, axis=0)
        okp = tracks.visible[1:] & tracks.visible[:-1]
        db = np.diff(bg.points, axis=0)
        okb = bg.visible[1:] & bg.visible[:-1]
        rel = []
        for t in range(dp.shape[0]):
            ref = np.median(db[t][okb[t]], axis=0) if okb[t].sum() >= 3 else np.zeros(2)
            if okp[t].any():
                rel.append(np.linalg.norm(dp[t][okp[t]] - ref, axis=1).mean())
        obj = float(np.mean(rel)) if rel else 0.0
    out["object_motion"] = obj / diag
    out["product_visible_last"] = float(tracks.visible[-1].mean()) if tracks.visible.size else 0.0
    return out


def evenly(count: int, n: int) -> np.ndarray:
    """Up to ``n`` indices spread evenly over ``range(count)``, first and last included."""
    return np.unique(np.linspace(0, count - 1, min(n, count)).round().astype(int))


def _sample_indices(clip: Clip, n: int) -> np.ndarray:
    return evenly(clip.num_frames, n)


def _sample(clip: Clip, n: int) -> np.ndarray:
    return clip.frames[_sample_indices(clip, n)]


def _luma(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def _product_regions(clip: Clip, masks: Masks, n: int, min_fraction: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(luma, product mask)`` of the sampled frames where the product covers at least ``min_fraction``."""
    data = np.asarray(masks.data, bool)
    out = []
    for t in _sample_indices(clip, n):
        if data[t].mean() >= min_fraction:
            out.append((_luma(clip.frames[t]), data[t]))
    return out


def striped_rows(frame: np.ndarray, ratio: float = 4.0, min_step: float = 20.0, run: int = 9) -> float:
    """Share of ``frame``'s rows (H, W, 3 uint8) that are horizontal stripes: decode damage, where rows of
    unrelated colours alternate. A striped row differs from the next by more than ``min_step`` (mean absolute RGB
    difference) and by more than ``ratio`` times it differs along itself; only runs of such rows (a median over
    ``run`` rows) count, so a shelf's edge or a horizon, a row or two, does not. Natural texture (bark, speckles,
    fabric) changes about as much along a row as across rows."""
    from scipy.ndimage import median_filter

    f = frame[:, ::2].astype(np.int16)  # every second column: a stripe runs along the whole row
    across = np.abs(np.diff(f, axis=0)).mean(axis=(1, 2))  # row i against row i + 1
    along = np.abs(np.diff(f, axis=1)).mean(axis=(1, 2))[:-1]  # within row i (between columns 2 apart)
    striped = (across > min_step) & (across > ratio * (along + 1.0))
    return float((median_filter(striped.astype(np.uint8), size=run) > 0).mean())


def decode_damage(clip: Clip, threshold: float) -> dict[str, float]:
    """Every frame's :func:`striped_rows`: the largest share, how many frames exceed ``threshold`` and the first of
    them (-1: none)."""
    shares = np.array([striped_rows(frame) for frame in clip.frames])
    damaged = np.flatnonzero(shares > threshold)
    return {"striped_rows_max": float(shares.max()) if len(shares) else 0.0, "striped_frames": float(len(damaged)),
            "striped_first": float(damaged[0]) if len(damaged) else -1.0}


def product_sharpness(luma: np.ndarray, mask: np.ndarray) -> float:
    """Variance of the Laplacian of ``luma`` over ``mask`` dilated by 1 % of the frame's short side, so the product's
    outline counts: a smooth product has sharp edges."""
    radius = max(1, round(0.01 * min(luma.shape[:2])))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    region = cv2.dilate(np.asarray(mask, np.uint8), kernel) > 0
    return float(cv2.Laplacian(luma, cv2.CV_64F)[region].var())


def sharpness(clip: Clip, masks: Masks, n: int = 8, min_fraction: float = 0.002) -> dict[str, float]:
    """Variance of the Laplacian of the luma, median over ``n`` sampled frames: of the whole frame, of the
    product region (its mask dilated by 1% of the short side, so its outline counts), and the better of
    the two as ``sharpness``.

    Neither alone is fair: a product in focus before a plain or defocused backdrop scores low over the
    whole frame, and a sharp but smooth or dark product scores low on its own.
    """
    frame_values = [float(cv2.Laplacian(_luma(f), cv2.CV_64F).var()) for f in _sample(clip, n)]
    product_values = [product_sharpness(luma, mask) for luma, mask in _product_regions(clip, masks, n, min_fraction)]
    frame = float(np.median(frame_values))
    product = float(np.median(product_values)) if product_values else 0.0
    return {"sharpness": max(frame, product), "frame_sharpness": frame, "product_sharpness": product}


def _exposure_of(lum: np.ndarray) -> tuple[float, float, float]:
    return float(lum.mean()), float((lum <= 5).mean()), float((lum >= 250).mean())


def exposure(clip: Clip, masks: Masks, n: int = 8, min_fraction: float = 0.002) -> dict[str, float]:
    """Mean luma (0-255) and the fractions of pixels clipped dark (<= 5) and bright (>= 250), of the product.

    The product region is the masks of ``n`` sampled frames where the product covers at least
    ``min_fraction`` of the frame; ``exposure_on_product`` is 0 when there is none and the whole frame
    is measured instead. The whole frame's values are kept as ``frame_*``: a bright product on a black
    backdrop has a dark frame but is well exposed.
    """
    lum = np.stack([_luma(f) for f in _sample(clip, n)])
    frame = _exposure_of(lum)
    regions = _product_regions(clip, masks, n, min_fraction)
    product = _exposure_of(np.concatenate([luma[mask] for luma, mask in regions])) if regions else frame
    return {"brightness": product[0], "clipped_dark": product[1], "clipped_bright": product[2],
            "exposure_on_product": float(bool(regions)), "frame_brightness": frame[0],
            "frame_clipped_dark": frame[1], "frame_clipped_bright": frame[2]}


def mask_presence(masks: Masks, min_fraction: float) -> dict[str, float]:
    """Median and largest mask area (fractions of the frame) and the fraction of frames below ``min_fraction``."""
    data = np.asarray(masks.data, bool)
    frac = data.reshape(data.shape[0], -1).mean(axis=1)
    return {"mask_fraction": float(np.median(frac)), "mask_fraction_max": float(frac.max()),
            "absent_fraction": float((frac < min_fraction).mean())}


def mask_pieces(masks: Masks, n: int = 8) -> dict[str, float]:
    """How far pieces of the product mask hang above the rest (:func:`pvtt.compose.piece_lift` of its main pieces) on
    ``n`` evenly sampled frames that hold a mask: the median (``piece_lift``) and the largest (``piece_lift_max``).
    A mask whose pieces float on most frames keeps missing what joins two parts of the product (a rocking horse's
    cream body between its rocker and its mane, before a white wall); a product's thin part lost on one frame
    lifts only that frame."""
    data = np.asarray(masks.data, bool)
    held = np.flatnonzero(data.reshape(len(data), -1).any(axis=1))
    if len(held) == 0:
        return {"piece_lift": 0.0, "piece_lift_max": 0.0}
    lifts = [piece_lift(main_pieces(data[t])[0]) for t in held[evenly(len(held), n)]]
    return {"piece_lift": float(np.median(lifts)), "piece_lift_max": float(max(lifts))}


def mask_drift(masks: Masks, tracks: Tracks, min_points: int = 4) -> dict[str, float]:
    """How much more the mask grows than the product's tracked points spread: per frame, the mask's area over
    frame 0's divided by the square of the points' scale (the median ratio of their pairwise distances, over the
    points visible on both frames), the largest value over the frames where at least ``min_points`` of frame 0's
    points are still visible (``mask_drift``; 1 = the mask grows exactly as the product's image does).

    A rigid product seen closer grows its mask and spreads its points alike; a mask that runs into the backdrop
    (a kettle's mask taking the tiled wall seen through its handle, then more of the wall) or onto the hands grows
    while the points on the product do not spread. Frames where the mask shrinks (occlusion) do not count.
    ``drift_frames``: the frames the value was measured on."""
    data = np.asarray(masks.data, bool)
    areas = data.reshape(data.shape[0], -1).sum(axis=1).astype(np.float64)
    points, visible = np.asarray(tracks.points, np.float64), np.asarray(tracks.visible, bool)
    if areas[0] <= 0 or points.shape[1] < min_points:
        return {"mask_drift": 1.0, "drift_frames": 0.0}
    worst, frames = 1.0, 0
    for t in range(1, min(len(areas), len(points))):
        both = visible[0] & visible[t]
        if both.sum() < min_points:
            continue
        a, b = points[0][both], points[t][both]
        iu = np.triu_indices(len(a), 1)
        d0 = np.linalg.norm(a[:, None] - a[None], axis=2)[iu]
        d1 = np.linalg.norm(b[:, None] - b[None], axis=2)[iu]
        ok = d0 > 2.0  # points closer than 2 px say nothing of scale
        if not ok.any():
            continue
        scale = float(np.median(d1[ok] / d0[ok]))
        frames += 1
        if scale > 0:
            worst = max(worst, float(areas[t] / areas[0] / scale ** 2))
    return {"mask_drift": worst, "drift_frames": float(frames)}


def box_cover(masks: Masks, box: Box) -> dict[str, float]:
    """How the first frame's mask covers the located ``box``: the IoU of the mask's bounding box with it (``box_iou``;
    0: empty mask), the share of the box's pixels in the mask (``box_fill``), and the smaller of the shares of the
    box's width and of its height that the mask's box spans inside it (``box_span``: a mask that holds one of two
    products side by side spans half the width)."""
    mask = np.asarray(masks.data[0], bool)
    first = box_of_mask(mask)
    inside = mask[box_slices(box, mask.shape[1], mask.shape[0])]
    fill = float(inside.sum()) / inside.size if inside.size else 0.0
    span = 0.0
    if first is not None and box.width > 0 and box.height > 0:
        span_x = max(0.0, min(first.x1, box.x1) - max(first.x0, box.x0)) / box.width
        span_y = max(0.0, min(first.y1, box.y1) - max(first.y0, box.y0)) / box.height
        span = float(min(span_x, span_y))
    return {"box_iou": float(first.iou(box)) if first is not None else 0.0, "box_fill": fill, "box_span": span}


def salient_object(frame: np.ndarray, mask: np.ndarray, saliency_of: Callable[[np.ndarray], np.ndarray],
                   threshold: float, reach: float, hands: np.ndarray | None = None) -> np.ndarray:
    """The salient object ``mask`` lies on, on one frame (bool, the frame's shape; empty without a mask).

    A salient-object map (``saliency_of``: RGB crop -> (h, w) map in [0, 1]) of the crop around the mask's hull
    grown by ``reach`` x its box diagonal is cut at ``threshold``, hands (``hands``, a hand mask) taken out. Its
    pieces that touch the mask are the object."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        return np.zeros(mask.shape, bool)
    zone = dilate(convex_hull(mask), max(3, int(reach * box_diagonal(mask))))
    ys, xs = np.nonzero(zone)
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    found = np.zeros(mask.shape, bool)
    found[y0:y1, x0:x1] = np.asarray(saliency_of(np.ascontiguousarray(frame[y0:y1, x0:x1]))) > threshold
    found &= zone
    if hands is not None:
        found &= ~np.asarray(hands, bool)
    _, pieces = cv2.connectedComponents(found.astype(np.uint8), connectivity=8)
    return np.isin(pieces, np.unique(pieces[mask & found])) & found


OUTLINE_SLACK = 0.01
"""Where the mask and the salient object's outline differ by less than this fraction of the mask's box diagonal, they
agree: the outlines of a 320-pixel saliency map and a mask never meet to the pixel."""


def object_cover(frame: np.ndarray, mask: np.ndarray, saliency_of: Callable[[np.ndarray], np.ndarray],
                 threshold: float, reach: float, hands: np.ndarray | None = None) -> tuple[float, float]:
    """How the product mask and the salient object it lies on (:func:`salient_object`) cover each other, on one
    frame: ``(missed, off)``. ``missed``: the part of the object beyond the mask (grown by :data:`OUTLINE_SLACK`)
    over object and mask together — 0 when the mask holds the whole object, or no salient object touches it.
    ``off``: the share of the mask that is not salient — a mask on the backdrop, a shadow or a sliver beside the
    object."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        return 0.0, 0.0  # no mask on this frame: nothing to compare (curate.min_mask_fraction 0 lets such frames in)
    obj = salient_object(frame, mask, saliency_of, threshold, reach, hands)
    beyond = obj & ~dilate(mask, max(2, int(OUTLINE_SLACK * box_diagonal(mask))))
    missed = float(beyond.sum()) / max(int((obj | mask).sum()), 1)
    return missed, 1.0 - float((mask & obj).sum()) / max(int(mask.sum()), 1)  # a salient pixel on it is the object's


GRIP_MARGIN = 0.03
"""A grip counts as on the mask within this fraction of the mask's box diagonal: fingers close round an object's
edge, and the mask's outline is a few pixels off it."""


def grip_cover(hands: Sequence[np.ndarray], mask: np.ndarray) -> tuple[int, int]:
    """``(gripping, on_mask)`` for one frame: how many of ``hands`` (each 21 landmarks in pixels,
    :meth:`pvtt.hands.HandDetector.detect`) grip something (:func:`pvtt.hands.grip_points`), and how many of those
    hold it on ``mask`` grown by :data:`GRIP_MARGIN` of its box diagonal — a grip point on it. ``(0, 0)`` without a
    mask: there is nothing to hold."""
    from pvtt.hands import grip_points

    mask = np.asarray(mask, bool)
    if not mask.any():
        return 0, 0
    grown = dilate(mask, max(2, int(GRIP_MARGIN * box_diagonal(mask))))
    h, w = mask.shape
    gripping = held = 0
    for xy in hands:
        points = grip_points(xy)
        if len(points):
            gripping += 1
            cols = np.clip(np.round(points[:, 0]).astype(int), 0, w - 1)
            rows = np.clip(np.round(points[:, 1]).astype(int), 0, h - 1)
            held += bool(grown[rows, cols].any())
    return gripping, held


def clip_embedding(clip: Clip, frames: int = 4, size: int = 16) -> np.ndarray:
    """A compact L2-normalised descriptor: ``frames`` evenly spaced frames as ``size``x``size`` Lab
    thumbnails (each channel mean-centred, so a global brightness change barely moves it) plus a coarse
    hue/saturation histogram. 4 x 16 x 16 x 3 + 64 = 3136 float32."""
    parts = []
    hist = np.zeros(64, np.float32)
    for f in _sample(clip, frames):
        thumb = cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA)
        lab = cv2.cvtColor(thumb, cv2.COLOR_RGB2LAB).astype(np.float32)
        lab -= lab.reshape(-1, 3).mean(axis=0)
        parts.append(lab.ravel())
        hsv = cv2.cvtColor(cv2.resize(f, (64, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2HSV)
        hist += cv2.calcHist([hsv], [0, 1], None, [8, 8], [0, 180, 0, 256]).ravel()
    while len(parts) < frames:  # very short clips: repeat the last frame
        parts.append(parts[-1])
    thumbs = np.concatenate(parts)
    thumbs /= max(1e-6, float(np.linalg.norm(thumbs)))
    hist = np.sqrt(hist / max(1e-6, hist.sum()))
    vec = np.concatenate([thumbs, 0.5 * hist]).astype(np.float32)
    return vec / max(1e-6, float(np.linalg.norm(vec)))


def find_near_duplicates(embeddings: dict[str, np.ndarray], threshold: float) -> dict[str, tuple[str, float]]:
    """``id -> (earlier id it duplicates, cosine similarity)`` for every clip at or above ``threshold``
    against an earlier clip (dict order) that is not itself a duplicate; the most similar one is named."""
    ids = list(embeddings)
    if not ids:
        return {}
    mat = np.stack([np.asarray(embeddings[i], np.float32).ravel() for i in ids])
    mat /= np.maximum(1e-6, np.linalg.norm(mat, axis=1, keepdims=True))
    sims = mat @ mat.T
    out: dict[str, tuple[str, float]] = {}
    kept: list[int] = []
    for j in range(len(ids)):
        if kept:
            best = max(kept, key=lambda i: sims[i, j])
            if sims[best, j] >= threshold:
                out[ids[j]] = (ids[best], float(sims[best, j]))
                continue
        kept.append(j)
    return out
