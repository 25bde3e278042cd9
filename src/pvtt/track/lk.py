"""Semantic points tracked by pyramidal Lucas-Kanade with forward-backward checks and re-detection.

1. Points: K - E distinctive corners inside the eroded first-frame mask, spread by farthest-point
   sampling, plus E extremal points of the outline (top/bottom/left/right-most, nudged 3 px inward).
   Points given by the caller (the VLM's named parts) take the first places; corners fill up to K - E.
2. Each frame, visible points go forward by LK and come back; a point whose forward-backward error
   exceeds ``fb_threshold``, or that leaves the frame or the (dilated) mask, becomes invisible.
3. Lost points are re-detected: a similarity fitted (RANSAC) from the visible points' first-frame
   positions to their current ones projects each lost point; it is visible again when the projection
   lies in the mask and its patch (in first-frame geometry) correlates with the first-frame patch.
4. Too few points left for that similarity (a hand over the product, a fast turn; ``recover_from_mask``):
   the first frame's product is aligned to the frame through the masks (:func:`align_to_frame`), each lost
   point is searched within ``SEARCH`` px of where the alignment puts it, and the found and still-tracked
   points must agree on one similarity (RANSAC, at least ``CONFIRM``) to count. Without this step a clip
   whose points were all lost once never got them back, though its mask stayed right (HOME005's photo box
   turned in the hands: 90 frames without points before, 4 at most after).
"""

from __future__ import annotations


import cv2
import numpy as np

from pvtt.errors import RejectItem
from pvtt.track import Tracker, TrackSettings, _gray, inside, lk_pair
from pvtt.types import Clip, Masks, Tracks

PATCH = 7  # half-size of the re-detection patch
SEARCH = 8  # px searched around a point projected through the mask alignment
MARGIN = 15  # px (at the alignment's working size) around the first mask that the mask alignment compares
CONFIRM = 3  # points that must agree on one motion to confirm a mask alignment (2 fix a similarity)


def farthest_point_sampling(candidates: np.ndarray, k: int, seeds: np.ndarray | None = None) -> np.ndarray:
    """``k`` of ``candidates`` (N,2), each the farthest from those already chosen (``seeds`` count as chosen)."""
    if k <= 0 or len(candidates) == 0:
        return np.zeros((0, 2), np.float32)
    dist = np.full(len(candidates), np.inf)
    chosen: list[int] = []
    if seeds is not None and len(seeds):
        for s in seeds:
            dist = np.minimum(dist, np.linalg.norm(candidates - s, axis=1))
    else:
        chosen.append(0)  # candidates come best-first
        dist = np.linalg.norm(candidates - candidates[0], axis=1)
    while len(chosen) < k:
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(candidates - candidates[nxt], axis=1))
    return candidates[chosen].astype(np.float32)


def extremal_points(mask: np.ndarray, count: int = 4, inset: float = 3.0) -> np.ndarray:
    """Top, bottom, left and right-most points of the mask's largest outline, ``inset`` px towards its centre."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours or count == 0:
        return np.zeros((0, 2), np.float32)
    c = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float32)
    picks = [c[c[:, 1].argmin()], c[c[:, 1].argmax()], c[c[:, 0].argmin()], c[c[:, 0].argmax()]][:count]
    centre = np.argwhere(mask)[:, ::-1].mean(axis=0)
    out = []
    for p in picks:
        d = centre - p
        n = np.linalg.norm(d)
        out.append(p + (d / n * min(inset, n) if n > 0 else 0))
    return np.asarray(out, np.float32)


def _patch(gray: np.ndarray, p: np.ndarray) -> np.ndarray | None:
    x, y = int(round(p[0])), int(round(p[1]))
    if x - PATCH < 0 or y - PATCH < 0 or x + PATCH >= gray.shape[1] or y + PATCH >= gray.shape[0]:
        return None
    return gray[y - PATCH:y + PATCH + 1, x - PATCH:x + PATCH + 1].astype(np.float32)


def _search(patch0: np.ndarray | None, gray: np.ndarray, p: np.ndarray, radius: int) -> tuple[float, np.ndarray]:
    """Best normalised cross-correlation of ``patch0`` within ``radius`` px of ``p`` in ``gray``, and its offset."""
    x, y = int(round(p[0])), int(round(p[1]))
    r = PATCH + radius
    if patch0 is None or x - r < 0 or y - r < 0 or x + r >= gray.shape[1] or y + r >= gray.shape[0]:
        return -1.0, np.zeros(2)
    if float(patch0.std()) < 1e-3:
        return -1.0, np.zeros(2)
    res = cv2.matchTemplate(gray[y - r:y + r + 1, x - r:x + r + 1].astype(np.float32), patch0, cv2.TM_CCOEFF_NORMED)
    _, best, _, (bx, by) = cv2.minMaxLoc(res)
    return float(best), np.array([bx - radius, by - radius], np.float64)


def _ncc(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None:
        return -1.0
    a, b = a - a.mean(), b - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 1e-6 else -1.0


def align_to_frame(gray0: np.ndarray, mask0: np.ndarray, gray: np.ndarray, mask: np.ndarray,
                   init: np.ndarray | None = None, work: int = 320) -> np.ndarray | None:
    """2x3 map of frame-0 coordinates onto ``gray``'s that carries the product (``mask0``'s pixels of ``gray0``)
    onto its look in ``gray``: ECC (affine, on both products set on a plain ground) at ``work`` px, started from
    ``init`` (the last known map) or from the masks' centroids and areas. None when ECC does not converge. Points
    projected through it still have to match their first-frame patch to count as found again."""
    ys, xs = np.nonzero(mask0)
    ys1, xs1 = np.nonzero(mask)
    if len(xs) < 16 or len(xs1) < 16:
        return None
    f = min(1.0, work / max(gray0.shape))
    # start: the last known map's rotation and scale (or the masks' area ratio), moved so that the first mask's
    # centroid lands on this one's
    lin = np.asarray(init, np.float64)[:, :2] if init is not None else np.eye(2) * np.sqrt(len(xs1) / len(xs))
    shift = np.array([xs1.mean(), ys1.mean()]) - lin @ np.array([xs.mean(), ys.mean()])
    init = np.hstack([lin, shift[:, None]])
    down = np.diag([f, f, 1.0])
    warp = (down @ np.vstack([init, [0, 0, 1]]) @ np.linalg.inv(down))[:2].astype(np.float32)
    small = (lambda im: cv2.resize(im, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)) if f < 1 else (lambda im: im)
    # each frame's product on a plain ground of the first product's mean grey, so the outline counts as well as
    # the texture; compared over the first mask and a margin around it. On the product's pixels alone a plain
    # product with a stripe was aligned 10-16 px off at its ends, and the points found there slid along the stripe
    fill = float(gray0[mask0].mean())
    plain0 = np.where(mask0, gray0, fill).astype(np.float32)
    plain = np.where(mask, gray, fill).astype(np.float32)
    near = cv2.dilate((small(mask0.astype(np.uint8)) > 0).astype(np.uint8),
                      cv2.getStructuringElement(cv2.MORPH_RECT, (2 * MARGIN + 1,) * 2))
    try:
        _, warp = cv2.findTransformECC(small(plain0), small(plain), warp, cv2.MOTION_AFFINE,
                                       (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4),
                                       near, 5)
    except cv2.error:  # did not converge, or nothing to align
        return None
    full = np.linalg.inv(down) @ np.vstack([warp, [0, 0, 1]]) @ down
    return full[:2].astype(np.float64)


class _Near:
    """"Within ``margin`` px of the mask" tested at the points only (no full-frame dilation)."""

    def __init__(self, mask: np.ndarray, margin: int):
        self.mask, self.margin = mask, margin

    def test(self, pts: np.ndarray) -> np.ndarray:
        h, w = self.mask.shape
        m = self.margin
        out = np.zeros(len(pts), bool)
        for i, (x, y) in enumerate(np.round(pts).astype(int)):
            out[i] = bool(self.mask[max(0, y - m):max(0, y + m + 1), max(0, x - m):max(0, x + m + 1)].any())
        return out


class LKTracker(Tracker):
    """K semantic points per clip, Lucas-Kanade with visibility (CPU)."""

    name = "lk"

    settings_class = TrackSettings

    def select_points(self, gray0: np.ndarray, mask0: np.ndarray,
                      given: tuple[np.ndarray, list[str]] | None = None) -> tuple[np.ndarray, list[str]]:
        s = self.settings
        area = float(mask0.sum())
        r = int(s.erode * np.sqrt(area))
        core = mask0.astype(np.uint8)
        if r > 0:
            eroded = cv2.erode(core, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
            if eroded.sum() >= 0.1 * area:
                core = eroded
        n_ext = min(s.num_extremal, s.num_points)
        ext = extremal_points(mask0, n_ext)
        first = np.zeros((0, 2), np.float32) if given is None else np.asarray(given[0], np.float32).reshape(-1, 2)
        first_labels = [] if given is None else list(given[1])
        first, first_labels = first[:s.num_points - len(ext)], first_labels[:s.num_points - len(ext)]
        corners = cv2.goodFeaturesToTrack(gray0, s.max_candidates, s.quality_level, 3, mask=core * 255, blockSize=5)
        cand = np.zeros((0, 2), np.float32) if corners is None else corners.reshape(-1, 2)
        n_feat = s.num_points - len(ext) - len(first)
        if len(cand) < n_feat:  # textureless product: fill with spread-out mask pixels
            ys, xs = np.nonzero(core)
            step = max(1, len(xs) // 2000)
            cand = np.concatenate([cand, np.stack([xs[::step], ys[::step]], 1).astype(np.float32)])
        seeds = np.concatenate([first, ext])
        feats = farthest_point_sampling(cand, n_feat, seeds=seeds if len(seeds) else None)
        points = np.concatenate([first, feats, ext]).astype(np.float32)
        return points, first_labels + ["feature"] * len(feats) + ["extremal"] * len(ext)

    def track(self, clip: Clip, masks: Masks, points: tuple[np.ndarray, list[str]] | None = None) -> Tracks:
        s = self.settings
        # 1. check inputs
        data = np.asarray(masks.data, bool)
        if data.shape != (clip.num_frames, clip.height, clip.width):
            raise ValueError(f"`masks.data` has shape {data.shape} but the clip is "
                             f"{(clip.num_frames, clip.height, clip.width)}")
        if not data[0].any():
            raise RejectItem("no points to track: the first-frame mask is empty")
        count, height, width = clip.num_frames, clip.height, clip.width
        gray = _gray(clip.frames)
        cv2.setRNGSeed(0)  # RANSAC draws from OpenCV's global generator: the same clip gives the same tracks
        # 2. points on frame 0
        start, labels = self.select_points(gray[0], data[0], points)
        k = len(start)
        patches0 = [_patch(gray[0], p) for p in start]
        margin = max(1, int(s.mask_margin * min(height, width)))
        points = np.zeros((count, k, 2), np.float32)
        visible = np.zeros((count, k), bool)
        points[0], visible[0] = start, True
        # 3. LK frame to frame
        feature = np.array([lab != "extremal" for lab in labels])  # LK-tracked: features and given points
        last_sim = None
        for t in range(1, count):
            allowed = _Near(data[t], margin)
            q, ok, fb = lk_pair(gray[t - 1], gray[t], points[t - 1], s.window, s.levels)
            ok &= feature & visible[t - 1] & (fb < s.fb_threshold) & inside(q, width, height)
            ok &= self._in(allowed, q)
            points[t] = np.where(ok[:, None], q, points[t - 1])
            visible[t] = ok
            # 4. outline points ride on the features' similarity (LK on an outline follows the background);
            #    lost features are re-detected through it
            sim = None
            if ok.sum() >= s.min_support:
                sim, _ = cv2.estimateAffinePartial2D(start[ok], q[ok], method=cv2.RANSAC, ransacReprojThreshold=3.0)
            from_mask = False
            if sim is None and s.redetect and s.recover_from_mask and data[t].any():
                # too few points left (a hand over the product, a fast turn): align the first frame's product
                # to this frame instead, so the points can come back once their patches are seen again
                aligned = align_to_frame(gray[0], data[0], gray[t], data[t], last_sim)
                if aligned is not None:  # kept only when enough of the product's own patches confirm it
                    sim = self._confirm(aligned, start, patches0, gray[t], data[t], ok, q, feature, points[t],
                                        visible[t])
                    from_mask = sim is not None
            if sim is None:
                if ok.any():  # too few for a similarity: the features' mean shift
                    shift = (q[ok] - points[t - 1][ok]).mean(axis=0)
                    points[t, ~feature] = points[t - 1, ~feature] + shift
                    visible[t, ~feature] = visible[t - 1, ~feature] & inside(points[t, ~feature], width, height) \
                        & self._in(allowed, points[t, ~feature])
                continue
            last_sim = sim
            proj = start @ sim[:, :2].T + sim[:, 2]
            points[t, ~feature] = proj[~feature]
            visible[t, ~feature] = inside(proj[~feature], width, height) & self._in(allowed, proj[~feature])
            lost = feature & ~ok
            if s.redetect and lost.any() and not from_mask:  # (a mask alignment has re-detected them already)
                back = cv2.warpAffine(gray[t], sim, (width, height), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)
                for j in np.flatnonzero(lost):
                    points[t, j] = proj[j]
                    if (inside(proj[j:j + 1], width, height)[0] and self._in(data[t], proj[j:j + 1])[0]
                            and _ncc(patches0[j], _patch(back, start[j])) >= s.min_ncc):
                        visible[t, j] = True
        return Tracks(points, visible, labels)

    def _confirm(self, sim: np.ndarray, start: np.ndarray, patches0: list, gray: np.ndarray, mask: np.ndarray,
                 ok: np.ndarray, q: np.ndarray, feature: np.ndarray, points: np.ndarray, visible: np.ndarray
                 ) -> np.ndarray | None:
        """Re-detect lost features through a mask alignment ``sim``: each is searched within ``SEARCH`` px of
        where ``sim`` puts it (a whole-product map is a few px off at the parts), then a similarity is fitted
        (RANSAC) to the found and the still-tracked points together and only its inliers count — a patch on a
        plain edge matches anywhere along the edge, a set of points agreeing on one motion does not. Sets
        ``points``/``visible`` (frame t's rows) for the inliers and returns the refitted map, or None when fewer
        than ``CONFIRM`` agree (nothing is set then)."""
        s = self.settings
        height, width = gray.shape
        back = cv2.warpAffine(gray, sim, (width, height), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)
        found = {}
        for j in np.flatnonzero(feature & ~ok):
            guess = start[j] @ sim[:, :2].T + sim[:, 2]
            if not (inside(guess[None], width, height)[0] and self._in(mask, guess[None])[0]):
                continue
            score, offset = _search(patches0[j], back, start[j], SEARCH)
            if score >= s.min_ncc:
                found[j] = (start[j] + offset) @ sim[:, :2].T + sim[:, 2]
        idx = list(np.flatnonzero(ok)) + list(found)
        if len(idx) < CONFIRM:
            return None
        dst = np.array([q[j] if ok[j] else found[j] for j in idx], np.float32)
        refit, inl = cv2.estimateAffinePartial2D(start[idx], dst, method=cv2.RANSAC, ransacReprojThreshold=float(SEARCH) / 2)
        if refit is None or inl is None or inl.sum() < CONFIRM:
            return None
        for j, keep in zip(idx, inl.ravel().astype(bool)):
            if keep and not ok[j]:
                points[j], visible[j] = found[j], True
        return refit

    @staticmethod
    def _in(mask: "np.ndarray | _Near", pts: np.ndarray) -> np.ndarray:
        if isinstance(mask, _Near):
            return mask.test(pts)
        h, w = mask.shape
        xi = np.clip(np.round(pts[:, 0]).astype(int), 0, w - 1)
        yi = np.clip(np.round(pts[:, 1]).astype(int), 0, h - 1)
        return mask[yi, xi]
