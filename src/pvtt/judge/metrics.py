"""Metrics of an edited clip against its source, and the keep / reject verdict.

- **background**: PSNR and SSIM outside the dilated union of A's and B's regions, vs the source.
- **temporal**: flow-warping error of consecutive edited frames inside the edited region, divided by
  the same measure on the source (≈ 1 for an edit as stable as the source; large for flicker).
- **identity**: B's region in the edited frames vs the product photo: RGB-histogram intersection
  and a 2x2-cell gradient-orientation histogram cosine, averaged (0..1). With ``identity: dinov2`` (or
  ``both``) also ``identity_dinov2``: the cosine between the DINOv2 vector of B's cutout and the mean vector
  of B's region crops in the judged edited frames (:func:`product_view`, :func:`region_view`), from an
  embedder the caller passes in (this module never imports torch).
- **motion**: corners tracked (Lucas-Kanade) inside B on the result vs where the source tracks'
  motion (an affine map per frame, robust fit; similarity with fewer than 4 points) carries them;
  median error as a fraction of B's box diagonal. The product's own motion, so a B placed upright
  (scale + anchor only) on a rotating plane shows a larger error than one that follows it fully.
- **defects** (:mod:`pvtt.judge.defects`): remnant of A, erase smear, floating; each reason starts with
  the defect's name.

Frames are subsampled by ``stride`` and compared at a reduced resolution.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from pvtt.types import Masks, Tracks


def _resize(image: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    if image.shape[1] == size[0] and image.shape[0] == size[1]:
        return image
    if nearest:
        return cv2.resize(image.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float32), b.astype(np.float32)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))


def _warp_error(flow_engine: Any, f0: np.ndarray, f1: np.ndarray, region: np.ndarray) -> float:
    """Mean abs difference between ``f0`` and ``f1`` warped back along the flow f0 → f1, inside ``region``."""
    g0, g1 = cv2.cvtColor(f0, cv2.COLOR_RGB2GRAY), cv2.cvtColor(f1, cv2.COLOR_RGB2GRAY)
    flow = flow_engine.calc(g0, g1, None)
    h, w = g0.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    back = cv2.remap(f1, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    diff = np.abs(back.astype(np.float32) - f0.astype(np.float32)).mean(axis=2)
    return float(diff[region].mean()) if region.any() else 0.0


def _colour_hist(pixels: np.ndarray) -> np.ndarray:
    q = (pixels // 32).astype(np.int64)
    hist = np.bincount(q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2], minlength=512).astype(np.float64)
    return hist / max(hist.sum(), 1.0)


def _gradient_hist(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    mag = np.hypot(gx, gy) * mask
    ang = (np.rad2deg(np.arctan2(gy, gx)) % 180.0 / 20.0).astype(int).clip(0, 8)
    h, w = grey.shape
    feats = []
    for cy in range(2):
        for cx in range(2):
            sl = (slice(cy * h // 2, (cy + 1) * h // 2), slice(cx * w // 2, (cx + 1) * w // 2))
            feats.append(np.bincount(ang[sl].ravel(), weights=mag[sl].ravel(), minlength=9))
    v = np.concatenate(feats)
    return v / max(np.linalg.norm(v), 1e-9)


def _crop(mask: np.ndarray) -> tuple[slice, slice] | None:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)


GREY = 128  # what DINOv2 sees around B: the cutout's backdrop and the edited frame outside B's mask


def _grey_square(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` centred on a grey square, so the embedder's centre crop keeps all of it."""
    h, w = rgb.shape[:2]
    side = max(h, w)
    out = np.full((side, side, 3), GREY, np.uint8)
    y0, x0 = (side - h) // 2, (side - w) // 2
    out[y0:y0 + h, x0:x0 + w] = rgb
    return out


def product_view(rgba: np.ndarray) -> np.ndarray | None:
    """B's cutout as the DINOv2 identity score sees it: composited on grey, cropped to its alpha box (alpha > 127),
    padded to a grey square. None when the alpha is empty."""
    rgba = np.asarray(rgba)
    alpha = rgba[..., 3] if rgba.shape[-1] == 4 else np.full(rgba.shape[:2], 255, np.uint8)
    box = _crop(alpha > 127)
    if box is None:
        return None
    a = alpha[box][..., None].astype(np.float32) / 255.0
    rgb = rgba[box][..., :3].astype(np.float32) * a + GREY * (1.0 - a)
    return _grey_square(np.round(rgb).astype(np.uint8))


def region_view(frame: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """B's region of an edited frame for the DINOv2 identity score: the crop to ``mask``'s box, grey outside the
    mask, padded to a grey square. None when the mask is empty."""
    box = _crop(mask)
    if box is None:
        return None
    crop = np.where(mask[box][..., None], frame[box], np.uint8(GREY)).astype(np.uint8)
    return _grey_square(crop)


def dinov2_identity(edited: np.ndarray, masks_b: np.ndarray, frames: list[int], embedder: Any,
                    product_vector: np.ndarray) -> float | None:
    """Cosine between ``product_vector`` (unit, :func:`product_view` embedded) and the normalised mean of the
    embeddings of B's :func:`region_view` in ``frames`` of ``edited``; None when B is in none of them."""
    views = [v for v in (region_view(edited[t], masks_b[t]) for t in frames) if v is not None]
    if not views:
        return None
    mean = np.asarray(embedder.embed_images(views), np.float64).mean(axis=0)
    product_vector = np.asarray(product_vector, np.float64).ravel()
    denom = max(float(np.linalg.norm(mean)) * float(np.linalg.norm(product_vector)), 1e-12)
    return float(mean @ product_vector) / denom


def _source_motion(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """A's motion from its tracks (2x3, robust): affine from 4 points (a product on a table filmed by an orbiting
    camera moves by a plane homography, which a similarity misses by tens of pixels), similarity below."""
    if len(src) < 2:
        return None
    src, dst = src.astype(np.float32), dst.astype(np.float32)
    if len(src) >= 4:
        m, _ = cv2.estimateAffine2D(src, dst, method=cv2.LMEDS)
        if m is not None:
            return m
    m, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    return m


def track_points(tracks: Tracks, size: tuple[int, int], width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """A's tracked points scaled from the clip's ``width`` x ``height`` to the judge's working ``size``, and their
    visibility."""
    return (np.asarray(tracks.points, np.float64) * np.array([size[0] / width, size[1] / height]),
            np.asarray(tracks.visible, bool))


def motion_between(points: np.ndarray, visible: np.ndarray, t: int, other: int, min_points: int
                   ) -> np.ndarray | None:
    """A's motion from frame ``t`` to ``other`` (2x3, :func:`_source_motion`) over the points visible in both, or None
    with fewer than ``min_points`` of them."""
    common = visible[t] & visible[other]
    return _source_motion(points[t, common], points[other, common]) if common.sum() >= min_points else None


def judge(source: np.ndarray, edited: np.ndarray, masks_a: Masks, masks_b: np.ndarray, product: np.ndarray,
          tracks_a: Tracks, settings: Any = None, *, background: np.ndarray | None = None, embedder: Any = None,
          product_embedding: np.ndarray | None = None) -> Any:
    """Scores, verdict and reasons of ``edited`` against ``source`` (see the module docstring); ``background``
    (the erased clip) lets the defect checks tell A's pixels and erase fills apart (without it, the smear check
    and the inside-A part of the remnant check are not run). ``embedder`` (a :class:`pvtt.embed.Embedder`, set
    up) is needed when ``settings.identity`` is ``dinov2`` or ``both``; ``product_embedding`` is B's cutout
    already embedded (:func:`product_view`; a caller judging many pairs of one product caches it), else the
    embedder embeds it here."""
    from pvtt.judge import JudgeResult, JudgeSettings
    from pvtt.judge.defects import defect_checks, remnant_frames

    s = settings or JudgeSettings()
    # 1. check inputs
    source, edited = np.asarray(source), np.asarray(edited)
    ma = np.asarray(getattr(masks_a, "data", masks_a), bool)
    mb = np.asarray(masks_b, bool)
    product = np.asarray(getattr(product, "rgba", product))
    if source.shape != edited.shape or source.ndim != 4:
        raise ValueError(f"source and edited must be the same (T, H, W, 3) shape, got {source.shape} and "
                         f"{edited.shape}")
    if ma.shape != source.shape[:3] or mb.shape != source.shape[:3]:
        raise ValueError(f"masks must be {source.shape[:3]}, got masks_a {ma.shape}, masks_b {mb.shape}")
    if background is not None and np.shape(background) != source.shape:
        raise ValueError(f"background must be {source.shape}, got {np.shape(background)}")
    use_dinov2 = getattr(s, "identity", "histogram") in ("dinov2", "both")
    if use_dinov2 and embedder is None:
        raise ValueError(f"judge.identity={s.identity!r} needs an embedder (pvtt.embed.make_embedder(config.embed))")
    t_count, height, width = source.shape[:3]
    scale = min(1.0, s.work_short_side / min(height, width))
    size = (max(16, round(width * scale)), max(16, round(height * scale)))
    idx = list(range(0, t_count, s.stride))
    need = sorted(set(idx) | {t + 1 for t in idx if t + 1 < t_count})
    src = {t: _resize(source[t], size) for t in need}
    edt = {t: _resize(edited[t], size) for t in need}
    a_s = {t: _resize(ma[t], size, True) for t in need}
    b_s = {t: _resize(mb[t], size, True) for t in need}
    bgs = {t: _resize(np.asarray(background[t]), size) for t in idx} if background is not None else None
    r = max(1, int(s.region_dilate * min(size)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    region = {t: cv2.dilate((a_s[t] | b_s[t]).astype(np.uint8), kernel) > 0 for t in need}
    scores: dict[str, float] = {}
    reasons: list[str] = []

    # 2. background preservation
    se, n, ssim_sum = 0.0, 0, 0.0
    for t in idx:
        out = ~region[t]
        if not out.any():
            continue
        d = src[t].astype(np.float32) - edt[t].astype(np.float32)
        se += float((d[out] ** 2).sum())
        n += int(out.sum()) * 3
        ssim = _ssim_map(cv2.cvtColor(src[t], cv2.COLOR_RGB2GRAY), cv2.cvtColor(edt[t], cv2.COLOR_RGB2GRAY))
        ssim_sum += float(ssim[out].mean())
    if n:
        mse = se / n
        scores["background_psnr"] = 100.0 if mse < 1e-10 else 10 * math.log10(255.0 ** 2 / mse)
        scores["background_ssim"] = ssim_sum / len([t for t in idx if (~region[t]).any()])
        if scores["background_psnr"] < s.min_background_psnr:
            reasons.append(f"background: psnr {scores['background_psnr']:.1f} < {s.min_background_psnr:.1f}")
        if scores["background_ssim"] < s.min_background_ssim:
            reasons.append(f"background: ssim {scores['background_ssim']:.3f} < {s.min_background_ssim:.3f}")

    # 3. temporal consistency inside the edited region
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    err_e, err_s = [], []
    for t in idx:
        if t + 1 >= t_count:
            continue
        reg = region[t] & region[t + 1]
        if not reg.any():
            continue
        err_e.append(_warp_error(flow, edt[t], edt[t + 1], reg))
        err_s.append(_warp_error(flow, src[t], src[t + 1], reg))
    if err_e:
        scores["temporal_error"] = float(np.mean(err_e))
        scores["temporal_error_source"] = float(np.mean(err_s))
        scores["temporal_ratio"] = scores["temporal_error"] / max(scores["temporal_error_source"], 1.0)
        if scores["temporal_ratio"] > s.max_temporal_ratio:
            reasons.append(f"temporal: warping error ratio {scores['temporal_ratio']:.2f} > {s.max_temporal_ratio:.2f}")

    # 4. product identity vs the photo
    alpha = product[..., 3] > 127 if product.shape[-1] == 4 else np.ones(product.shape[:2], bool)
    pc = _crop(alpha)
    colour, grads, seen = [], [], []
    if pc is not None:
        photo_rgb, photo_mask = np.ascontiguousarray(product[pc][..., :3]), alpha[pc]
        photo_hist = _colour_hist(photo_rgb[photo_mask])
        for t in idx:
            m = cv2.erode(b_s[t].astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            bc = _crop(m)
            if bc is None or m.sum() < 50:
                continue
            seen.append(t)
            colour.append(float(np.minimum(_colour_hist(edt[t][m]), photo_hist).sum()))
            crop_rgb, crop_mask = np.ascontiguousarray(edt[t][bc]), m[bc]
            ph = cv2.resize(photo_rgb, (crop_rgb.shape[1], crop_rgb.shape[0]), interpolation=cv2.INTER_AREA)
            pm = cv2.resize(photo_mask.astype(np.uint8), (crop_rgb.shape[1], crop_rgb.shape[0]),
                            interpolation=cv2.INTER_NEAREST) > 0
            grads.append(float(_gradient_hist(crop_rgb, crop_mask) @ _gradient_hist(ph, pm)))
    if colour:
        scores["identity_colour"] = float(np.mean(colour))
        scores["identity_gradient"] = float(np.mean(grads))
        scores["identity"] = 0.5 * (scores["identity_colour"] + scores["identity_gradient"])
        if scores["identity"] < s.min_identity and getattr(s, "identity", "histogram") in ("histogram", "both"):
            reasons.append(f"identity: similarity to the product photo {scores['identity']:.2f} < {s.min_identity:.2f}")
    else:
        reasons.append("identity: product not visible in the edited frames (0 pixels of B)")
    if use_dinov2 and seen:  # the frames where B is visible, cropped from the full-resolution edited frames
        if product_embedding is None:
            product_embedding = embedder.embed_images([product_view(product)])[0]
        value = dinov2_identity(edited, mb, seen, embedder, product_embedding)
        if value is not None:
            scores["identity_dinov2"] = value
            if value < s.min_identity_dinov2:
                reasons.append(f"identity_dinov2: {value:.2f} < {s.min_identity_dinov2:.2f}")

    # 5. motion fidelity: LK inside B on the result vs the source tracks' motion
    pts_a, vis_a = track_points(tracks_a, size, width, height)
    m0 = cv2.erode(_resize(mb[0], size, True).astype(np.uint8), np.ones((5, 5), np.uint8))
    grey0 = cv2.cvtColor(_resize(edited[0], size), cv2.COLOR_RGB2GRAY)
    start = cv2.goodFeaturesToTrack(grey0, 60, 0.01, 4, mask=m0 * 255)
    bc0 = _crop(m0 > 0)
    if start is not None and len(start) >= s.min_motion_points and bc0 is not None:
        diag = float(np.hypot(bc0[0].stop - bc0[0].start, bc0[1].stop - bc0[1].start))
        p0 = start.reshape(-1, 2)
        cur, alive, prev = p0.copy(), np.ones(len(p0), bool), grey0
        errors, moved_src, moved_res = [], [], []
        for t in range(1, t_count):
            grey = cv2.cvtColor(edt[t] if t in edt else _resize(edited[t], size), cv2.COLOR_RGB2GRAY)
            nxt, st, _ = cv2.calcOpticalFlowPyrLK(prev, grey, cur.astype(np.float32).reshape(-1, 1, 2), None,
                                                  winSize=(15, 15), maxLevel=3)
            cur, alive, prev = nxt.reshape(-1, 2), alive & (st.ravel() == 1), grey
            if t not in idx or alive.sum() < s.min_motion_points:
                continue
            sim = motion_between(pts_a, vis_a, 0, t, 2)
            if sim is None:
                continue
            expected = p0[alive] @ sim[:, :2].T + sim[:, 2]
            errors.append(float(np.median(np.linalg.norm(cur[alive] - expected, axis=1))) / diag)
            moved_src.append(float(np.median(np.linalg.norm(expected - p0[alive], axis=1))) / diag)
            moved_res.append(float(np.median(np.linalg.norm(cur[alive] - p0[alive], axis=1))) / diag)
        if errors:
            scores["motion_error"] = float(np.mean(errors))
            scores["motion_source"] = float(np.mean(moved_src))
            scores["motion_result"] = float(np.mean(moved_res))
            scores["motion_points"] = float(len(p0))
            if scores["motion_error"] > s.max_motion_error:
                reasons.append(f"motion: error {scores['motion_error']:.3f} of B's box diagonal > "
                               f"{s.max_motion_error:.3f} (source moves {scores['motion_source']:.3f}, "
                               f"result {scores['motion_result']:.3f})")

    # 6. the defects a reviewer sees: A left behind, erase smears, B floating; the remnant check compares what lies
    # beside A's mask with A's motion to a later frame
    motion = {}
    for t, other in remnant_frames(idx, t_count, s):
        if other is None:
            continue
        m = motion_between(pts_a, vis_a, t, other, s.min_motion_points)
        if m is not None:
            motion[t] = (src[other] if other in src else _resize(source[other], size), m)
    defect_scores, defect_reasons = defect_checks(src, edt, bgs, a_s, b_s, idx, s, motion)
    scores.update(defect_scores)
    reasons += defect_reasons
    return JudgeResult(scores, "reject" if reasons else "keep", reasons)
