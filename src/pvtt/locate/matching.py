"""Find the template's own product photo in frame 0: SIFT features, Lowe's ratio test, RANSAC homography.

The photo's foreground decides what is projected: its alpha channel when the alpha is meaningful, else
the region that differs from a uniform border colour (a studio background), else — when the photo's
border is not uniform (a lifestyle shot of the scene) — the whole photo, and the box falls back to the
hull of the inlier matches in the frame. A box projected from the photo's foreground is the product's own
extent (source ``photo-outline``, checked against the mask at curate as a reviewer's box is); the others are
a guess at it (``photo-match``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pvtt.types import Box


@dataclass
class PhotoMatch:
    """What matching measured; ``box`` is None when the match was not accepted (``reason`` says why)."""

    box: Box | None
    inliers: int
    matches: int
    area_fraction: float
    reason: str = ""


def _resize_long(image: np.ndarray, long_side: int) -> tuple[np.ndarray, float]:
    scale = min(1.0, long_side / max(image.shape[:2]))
    if scale < 1.0:
        image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
    return image, scale


def photo_foreground(rgba: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Foreground mask of a product photo (bool, or None for "the whole photo") and how it was found."""
    alpha = rgba[..., 3]
    transparent = float((alpha < 128).mean())
    if 0.02 < transparent < 0.98:
        return alpha >= 128, "alpha"
    rgb = rgba[..., :3].astype(np.float32)
    border = np.concatenate([rgb[:4].reshape(-1, 3), rgb[-4:].reshape(-1, 3),
                             rgb[:, :4].reshape(-1, 3), rgb[:, -4:].reshape(-1, 3)])
    median = np.median(border, axis=0)
    spread = float(np.median(np.linalg.norm(border - median, axis=1)))
    if spread > 12:  # the border is not a plain backdrop
        return None, "whole"
    distance = np.linalg.norm(rgb - median, axis=2)
    fg = distance > max(30.0, 3 * spread)
    fg = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_OPEN, np.ones((5, 5), np.uint8)) > 0
    if not 0.02 < fg.mean() < 0.98:
        return None, "whole"
    return fg, "backdrop"


def _quad_ok(quad: np.ndarray, width: int, height: int, min_area: float, max_area: float) -> tuple[bool, float, str]:
    area = abs(cv2.contourArea(quad.astype(np.float32))) / float(width * height)
    if not cv2.isContourConvex(quad.astype(np.float32).reshape(-1, 1, 2)):
        return False, area, "projected photo is not convex"
    if not min_area <= area <= max_area:
        return False, area, f"projected photo covers {area:.4f} of the frame, outside [{min_area}, {max_area}]"
    return True, area, ""


def match_photo(frame: np.ndarray, rgba: np.ndarray, min_inliers: int = 10, ratio: float = 0.75,
                long_side: int = 960, min_area: float = 0.005, max_area: float = 0.9) -> PhotoMatch:
    """Locate ``rgba`` (the product photo) in ``frame`` (RGB uint8); the box is in ``frame`` pixels."""
    height, width = frame.shape[:2]
    small, fs = _resize_long(frame, long_side)
    photo, ps = _resize_long(rgba, long_side)
    fg, how = photo_foreground(photo)
    sift = cv2.SIFT_create(nfeatures=4000)
    kf, df = sift.detectAndCompute(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), None)
    mask = None if fg is None else cv2.dilate(fg.astype(np.uint8) * 255, np.ones((9, 9), np.uint8))
    kp, dp = sift.detectAndCompute(cv2.cvtColor(photo[..., :3], cv2.COLOR_RGB2GRAY), mask)
    if df is None or dp is None or len(kf) < 2 or len(kp) < 2:
        return PhotoMatch(None, 0, 0, 0.0, f"too few features (frame {len(kf)}, photo {len(kp)})")
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(dp, df, k=2)
    good = [m for m, *rest in pairs if rest and m.distance < ratio * rest[0].distance]
    if len(good) < max(4, min_inliers):
        return PhotoMatch(None, 0, len(good), 0.0, f"{len(good)} ratio-test matches < {min_inliers}")
    src = np.float32([kp[m.queryIdx].pt for m in good])
    dst = np.float32([kf[m.trainIdx].pt for m in good])
    hom, keep = cv2.findHomography(src, dst, cv2.RANSAC, 5.0)
    inliers = int(keep.sum()) if keep is not None else 0
    if hom is None or inliers < min_inliers:
        return PhotoMatch(None, inliers, len(good), 0.0, f"{inliers} RANSAC inliers < {min_inliers}")
    ph, pw = photo.shape[:2]
    corners = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    quad = cv2.perspectiveTransform(corners[None], hom)[0]
    ok, area, why = _quad_ok(quad, small.shape[1], small.shape[0], min_area, max_area)
    if not ok:
        return PhotoMatch(None, inliers, len(good), area, why)
    if fg is not None:  # project the photo's foreground outline
        ys, xs = np.nonzero(fg)
        pts = np.float32([[xs.min(), ys.min()], [xs.max() + 1, ys.min()], [xs.max() + 1, ys.max() + 1],
                          [xs.min(), ys.max() + 1]])
        region = cv2.perspectiveTransform(pts[None], hom)[0]
    elif area > 0.5:  # a whole lifestyle photo: the inlier hull is closer to the product than the photo's edge
        region = dst[keep.ravel() > 0]
    else:
        region = quad
    x0, y0 = region.min(axis=0) / fs
    x1, y1 = region.max(axis=0) / fs
    confidence = float(min(1.0, inliers / (3.0 * min_inliers)) * min(1.0, inliers / max(1, len(good)) + 0.5))
    box = Box(float(x0), float(y0), float(x1), float(y1), confidence=confidence,
              source="photo-outline" if fg is not None else "photo-match").clip_to(width, height)
    if box.width < 2 or box.height < 2:
        return PhotoMatch(None, inliers, len(good), area, "projected box is outside the frame")
    return PhotoMatch(box, inliers, len(good), area, how)
