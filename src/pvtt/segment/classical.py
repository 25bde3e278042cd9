"""Classical video segmentation: GrabCut on frame 0, carried by dense optical flow, re-refined by GrabCut.

Frame 0 is segmented at up to ``first_long_side``, the rest at ``work_long_side``; the soft masks are
upsampled at the end.

1. GrabCut seeded by the box (outside = background) on frame 0, local to the box plus a margin. A box
   of low confidence (``grow_below``) is a rough hint: the sides the mask runs into move out by a quarter
   of the box (``grow_steps`` times at most) and the new ring is labelled by the colour-likelihood cut
   below, keeping the parts that connect into the first box.
2. DIS optical flow from each frame back to the previous one; the previous soft mask is pulled along
   it (backward warping leaves no holes; what leaves the frame falls off the border).
3. Every ``refine_every`` frames, or when confidence drops, GrabCut re-segments the frame with the
   warped mask as seeds (its core as foreground, an uncertain band around its edge, background beyond);
   a refinement that disagrees too much with the warped mask is discarded as drift.
4. A majority vote over the flow-aligned masks of frames t-1, t, t+1 removes one-frame flicker.

GrabCut's strong boundary term also cuts away thin or low-contrast parts of a product (chains, a grey
braid on a grey-lilac cloth). In steps 1 and 3 they are added back by a second graph cut with a weak
boundary term (``cut_smoothness``) on the log-likelihood ratio of Lab colour models (Gaussian mixtures):
on frame 0 the models of GrabCut's mask and of the rest of the crop, over the box; in a re-refinement
frame 0's product model against the surroundings now, over the warped mask (grown by a pixel) with the
warped mask as a prior (``flow_prior``). The mask is the union of GrabCut's and the cut's.

Per-frame confidence: the fraction of mask pixels whose flow is forward-backward consistent, times the
agreement (IoU) between the warped and the refined mask on frames that were refined.
"""

from __future__ import annotations


import cv2
import numpy as np
import scipy.sparse
from scipy.sparse.csgraph import breadth_first_order, maximum_flow

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
    cv2.setRNGSeed(0)  # GrabCut starts its colour models with k-means: the same input gives the same mask
    try:
        cv2.grabCut(image, seeds, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return None
    return np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD))


Gmm = tuple[np.ndarray, np.ndarray, np.ndarray]  # weights (k,), means (k, 3), covariances (k, 3, 3)


def _fit_gmm(x: np.ndarray, k: int = 5, iterations: int = 10) -> Gmm:
    """Gaussian mixture of the rows of ``x`` by EM, from k-means++ centres drawn with a fixed seed."""
    x = x.astype(np.float64)
    n, d = x.shape
    rng = np.random.default_rng(0)
    centres = [x[rng.integers(n)]]
    for _ in range(1, k):
        d2 = np.min([((x - c) ** 2).sum(axis=1) for c in centres], axis=0)
        centres.append(x[rng.choice(n, p=d2 / d2.sum())] if d2.sum() > 0 else x[rng.integers(n)])
    weights, means = np.full(k, 1.0 / k), np.array(centres)
    covs = np.repeat(np.cov(x.T)[None] + np.eye(d), k, axis=0)
    for _ in range(iterations):
        ll = _component_loglik(x, (weights, means, covs))
        resp = np.exp(ll - ll.max(axis=1, keepdims=True))
        resp /= resp.sum(axis=1, keepdims=True)
        nk = resp.sum(axis=0) + 1e-9
        weights, means = nk / n, resp.T @ x / nk[:, None]
        for j in range(k):
            dx = x - means[j]
            covs[j] = (resp[:, j, None] * dx).T @ dx / nk[j] + np.eye(d)  # +I: 8-bit colours, flat regions
    return weights, means, covs


def _component_loglik(x: np.ndarray, gmm: Gmm) -> np.ndarray:
    weights, means, covs = gmm
    out = np.empty((len(x), len(weights)))
    for j in range(len(weights)):
        dx = x - means[j]
        maha = np.einsum("ij,ij->i", dx @ np.linalg.inv(covs[j]), dx)
        out[:, j] = np.log(weights[j] + 1e-12) - 0.5 * (maha + np.linalg.slogdet(covs[j])[1])
    return out


def _gmm_loglik(x: np.ndarray, gmm: Gmm) -> np.ndarray:
    """Log density (up to a constant shared by every model) of each row of ``x``."""
    ll = _component_loglik(x.astype(np.float64), gmm)
    top = ll.max(axis=1)
    return top + np.log(np.exp(ll - top[:, None]).sum(axis=1))


def colour_model(lab: np.ndarray, where: np.ndarray, samples: int) -> Gmm | None:
    """Gaussian mixture (5 components, full covariances) of the Lab colours of ``lab`` where ``where``.

    Luminance and chroma are modelled jointly, so a shadowed cloth and a neutral grey product of the same
    lightness stay apart. Fitted on at most ``samples`` pixels (fixed seed); None with fewer than 100.
    """
    idx = np.flatnonzero(where)
    if len(idx) < 100:
        return None
    pick = np.random.default_rng(0).choice(idx, min(len(idx), samples), replace=False)
    return _fit_gmm(lab.reshape(-1, 3)[pick])


def _min_cut(unary: np.ndarray, image: np.ndarray, smoothness: float, fixed: np.ndarray,
             scale: float = 100.0) -> np.ndarray:
    """The labelling minimising sum(unary of the background pixels) + smoothness * contrast-weighted boundary.

    ``unary`` > 0 favours foreground; ``fixed`` is +1 (foreground) or -1 (background) where the label is
    given, 0 where it is free. Neighbours are 4-connected with GrabCut's contrast weight exp(-beta |dI|^2).
    Solved exactly as a max flow (scipy, integer capacities) on the free pixels only: the boundary with a
    fixed neighbour becomes part of a free pixel's unary.
    """
    h, w = unary.shape
    pix = image.reshape(h * w, -1).astype(np.float32)
    idx = np.arange(h * w).reshape(h, w)
    pairs = [(idx[:, :-1].ravel(), idx[:, 1:].ravel()), (idx[:-1].ravel(), idx[1:].ravel())]
    diffs = [((pix[a] - pix[b]) ** 2).sum(axis=1) for a, b in pairs]
    beta = 1.0 / (2.0 * np.mean(np.concatenate(diffs)) + 1e-9)
    fixed = fixed.ravel()
    free = fixed == 0
    n = int(free.sum())
    if n == 0:
        return (fixed > 0).reshape(h, w)
    node = np.full(h * w, -1)
    node[free] = np.arange(n)
    cost = np.where(free, np.round(unary.ravel() * scale), 0).astype(np.int64)
    rows, cols, caps = [], [], []
    for (a, b), diff in zip(pairs, diffs):
        weight = np.round(smoothness * scale * np.exp(-beta * diff)).astype(np.int64)
        both = free[a] & free[b]
        rows += [node[a[both]], node[b[both]]]
        cols += [node[b[both]], node[a[both]]]
        caps += [weight[both], weight[both]]
        for p, q in ((a, b), (b, a)):  # a free pixel next to a fixed one pays the boundary if it differs
            one = free[p] & ~free[q]
            np.add.at(cost, p[one], weight[one] * fixed[q[one]])
    source, sink = n, n + 1
    fg, bg = np.nonzero(cost[free] > 0)[0], np.nonzero(cost[free] < 0)[0]
    rows += [np.full(len(fg), source), bg]
    cols += [fg, np.full(len(bg), sink)]
    caps += [cost[free][fg], -cost[free][bg]]
    capacity = np.concatenate(caps)
    used = capacity > 0
    graph = scipy.sparse.csr_matrix((capacity[used].astype(np.int32),
                                     (np.concatenate(rows)[used], np.concatenate(cols)[used])), shape=(n + 2, n + 2))
    flow = maximum_flow(graph, source, sink, method="dinic").flow
    residual = graph - flow
    residual.data = np.maximum(residual.data, 0)
    residual.eliminate_zeros()
    reached = np.zeros(n + 2, bool)
    reached[breadth_first_order(residual, source, directed=True, return_predecessors=False)] = True
    out = fixed > 0
    out[free] = reached[:n]
    return out.reshape(h, w)


def likelihood_cut(lab: np.ndarray, product: Gmm, background: Gmm, region: np.ndarray, smoothness: float,
                   prior: np.ndarray | None = None, keep: np.ndarray | None = None) -> np.ndarray:
    """Label ``region`` of ``lab`` (a Lab image) product or background by a graph cut with a weak boundary term.

    GrabCut's boundary term is strong: it also cuts away thin or low-contrast parts (a chain, a grey braid
    on a grey-lilac cloth) whose colour clearly belongs to the product. Here each pixel's log-likelihood
    ratio, ``product`` against ``background``, clipped to +-8 so that a few extreme pixels cannot outweigh
    their neighbours, plus ``prior`` (nats, optional), is cut with ``smoothness`` (nats per unit of
    boundary; GrabCut's is 50 on 8 neighbours). Pixels outside ``region`` stay background, pixels in
    ``keep`` (optional) product.
    """
    ys, xs = np.nonzero(region)
    out = np.zeros(region.shape, bool)
    if len(xs) == 0:
        return out
    # the region and a one-pixel frame of background around it
    h, w = region.shape
    y0, x0, y1, x1 = max(0, ys.min() - 1), max(0, xs.min() - 1), min(h, ys.max() + 2), min(w, xs.max() + 2)
    window = lab[y0:y1, x0:x1]
    fixed = np.where(region[y0:y1, x0:x1], 0, -1).astype(np.int8)
    if keep is not None:
        fixed[keep[y0:y1, x0:x1] & region[y0:y1, x0:x1]] = 1
    free = fixed == 0
    # evaluate each distinct colour of the free pixels once (several times fewer colours than pixels)
    packed = (window[..., 0].astype(np.int32) << 16) | (window[..., 1].astype(np.int32) << 8) | window[..., 2]
    colours, which = np.unique(packed[free], return_inverse=True)
    colours = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], axis=1)
    ratio = np.zeros(window.shape[:2])
    ratio[free] = np.clip(_gmm_loglik(colours, product) - _gmm_loglik(colours, background), -8.0, 8.0)[which]
    if prior is not None:
        ratio = ratio + prior[y0:y1, x0:x1]
    out[y0:y1, x0:x1] = _min_cut(ratio, window, smoothness, fixed)
    return out


def sides_crossed(mask: np.ndarray, box: tuple[int, int, int, int], min_run: float = 0.01) -> list[str]:
    """The sides of ``box`` that ``mask`` runs into: mask pixels within 3 px inside the side along at least
    ``min_run`` of its length. A product cut off by too small a box crosses the side there."""
    x0, y0, x1, y1 = box
    strips = {"top": mask[y0:y0 + 3, x0:x1].any(axis=0), "bottom": mask[max(y0, y1 - 3):y1, x0:x1].any(axis=0),
              "left": mask[y0:y1, x0:x0 + 3].any(axis=1), "right": mask[y0:y1, max(x0, x1 - 3):x1].any(axis=1)}
    return [side for side, run in strips.items() if run.size and run.mean() >= min_run]


def grow_box(box: tuple[int, int, int, int], sides: list[str], fraction: float, width: int,
             height: int) -> tuple[int, int, int, int]:
    """``box`` with each of ``sides`` moved out by ``fraction`` of the box's size, inside the image."""
    x0, y0, x1, y1 = box
    dx, dy = max(1, round(fraction * (x1 - x0))), max(1, round(fraction * (y1 - y0)))
    return (max(0, x0 - dx) if "left" in sides else x0, max(0, y0 - dy) if "top" in sides else y0,
            min(width, x1 + dx) if "right" in sides else x1, min(height, y1 + dy) if "bottom" in sides else y1)


def _parts_in(mask: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The connected parts of ``mask`` that reach into ``box``."""
    _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    x0, y0, x1, y1 = box
    inside = np.unique(labels[y0:y1, x0:x1])
    return np.isin(labels, inside[inside > 0])


def extend_past_box(image: np.ndarray, first: np.ndarray, box: tuple[int, int, int, int], steps: int,
                    smoothness: float) -> np.ndarray:
    """``first`` (the mask found in ``box``) followed past the sides of the box it runs into.

    Each step moves those sides out by a quarter of the box and labels the new ring by a
    :func:`likelihood_cut` between colour models of ``first`` and of the rest of the box and its margin, with
    ``first`` kept; only parts connected into the box count. An object that merely touches the product (another
    item, a hand) is not taken in with it, and no GrabCut runs again: a step costs a fraction of a second.
    """
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box
    mx, my = max(8, (x1 - x0) // 4), max(8, (y1 - y0) // 4)
    near = np.zeros((h, w), bool)
    near[max(0, y0 - my):y1 + my, max(0, x0 - mx):x1 + mx] = True
    in_box = np.zeros((h, w), bool)
    in_box[y0:y1, x0:x1] = True
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    product, background = colour_model(lab, first, 2000), colour_model(lab, near & ~first, 6000)
    if product is None or background is None:
        return first
    mask, grown = first, box
    for _ in range(steps):
        larger = grow_box(grown, sides_crossed(mask, grown), 0.25, w, h)
        if larger == grown:
            break
        grown = larger
        ring = np.zeros((h, w), bool)
        ring[grown[1]:grown[3], grown[0]:grown[2]] = True
        ring &= ~in_box | first
        mask = _parts_in(first | likelihood_cut(lab, product, background, ring, smoothness, keep=first), box)
    return mask


def grabcut_box(image: np.ndarray, box: tuple[int, int, int, int], iterations: int,
                prior_distance: float = 12.0, smoothness: float = 8.0) -> np.ndarray:
    """Foreground of ``image`` (RGB) inside ``box`` (x0, y0, x1, y1), by GrabCut on the box plus a margin.

    Instead of GrabCut's usual "everything in the box is probably foreground", pixels in the box whose
    Lab colour lies within ``prior_distance`` of one of the margin's main colours (k-means, clusters with
    at least 10% of the margin) start as probable background: thin products (bracelets, chains, frames)
    then do not drag the background seen through them into the foreground model. GrabCut's mask and the
    rest of the crop then give the colour models of a :func:`likelihood_cut` of the box with boundary
    weight ``smoothness`` (0: none), whose mask is added: it keeps the thin and low-contrast parts that
    GrabCut cut away.
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
    lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB)
    if prior_distance > 0 and (~in_box).sum() >= 50:
        margin = lab[~in_box].astype(np.float32)
        if len(margin) > 20000:
            margin = margin[np.random.default_rng(0).choice(len(margin), 20000, replace=False)]
        k = 6
        cv2.setRNGSeed(0)
        _, labels, centres = cv2.kmeans(margin, k, None, (cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0), 1,
                                        cv2.KMEANS_PP_CENTERS)
        share = np.bincount(labels.ravel(), minlength=k) / len(labels)
        centres = centres[share >= 0.1]
        dist = np.min(np.linalg.norm(lab.astype(np.float32)[:, :, None] - centres[None, None], axis=-1), axis=-1)
        distinct = in_box & (dist > prior_distance)
        if distinct.sum() >= 0.02 * in_box.sum():  # else the colours say nothing: plain box init
            seeds[in_box & ~distinct] = cv2.GC_PR_BGD
    fg = _grabcut(crop, seeds, iterations)
    out = np.zeros((h, w), bool)
    if fg is None:
        return out
    if smoothness > 0:
        product, background = colour_model(lab, fg, 2000), colour_model(lab, ~fg, 6000)
        if product is not None and background is not None:
            # GrabCut's mask stays in the union anyway: fixing its inside leaves it out of the graph
            inner = cv2.erode(fg.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
            fg = fg | likelihood_cut(lab, product, background, in_box, smoothness, keep=inner)
    out[cy0:cy1, cx0:cx1] = fg
    return _clean(out)


def grabcut_refine(image: np.ndarray, soft: np.ndarray, band: int, iterations: int, product: Gmm | None,
                   smoothness: float, flow_prior: float) -> np.ndarray | None:
    """GrabCut seeded by the warped soft mask ``soft`` (eroded core = foreground, a ``band``-px band around the
    edge uncertain), plus the thin parts its boundary term cut away.

    Those are recovered by a :func:`likelihood_cut` of the warped mask grown by a pixel (what bilinear warping
    erodes from a thin part): frame 0's colour model ``product`` (None: GrabCut alone) against the colours
    of the surroundings now, with the warped mask as a prior of ``flow_prior`` nats (for the product inside
    it, against outside). The refined mask is the union of the two. The other side of it: a leak of frame 0
    onto a look-alike background, whose colours went into ``product``, is kept alive the same way.
    """
    mask = soft > 0.5
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    pad = 3 * band + 4
    cx0, cy0 = max(0, xs.min() - pad), max(0, ys.min() - pad)
    cx1, cy1 = min(w, xs.max() + 1 + pad), min(h, ys.max() + 1 + pad)
    m = mask[cy0:cy1, cx0:cx1].astype(np.uint8)
    crop = np.ascontiguousarray(image[cy0:cy1, cx0:cx1])
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    seeds = np.full(m.shape, cv2.GC_BGD, np.uint8)
    seeds[cv2.dilate(m, kernel) > 0] = cv2.GC_PR_BGD
    seeds[m > 0] = cv2.GC_PR_FGD
    seeds[cv2.erode(m, kernel) > 0] = cv2.GC_FGD
    fg = _grabcut(crop, seeds, iterations)
    if fg is None:
        return None
    if product is not None:
        lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB)
        background = colour_model(lab, m == 0, 6000)
        if background is not None:
            near = cv2.dilate(m, np.ones((3, 3), np.uint8)) > 0
            prior = flow_prior * (2.0 * soft[cy0:cy1, cx0:cx1] - 1.0)
            # GrabCut's mask stays in the union anyway: fixing its inside leaves it out of the graph
            inner = cv2.erode(fg.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
            fg = fg | likelihood_cut(lab, product, background, near, smoothness, prior, inner)
    out = np.zeros((h, w), bool)
    out[cy0:cy1, cx0:cx1] = fg
    return _clean(out)


def first_frame_mask(frame: np.ndarray, box: Box, s: SegmentSettings) -> np.ndarray:
    """Frame 0's product mask, at the scale it is cut at: GrabCut in ``box`` (:func:`grabcut_box`), followed past
    the sides of a rough box (confidence below ``grow_below``: :func:`extend_past_box`).

    The scale is at most ``first_long_side`` on the long side, and capped by ``first_max_pixels``: GrabCut's time
    grows with the pixels of the box and its margin, and a large product keeps its detail at a lower scale. It
    never goes below the working resolution (``work_long_side``).
    """
    height, width = frame.shape[:2]
    crop = min(width, 1.5 * (box.x1 - box.x0)) * min(height, 1.5 * (box.y1 - box.y0))
    s0 = min(1.0, s.first_long_side / max(height, width), float(np.sqrt(s.first_max_pixels / max(crop, 1.0))))
    s0 = max(s0, min(1.0, s.work_long_side / max(height, width)))
    w0, h0 = max(8, round(width * s0)), max(8, round(height * s0))
    frame0 = cv2.resize(frame, (w0, h0), interpolation=cv2.INTER_AREA) if s0 < 1 else frame
    rect = (int(np.floor(box.x0 * s0)), int(np.floor(box.y0 * s0)), int(np.ceil(box.x1 * s0)),
            int(np.ceil(box.y1 * s0)))
    mask = grabcut_box(frame0, rect, s.grabcut_iterations, s.prior_distance, s.cut_smoothness)
    if box.confidence < s.grow_below:  # a rough box (saliency, a weak detection) may cut the product off
        mask = extend_past_box(frame0, mask, rect, s.grow_steps, s.grow_smoothness)
    return mask


class ClassicalSegmenter(Segmenter):
    """GrabCut + DIS optical flow segmentation (CPU, no weights)."""

    name = "classical"

    settings_class = SegmentSettings

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
        first_hi = first_frame_mask(clip.frames[0], box, s)
        if first_hi.mean() < s.min_first_area:
            raise RejectItem(f"empty first-frame mask: {first_hi.mean():.5f} of the frame kept "
                             f"< {s.min_first_area} inside box {tuple(round(v) for v in box.as_tuple())}")
        first = cv2.resize(first_hi.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        product = None  # frame 0's product colours, to add back the thin parts that re-refinements cut away
        if s.cut_smoothness > 0:
            product = colour_model(cv2.cvtColor(small[0], cv2.COLOR_RGB2LAB), first > 0.5, 2000)
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
                refined = grabcut_refine(small[t], warped, band, s.refine_iterations, product, s.cut_smoothness,
                                         s.flow_prior)
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
