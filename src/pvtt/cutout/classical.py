"""Classical product cutout: border colour model + GrabCut + guided-filter alpha refinement.

1. An alpha channel that already separates the product (some transparent, some opaque pixels) is
   used as is.
2. The border strip is clustered (k-means in Lab); the background is *plain* when most border
   pixels sit close to a few dominant colours (studio shots).
3. Plain: a smooth backdrop (quadratic colour gradient fitted to the border) — pixels far from the
   backdrop's colour at their position, or textured (backdrops are smooth), seed GrabCut as
   probable foreground (sure foreground when far / strongly textured), the border as sure
   background. Busy: GrabCut from a centred rectangle (centre prior), flagged low confidence.
4. Plain: backdrop-like pixels (near the backdrop model's colour at their place, smooth) that GrabCut took in
   and that reach the backdrop outside, or that the product encloses and are large (the cloth inside a
   bracelet, ``peel_enclosed``) or of the backdrop's very colour (a mug's handle, ``peel_exact``), are peeled off
   (``peel_backdrop``). Small specks are dropped, small holes filled; then the smooth rim outside the product's
   outline (its shadow, reflected light) is peeled off (``peel_rim``, :func:`peel_rim`). GrabCut then redraws the
   outline at a higher resolution in a band around it (``refine_size``, :func:`redraw_outline`), and the mask is
   refined into a soft alpha at full resolution with a guided filter (box filters), which follows the photo's
   edges; the outline's pixels that mix product and backdrop are made soft by their colour
   (:func:`~pvtt.cutout.alpha.unmix_edge`).
5. Confidence: plain-ness × separation, lowered when the product touches the border or breaks into
   confetti.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
from scipy import ndimage

from pvtt.compose import fill_small_holes
from pvtt.cutout import CutoutResult, Cutter, border_share, fragmentation, photo_and_existing_cut, smooth_base
from pvtt.cutout.alpha import refine_alpha, trim, unmix_edge, with_alpha
from pvtt.errors import RejectItem
from pvtt.types import ProductImage

log = logging.getLogger("pvtt")


def _backdrop_distance(lab: np.ndarray, border: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Lab distance of every pixel to a quadratic backdrop fitted to the ``border`` pixels (3 robust passes),
    the fit's noise (95th percentile of the inlier residuals) and the fitted backdrop's lightness (H, W)."""
    h, w = border.shape
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    xx, yy = xx / w, yy / h
    basis = np.stack([np.ones_like(xx), xx, yy, xx * xx, yy * yy, xx * yy], -1)
    a, b = basis[border], lab[border]
    keep = np.ones(len(a), bool)
    for _ in range(3):
        coef, *_ = np.linalg.lstsq(a[keep], b[keep], rcond=None)
        res = np.linalg.norm(b - a @ coef, axis=1)
        keep = res < max(3.0, float(np.percentile(res, 80)) * 2)
    model = basis @ coef
    return np.linalg.norm(lab - model, axis=-1), float(np.percentile(res[keep], 95)), model[..., 0]


def _gradient(rgb: np.ndarray) -> np.ndarray:
    """The grey gradient magnitude (3x3 Sobel, float32, H x W) of an RGB image."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))


def _peel_backdrop(fg: np.ndarray, backdrop: np.ndarray) -> tuple[np.ndarray, float]:
    """``fg`` without its ``backdrop``-like pixels (close to the backdrop's colour at their place and smooth) that
    reach the backdrop outside ``fg`` through backdrop-like pixels, and the share of ``fg`` removed. GrabCut
    knows colours, not where the backdrop's gradient puts them: a white floor between two white vases joins
    them; the backdrop model, which knows the floor's colour *there*, takes it back."""
    count, comp = cv2.connectedComponents(backdrop.astype(np.uint8), connectivity=4)
    if count <= 1 or not fg.any():
        return fg, 0.0
    outside = np.zeros(count, bool)
    outside[np.unique(comp[backdrop & ~fg])] = True
    outside[0] = False
    peeled = fg & ~outside[comp]
    peeled = cv2.morphologyEx(peeled.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
    return peeled, float(1.0 - peeled.sum() / fg.sum())


def enclosed_regions(fg: np.ndarray, backdrop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``backdrop``-like regions ``fg`` encloses (reaching no backdrop outside it): the label image of
    ``backdrop``'s 4-connected regions and, per label, the region's area as a share of ``fg`` (0 for the background
    label and for regions that reach outside)."""
    count, comp, stats, _ = cv2.connectedComponentsWithStats(backdrop.astype(np.uint8), connectivity=4)
    share = stats[:, cv2.CC_STAT_AREA] / max(float(fg.sum()), 1.0)
    share[np.unique(comp[backdrop & ~fg])] = 0.0
    share[0] = 0.0
    return comp, share


def _peel_enclosed(fg: np.ndarray, backdrop: np.ndarray, enclosed: float, dist: np.ndarray | None = None,
                   exact: float = 0.0) -> tuple[np.ndarray, float, np.ndarray]:
    """``fg`` without each ``backdrop``-like region it encloses (:func:`enclosed_regions`) larger than ``enclosed`` ×
    its area, or of any size whose median ``dist`` to the backdrop model is below ``exact`` (the backdrop itself,
    seen through a mug's handle), the share removed and the exact regions. :func:`_peel_backdrop` leaves both
    because they do not reach the backdrop outside."""
    area = float(fg.sum())
    if area == 0:
        return fg, 0.0, np.zeros_like(fg)
    comp, share = enclosed_regions(fg, backdrop)
    large = share > enclosed
    same = np.zeros_like(large)
    if dist is not None and exact > 0 and (share > 0).any():
        labels = np.flatnonzero(share > 0)
        medians = ndimage.median(dist, comp, labels)
        same[labels[np.asarray(medians) < exact]] = True
    if not (large | same).any():
        return fg, 0.0, np.zeros_like(fg)
    peeled = fg & ~(large | same)[comp]
    peeled = cv2.morphologyEx(peeled.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
    return peeled, float(1.0 - peeled.sum() / area), same[comp]


def peel_rim(fg: np.ndarray, grad: np.ndarray, shade: np.ndarray, threshold: float, depth: float = 0.03
             ) -> tuple[np.ndarray, float]:
    """``fg`` without the smooth, shaded rim GrabCut keeps around a product on a plain backdrop, and the share removed.

    The photo's own shadow and the light the product throws on its backdrop differ in colour from the backdrop, so
    GrabCut takes them with the product and B carries a pale band onto its new background (MEDI001's box, ART001's
    vases). That band is smooth and darker than the backdrop there (``shade``: bool, H x W); the product's outline
    is an edge. Pixels within ``depth`` × the image diagonal of the outside, shaded, whose grey gradient ``grad``
    (3x3 Sobel magnitude, H x W) is below ``threshold`` and which reach the outside through such pixels, are
    removed: the peel stops at the first edge or lit pixel on its way in, and goes no deeper than ``depth``."""
    inside = cv2.distanceTransform(fg.astype(np.uint8), cv2.DIST_L2, 3)
    smooth_rim = fg & shade & (inside <= depth * float(np.hypot(*fg.shape))) & (grad < threshold)
    _, comp = cv2.connectedComponents((smooth_rim | ~fg).astype(np.uint8), connectivity=4)
    peel = smooth_rim & np.isin(comp, np.unique(comp[~fg]))
    return fg & ~peel, float(peel.sum() / max(1, fg.sum()))


def free_thin_parts(cut: np.ndarray, disc: np.ndarray, sobel: np.ndarray, min_texture: float = 50.0) -> np.ndarray:
    """The parts of ``cut`` (uint8 mask) thinner than ``disc`` that stand free of its thick core and are textured: a
    braided cord, a chain, touching the core at their ends if at all, whose grey gradient (``sobel``, 3x3 Sobel
    magnitude) has a median of at least ``min_texture``.

    A strip along the core's side (a sliver of backdrop beside a vase) touches it all along: its area over its
    contact with the core is about its width, below the disc's diameter, while a free part's is about half its
    length. A free wisp of shadow or cloth is smooth: on the development photos the free parts of the cuts were
    JEW002's cords (median 85-226 at 800 px), MEDI001's shadow wisps (7-16) and HOME005's shadow strand and a strip
    of its lid (36-38)."""
    core = cv2.morphologyEx(cut, cv2.MORPH_OPEN, disc)
    thin = (cut > 0) & (core == 0)
    count, comp = cv2.connectedComponents(thin.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros(cut.shape, bool)
    area = np.bincount(comp.ravel(), minlength=count)
    touching = thin & (cv2.dilate(core, np.ones((3, 3), np.uint8)) > 0)
    contact = np.bincount(comp[touching], minlength=count)
    free = area > disc.shape[0] * np.maximum(contact, 1)
    free[0] = False
    for i in np.flatnonzero(free):
        free[i] = np.median(sobel[comp == i]) >= min_texture
    return free[comp]


def redraw_outline(rgb: np.ndarray, fg: np.ndarray, long_side: int, band: float, iters: int) -> np.ndarray:
    """``fg`` (a work-resolution cut of the photo ``rgb``) redrawn by GrabCut at ``long_side`` (at most the photo's)
    within ``band`` × the diagonal of its outline, as a bool mask at that resolution.

    At the work resolution an outline that runs through a smooth backdrop (a white wall beside a white vase) is a
    pixel or two off an edge a few pixels away; at a higher resolution GrabCut's edge term pulls it onto that edge.
    Inside the band the old cut is only probable; deeper inside it, and on the textured parts thinner than the band
    that stand free (:func:`free_thin_parts`: a silver cord close to a white backdrop's colour, which the redraw
    would drop), it is sure product; farther out sure background. (Marking what the peels took off as sure
    background too was tried: it kept the shadow peel's bite out of the shaded underside of ART001's vase and did
    not remove more of MEDI001's shadow.)"""
    height, width = rgb.shape[:2]
    scale = min(1.0, long_side / max(height, width))
    size = (max(8, round(width * scale)), max(8, round(height * scale)))
    image = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if scale < 1 else np.ascontiguousarray(rgb)
    cut = cv2.resize(fg.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    k = max(2, int(round(band * float(np.hypot(*size)))))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    mask = np.where(cut > 0, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    mask[cv2.erode(cut, disc) > 0] = cv2.GC_FGD
    mask[cv2.dilate(cut, disc) == 0] = cv2.GC_BGD
    mask[free_thin_parts(cut, disc, _gradient(image))] = cv2.GC_FGD
    if not (mask == cv2.GC_FGD).any() or not (mask == cv2.GC_BGD).any():
        return cut > 0  # nothing sure on one side: GrabCut has no model to learn
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(image, mask, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    out = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    # specks the redraw cut loose in the band
    count, comp, stats, _ = cv2.connectedComponentsWithStats(out.astype(np.uint8), 8)
    if count > 2:
        areas = stats[1:, cv2.CC_STAT_AREA]
        keep = np.concatenate([[False], areas >= 0.01 * areas.sum()])
        out = keep[comp]
    return out


class ClassicalCutter(Cutter):
    """Background removal without weights (see the module docstring)."""

    name = "classical"

    def cut_out(self, image: ProductImage) -> CutoutResult:
        s = self.settings
        # 1. check inputs; use an existing alpha
        rgba, existing = photo_and_existing_cut(image, s.margin)
        if existing is not None:
            return existing
        rgb = np.ascontiguousarray(rgba[..., :3])
        height, width = rgb.shape[:2]

        # 2. work resolution and the border colour model
        scale = min(1.0, s.work_size / max(height, width))
        small = cv2.resize(rgb, (max(8, round(width * scale)), max(8, round(height * scale))),
                           interpolation=cv2.INTER_AREA) if scale < 1 else rgb.copy()
        sh, sw = small.shape[:2]
        lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
        bw = max(2, int(round(s.border * min(sh, sw))))
        border = np.zeros((sh, sw), bool)
        border[:bw], border[-bw:], border[:, :bw], border[:, -bw:] = True, True, True, True
        samples = lab[border]
        k = 3
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
        cv2.setRNGSeed(0)  # k-means++ and GrabCut draw from OpenCV's global RNG: same photo, same cutout
        _, labels, centres = cv2.kmeans(samples, k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
        counts = np.bincount(labels.ravel(), minlength=k)
        major = centres[counts >= 0.1 * len(samples)]
        cluster_dist = np.min(np.linalg.norm(lab[..., None, :] - major[None, None], axis=-1), axis=-1)
        plain_fraction = float((cluster_dist[border] < 12).mean())
        spread = float(np.std(samples, axis=0).mean())
        plain = plain_fraction >= s.plain_threshold
        # a smooth backdrop model (quadratic in x, y per Lab channel, fitted robustly to the border): studio
        # backdrops are gradients, and a product part close to one of the border's colours (a white vase on a
        # white-to-grey sweep) still stands out from the backdrop's colour *at its own position*
        dist, noise, backdrop_light = _backdrop_distance(lab, border)
        # texture: backdrops are smooth, products have edges (thin silver chains, speckles)
        sobel = _gradient(small)
        grad = cv2.GaussianBlur(sobel, (0, 0), 2)
        grad_thr = max(8.0, float(np.percentile(grad[border], 99)) * 1.5)

        # 3. GrabCut seeded by the colour model (plain) or by a centre rectangle (busy)
        mask = np.full((sh, sw), cv2.GC_PR_BGD, np.uint8)
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        if plain:
            thr = max(10.0, 2.5 * noise)
            strong = (dist > thr * 2) | (grad > grad_thr * 2)
            fg_seed = (dist > thr) | (grad > grad_thr)
            fg_seed = cv2.morphologyEx(fg_seed.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
            if fg_seed.mean() < s.min_area * 0.5:
                raise RejectItem(f"no separable product: only {fg_seed.mean() * 100:.2f}% of the image differs from "
                                 f"the plain background colour (need {s.min_area * 100:.1f}%)")
            mask[fg_seed] = cv2.GC_PR_FGD
            mask[strong & fg_seed] = cv2.GC_FGD
            mask[border & (dist < thr * 0.5)] = cv2.GC_BGD
            cv2.grabCut(small, mask, None, bgd, fgd, s.grabcut_iters, cv2.GC_INIT_WITH_MASK)
        else:
            mx, my = int(sw * 0.08), int(sh * 0.08)
            cv2.grabCut(small, mask, (mx, my, sw - 2 * mx, sh - 2 * my), bgd, fgd, s.grabcut_iters,
                        cv2.GC_INIT_WITH_RECT)
        fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        peeled = enclosed = 0.0
        if plain:
            backdrop = (dist < thr) & (grad < grad_thr)
            if s.peel_backdrop:
                candidate, share = _peel_backdrop(fg, backdrop)
                if share < s.peel_backdrop:  # more would be the product itself looking like the backdrop: keep it
                    fg, peeled = candidate, share
            fg, enclosed, seen_through = _peel_enclosed(fg, backdrop, s.peel_enclosed, dist, s.peel_exact)
            # small holes (speckles, engraving) belong to the product; large ones (a bracelet's inside) and the
            # backdrop itself seen through the product not
            fg = fill_small_holes(fg, 0.01) & ~seen_through
        rim = 0.0
        if plain and s.peel_rim > 0:  # before the specks are dropped: the peel can cut a sliver loose
            fg, rim = peel_rim(fg, sobel, lab[..., 0] < backdrop_light - 2.0, s.peel_rim)

        # 4. keep the main components, fill tiny holes
        count, comp, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), 8)
        if count > 1:
            areas = stats[1:, cv2.CC_STAT_AREA]
            keep = np.zeros(count, bool)
            keep[1:] = areas >= max(0.03 * areas.max(), 0.0005 * sh * sw)
            if not plain:  # centre prior: the component(s) near the centre
                cx, cy = stats[1:, 0] + stats[1:, 2] / 2, stats[1:, 1] + stats[1:, 3] / 2
                near = (np.abs(cx - sw / 2) < sw * 0.35) & (np.abs(cy - sh / 2) < sh * 0.35)
                keep[1:] &= near | (areas == areas.max())
            fg = keep[comp]
        kept = np.sort(stats[1:, cv2.CC_STAT_AREA][keep[1:]])[::-1] if count > 1 else np.zeros(0)
        # a product is one to three pieces; confetti (black beads on black cloth found by their highlights) is not
        fragmented = fragmentation(kept)
        area = float(fg.mean())
        if not s.min_area <= area <= s.max_area:
            raise RejectItem(f"no separable product: foreground covers {area * 100:.1f}% of the image "
                             f"(accepted {s.min_area * 100:.1f}%–{s.max_area * 100:.0f}%)")
        touching = border_share(fg)

        # 5. the outline redrawn at a higher resolution; soft alpha at full resolution (guided filter on the
        # upsampled mask)
        outline = redraw_outline(rgb, fg, s.refine_size, s.refine_band, s.grabcut_iters) \
            if s.refine_size > max(sh, sw) else fg
        alpha = refine_alpha(rgb, outline.astype(np.float32), s.refine_radius)
        if plain:  # the outline's pixels that mix product and backdrop at full opacity made soft
            alpha = unmix_edge(rgb, alpha)

        # 6. confidence
        if plain:
            inside = dist[fg]
            separation = float(np.clip(np.median(inside) / 40.0, 0, 1)) if inside.size else 0.0
            confidence = plain_fraction * (0.5 + 0.5 * separation) * (1.0 - min(1.0, touching * 2))
            notes = f"plain background ({plain_fraction * 100:.0f}% of the border matches {len(major)} colour(s))"
        else:
            confidence = 0.3 * (1.0 - min(1.0, touching * 2))
            notes = (f"busy background (border: {plain_fraction * 100:.0f}% near its dominant colours, spread "
                     f"{spread:.0f}); centre prior used")
        confidence *= 1.0 - fragmented
        if peeled >= 0.01:
            notes += f"; backdrop peeled off ({peeled * 100:.0f}% of GrabCut's cut)"
        if enclosed >= 0.01:
            notes += f"; enclosed backdrop peeled off ({enclosed * 100:.0f}% of the cut)"
        if rim >= 0.01:
            notes += f"; smooth rim peeled off ({rim * 100:.0f}% of the cut)"
        if fragmented > 0.2:
            notes += f"; fragmented ({fragmented * 100:.0f}% of the foreground outside its 3 largest pieces)"
        if touching > 0.05:
            notes += f"; product touches the image border ({touching * 100:.0f}% of the border)"
        measures = {"smooth_base": round(smooth_base(rgb, alpha), 4)} if plain else {}
        return CutoutResult(trim(with_alpha(rgb, alpha), s.margin), float(confidence), confidence < s.low_confidence,
                            notes, measures)
