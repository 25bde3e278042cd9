"""The defects a reviewer sees in an edited clip, each measured and named.

Each check works on the judge's sampled frames at its reduced resolution and returns its scores and,
when its threshold is crossed, one reason that starts with the defect's name:

- **remnant of A** (``remnant``): A's pixels surviving in the edited clip outside B. Two ways A survives:
  inside A's mask, where the edit kept the source although the source differs from the erased background
  (a generator that redrew A); and beside the mask, where segmentation missed part of A, so neither erase
  nor insert touched it (a bird's head next to the new product, a watch strap above it). The second is
  found by :func:`a_extent`: a GrabCut of the source frame that models the backdrop from the frame around a
  grown hull of A's mask; what it adds to the mask, connected to it, and the edit still shows unchanged is A
  left behind — unless it visibly moves otherwise than A (:func:`moves_with_a`): the scene beside A, or an
  occluder passing in front of it, that has A's colours.
- **erase smear** (``smear``): the part of the filled region (where the erased background differs from
  the source) that B does not cover, measured for texture against a band of the frame around it: a
  flat grey or blurred fill has far less local contrast than the real background beside it, and a fill that
  copied a glitch or fragments (a source's stripe artefact, pieces of another object) has far more; and a
  patch fill that failed shows its blocks: straight horizontal and vertical seams between copied patches
  (:func:`axis_share`), far more of its edges on the image axes than the frame around it has.
- **product too small** (``product_area``): B covers less than ``min_product_area`` of the frame (median over the
  judged frames), a speck nobody can recognise — the slot of a mask that held only part of A (a watch's hands
  instead of the watch) gives B that size; **product too large**: more than ``max_product_area``, the slot of a mask
  that took in the backdrop.
- **floating** (``floating``): A stood on something (its mask ends above the frame's bottom edge, on a base that
  spans a good part of its width) and B's lowest pixels sit clearly above A's: B hangs in the air where A touched
  its support.

Foreign content in B's cutout (a hand, a shelf, a cutout in pieces) is a property of the product image: the
cutout stage measures it once per product (:func:`pvtt.cutout.foreign_content`) and rejects the photo, naming
it, so the product's own template video is used instead.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import cv2
import numpy as np

from pvtt.compose import box_diagonal, convex_hull, dilate, local_contrast


def _disk(radius: int) -> np.ndarray:
    radius = max(1, int(radius))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _extent_labels(mask_a: np.ndarray, reach: float) -> tuple[np.ndarray, tuple[int, int, int, int], np.ndarray]:
    """:func:`a_extent`'s search zone, the crop around it and GrabCut's seed labels in that crop."""
    step = max(3, int(reach * box_diagonal(mask_a)))
    zone = dilate(convex_hull(mask_a), step)
    ys, xs = np.nonzero(dilate(zone, step))
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    labels = np.full(mask_a.shape, cv2.GC_BGD, np.uint8)
    labels[zone] = cv2.GC_PR_FGD
    labels[cv2.erode(mask_a.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0] = cv2.GC_FGD
    return zone, (y0, y1, x0, x1), np.ascontiguousarray(labels[y0:y1, x0:x1])


def _share(sub: np.ndarray) -> float:
    return float((sub == cv2.GC_BGD).sum()) / max(1, int((sub == cv2.GC_PR_FGD).sum()))


def backdrop_share(mask_a: np.ndarray, reach: float) -> float:
    """The backdrop :func:`a_extent` learns from (the crop around its search zone, outside the zone) as a share of
    the zone's probable pixels: what ``judge.remnant_min_backdrop`` thresholds."""
    return _share(_extent_labels(mask_a, reach)[2])


# A's extent depends on the source frame and A's mask, not on B: every pair of a clip asks for the extents of the same
# frames, and the judge of a clip crossed with many products ran the same GrabCuts once per pair (2-3 s each at the
# judge's 360 px, six per pair: most of a dev pair's judge). Kept per process: the most recent EXTENT_CACHE_SIZE.
EXTENT_CACHE_SIZE = 48
_extents: OrderedDict[bytes, np.ndarray] = OrderedDict()


def a_extent(src: np.ndarray, mask_a: np.ndarray, reach: float, min_backdrop: float = 0.0) -> np.ndarray:
    """:func:`find_a_extent`, remembered: the same frame, mask and settings give back the extent found before (a
    copy) without cutting again."""
    src, mask_a = np.ascontiguousarray(src), np.asarray(mask_a, bool)
    digest = hashlib.blake2b(digest_size=20)
    for part in (src, np.packbits(mask_a), np.array(src.shape + mask_a.shape), np.array([reach, min_backdrop])):
        digest.update(np.ascontiguousarray(part).tobytes())
    key = digest.digest()
    found = _extents.get(key)
    if found is None:
        found = _extents[key] = find_a_extent(src, mask_a, reach, min_backdrop)
        while len(_extents) > EXTENT_CACHE_SIZE:
            _extents.popitem(last=False)
    else:
        _extents.move_to_end(key)
    return found.copy()


def find_a_extent(src: np.ndarray, mask_a: np.ndarray, reach: float, min_backdrop: float = 0.0) -> np.ndarray:
    """A's extent in the source frame, mask included: a GrabCut whose background model is the frame around a
    hull of A's mask grown by ``reach`` × A's box diagonal, the grown hull probable object and the eroded mask sure
    object — so a part of A in another colour than the masked part (a strap beside a dial, beads of another
    colour) still counts as A when it stands out from the backdrop; connected to the mask (seeded: the same frame
    gives the same cut).

    Where the frame around the grown hull is less than ``min_backdrop`` of the hull's probable pixels (A spans the
    frame), the backdrop's colour model is learnt from too little and the cut takes the backdrop for A: only the
    mask is returned."""
    zone, (y0, y1, x0, x1), sub = _extent_labels(mask_a, reach)
    if not (sub == cv2.GC_BGD).any() or _share(sub) < min_backdrop:
        return mask_a.copy()  # the zone (nearly) fills the frame: too little backdrop to model
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(np.ascontiguousarray(src[y0:y1, x0:x1]), sub, None, np.zeros((1, 65)), np.zeros((1, 65)), 4,
                    cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # one colour only on one side: nothing to model
        return mask_a.copy()
    out = np.zeros(mask_a.shape, bool)
    out[y0:y1, x0:x1] = (sub == cv2.GC_FGD) | (sub == cv2.GC_PR_FGD)
    out = (out & zone) | mask_a
    # only what connects to the mask: another object in the zone is the scene's own
    count, comp = cv2.connectedComponents(out.astype(np.uint8), connectivity=8)
    keep = np.unique(comp[mask_a & (comp > 0)])
    return np.isin(comp, keep) & out


def moves_with_a(src: np.ndarray, later: np.ndarray, mask_a: np.ndarray, candidate: np.ndarray, motion: np.ndarray,
                 min_separation: float) -> np.ndarray:
    """The pieces of ``candidate`` (pixels beside A's mask in frame ``src``) that move with A on the way to frame
    ``later``, or whose motion cannot tell: A's motion is ``motion`` (2x3, from A's tracked points); each piece's
    dense optical flow is compared with it and with the scene's (the median flow of the frame away from A). Where
    the two differ by less than ``min_separation`` pixels over the piece (a still product under a still camera, a
    product that moves with the camera) the piece is kept: motion cannot tell A's parts from the scene's. Else the
    piece is kept only when its flow stays within half that difference of A's motion: a part of A the mask missed
    rides along with A; the backdrop beside A moves with the scene, an occluder on its own path."""
    count, comp = cv2.connectedComponents(candidate.astype(np.uint8), connectivity=8)
    if count <= 1:
        return candidate
    grey0, grey1 = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in (src, later))
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(grey0, grey1, None)
    away = ~dilate(convex_hull(mask_a | candidate), max(3, int(0.1 * box_diagonal(mask_a))))
    if away.sum() < 100:
        return candidate
    scene = np.median(flow[away], axis=0)
    keep = np.zeros(count, bool)
    for i in range(1, count):
        ys, xs = np.nonzero(comp == i)
        f = flow[ys, xs]
        along = np.column_stack([xs, ys]).astype(np.float64) @ motion[:, :2].T + motion[:, 2] - np.column_stack([xs, ys])
        separation = float(np.median(np.linalg.norm(along - scene, axis=1)))
        if separation < min_separation:
            keep[i] = True
            continue
        keep[i] = float(np.median(np.linalg.norm(f - along, axis=1))) <= 0.5 * separation
    return keep[comp] & candidate


def beside_mask(src: np.ndarray, edt: np.ndarray, mask_a: np.ndarray, mask_b: np.ndarray, settings: Any) -> np.ndarray:
    """What :func:`a_extent` takes for A beyond its mask, away from B, where the edit still shows the source (specks
    opened away): the remnant check's part beside the mask, before :func:`moves_with_a`."""
    b_near = dilate(mask_b, max(2, int(0.02 * box_diagonal(mask_a))))
    beyond = a_extent(src, mask_a, settings.remnant_reach, settings.remnant_min_backdrop) & ~mask_a & ~b_near
    same = np.abs(edt.astype(np.int16) - src.astype(np.int16)).max(axis=2) <= settings.remnant_same
    return cv2.morphologyEx((beyond & same).astype(np.uint8), cv2.MORPH_OPEN, _disk(1)) > 0


def remnant(src: np.ndarray, edt: np.ndarray, bg: np.ndarray | None, mask_a: np.ndarray, mask_b: np.ndarray,
            settings: Any, later: np.ndarray | None = None, motion: np.ndarray | None = None) -> float | None:
    """Area of A surviving outside B in one frame, as a fraction of A's mask area (None: A not visible).
    ``later`` (a later source frame) and ``motion`` (A's motion to it, 2x3) let the part beside the mask drop what
    moves otherwise than A (:func:`moves_with_a`)."""
    area_a = int(mask_a.sum())
    if area_a < 30:
        return None
    b_near = dilate(mask_b, max(2, int(0.02 * box_diagonal(mask_a))))
    survived = np.zeros(mask_a.shape, bool)
    # 1. inside A's mask: the edit kept the source where the source is not the background
    if bg is not None:
        s, e, g = (x.astype(np.int16) for x in (src, edt, bg))
        kept = np.abs(e - s).max(axis=2) <= settings.remnant_same
        differs = np.abs(s - g).max(axis=2) >= settings.remnant_differs
        survived |= mask_a & ~b_near & kept & differs
    # 2. beside it: what a_extent takes for A beyond the mask, where the edit still shows the source
    beside = beside_mask(src, edt, mask_a, mask_b, settings)
    if later is not None and motion is not None and beside.any():
        beside = moves_with_a(src, later, mask_a, beside, motion, settings.remnant_motion_min)
    survived |= beside
    return float(survived.sum()) / area_a


def axis_share(grey: np.ndarray, region: np.ndarray, min_gradient: float = 40.0) -> float | None:
    """Share of the gradient energy of ``region``'s strong edges (Sobel magnitude above ``min_gradient``) that
    lies within 6 degrees of horizontal or vertical (None: too few strong edges). Natural texture spreads over
    every direction; the seams of a patch fill's blocks are axis-aligned."""
    g = grey.astype(np.float32)
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.hypot(gx, gy)
    strong = region & (mag > min_gradient)
    if strong.sum() < 30:
        return None
    angle = np.degrees(np.arctan2(np.abs(gy), np.abs(gx)))
    axis = strong & ((angle < 6) | (angle > 84))
    return float(mag[axis].sum() / mag[strong].sum())


# blocks are judged only where the visible fill has enough strong edges to measure on at least this share of the
# judged frames: a smooth fill with edges in two frames of eleven (a hand passing; a `pvtt bench` case whose old fill of
# ghost pieces was kept) is no mosaic of blocks, and the median of two values is no measure of the clip
MIN_SEAM_FRAMES = 1 / 3
FLAT_EXCESS = 1.5  # a flat piece counts when its share of the visible fill is this many times the flat share around


def smear(src: np.ndarray, edt: np.ndarray, bg: np.ndarray, mask_a: np.ndarray, mask_b: np.ndarray,
          settings: Any) -> tuple[float, float, float | None, float] | None:
    """(visible filled area / A's area, texture of the visible fill / texture around it, axis-aligned edge share
    of the visible fill / that of the frame around it, the largest flat piece of the visible fill / A's area) in one
    frame, or None when the visible fill is too small to judge; the third is None where either side has too few
    strong edges. A flat piece: connected visible fill whose local contrast is below ``flat_fill_contrast`` × the
    median around the fill — a strip of wall colour pulled down into a textured table, a flat block where a hand
    was: a small part of the fill, which the median texture does not see. It counts only where it is at least
    ``FLAT_EXCESS`` times the share of the visible fill that flat pixels have around the fill (a backdrop with flat
    patches of its own, the generated cases', is not a smear)."""
    area_a = int(mask_a.sum())
    if area_a < 30:
        return None
    diag = box_diagonal(mask_a)
    changed = np.abs(bg.astype(np.int16) - src.astype(np.int16)).max(axis=2) >= settings.remnant_differs
    changed = cv2.morphologyEx(changed.astype(np.uint8), cv2.MORPH_CLOSE, _disk(2)) > 0
    filled = changed & dilate(mask_a, max(2, int(0.25 * diag)))
    visible = filled & ~dilate(mask_b, max(2, int(0.02 * diag)))
    visible = cv2.morphologyEx(visible.astype(np.uint8), cv2.MORPH_OPEN, _disk(2)) > 0
    frac = float(visible.sum()) / area_a
    if visible.sum() < 50:
        return frac, 1.0, None, 0.0
    band = dilate(filled, max(3, int(0.08 * diag))) & ~dilate(filled, 2) & ~dilate(mask_b, 2)
    if band.sum() < 50:
        return None
    grey = cv2.cvtColor(edt, cv2.COLOR_RGB2GRAY)
    tex = local_contrast(grey)
    inside, around = float(np.median(tex[visible])), float(np.median(tex[band]))
    flat_px = tex < settings.flat_fill_contrast * around
    flat = cv2.morphologyEx((visible & flat_px).astype(np.uint8), cv2.MORPH_OPEN, _disk(2))
    count, _, stats, _ = cv2.connectedComponentsWithStats(flat, connectivity=8)
    flat_piece = float(stats[1:, cv2.CC_STAT_AREA].max()) / area_a if count > 1 else 0.0
    if flat_piece * area_a < FLAT_EXCESS * float(flat_px[band].mean()) * visible.sum():
        flat_piece = 0.0  # no flatter than the frame around it: a backdrop with flat patches of its own
    # seams: inside the fill only (its own outline follows A's mask, which may be straight)
    core = cv2.erode(visible.astype(np.uint8), _disk(2)) > 0
    seams = None
    if core.sum() >= 200:
        a, b = axis_share(grey, core), axis_share(grey, band)
        if a is not None and b is not None:
            seams = a / max(b, 0.05)
    return frac, (inside + 1.0) / (around + 1.0), seams, flat_piece


def floating(mask_a: np.ndarray, mask_b: np.ndarray, settings: Any) -> float | None:
    """How far B's lowest pixel over A's columns sits above A's lowest, as a fraction of A's height, where A stood on
    something (None: A touches the frame's bottom, has no base — its lowest tenth spans less than
    ``floating_min_base`` of its width — or either mask is empty). Over all of A's columns, not only its base's: on
    the nineteenth dev build and the bench, B = ART001's two vases, the rear one standing higher in the frame, hung
    0.08-0.21 of A's height over A's base columns while its front vase stood where A stood."""
    ys_a = np.flatnonzero(mask_a.any(axis=1))
    ys_b = np.flatnonzero(mask_b.any(axis=1))
    if len(ys_a) == 0 or len(ys_b) == 0:
        return None
    height = mask_a.shape[0]
    if ys_a[-1] >= height - 1 - settings.floating_border * height:
        return None  # A runs out of the frame at the bottom: its support is not seen
    a_height = ys_a[-1] - ys_a[0] + 1
    cols = np.flatnonzero(mask_a[max(ys_a[-1] - max(2, a_height // 10), 0):ys_a[-1] + 1].any(axis=0))
    xs_a = np.flatnonzero(mask_a.any(axis=0))
    if len(cols) and (cols[-1] - cols[0] + 1) < settings.floating_min_base * (xs_a[-1] - xs_a[0] + 1):
        return None  # no base: the low end of something lying across the frame (a diagonal cord)
    # B's lowest pixel over A's footprint (its columns): any part of B standing where A stood is contact — a set of
    # two vases, the rear one's base higher in the frame, stands on the front one's
    sub = mask_b[:, max(xs_a[0] - 2, 0):xs_a[-1] + 3]
    rows = np.flatnonzero(sub.any(axis=1))
    bottom_b = rows[-1] if len(rows) else ys_b[-1]
    return max(0.0, float(ys_a[-1] - bottom_b)) / a_height


def _remnant_times(idx: list[int], settings: Any) -> list[int]:
    return sorted({idx[int(round(i))] for i in np.linspace(0, len(idx) - 1, min(len(idx), settings.remnant_frames))})


def remnant_frames(idx: list[int], count: int, settings: Any) -> list[tuple[int, int | None]]:
    """The frames the remnant check looks at (``remnant_frames`` of the judged ones, spread over the clip), each with
    the frame whose motion :func:`moves_with_a` compares it to (``remnant_motion_step`` later, or earlier at the
    clip's end; None: off, or the clip too short)."""
    step = settings.remnant_motion_step
    out = []
    for t in _remnant_times(idx, settings):
        other = t + step if t + step < count else t - step
        out.append((t, other if step > 0 and 0 <= other < count else None))
    return out


def defect_checks(src: dict, edt: dict, bg: dict | None, a_s: dict, b_s: dict, idx: list[int],
                  settings: Any, motion: dict | None = None) -> tuple[dict[str, float], list[str]]:
    """Run the frame checks over the sampled frames ``idx``; returns (scores, reasons). ``motion``: for a remnant
    frame ``t`` (:func:`remnant_frames`), ``(later source frame, A's motion to it)``."""
    scores: dict[str, float] = {}
    reasons: list[str] = []
    s = settings
    # on a few frames spread over the clip: A's extent is a GrabCut a frame (~0.1-0.3 s)
    motion = motion or {}
    frames = _remnant_times(idx, s)
    rem = [remnant(src[t], edt[t], bg[t] if bg else None, a_s[t], b_s[t], s, *motion.get(t, (None, None)))
           for t in frames]
    rem = [r for r in rem if r is not None]
    if rem and s.max_remnant < 1:
        # the worse frames, but not a single one: a remnant in one frame is a flicker, the temporal check's business
        scores["remnant"] = float(np.percentile(rem, 75))
        if scores["remnant"] > s.max_remnant:
            reasons.append(f"remnant of A: {scores['remnant']:.2f} of A's area survives outside B "
                           f"> {s.max_remnant:.2f}")
    if bg is not None and s.min_fill_texture > 0:
        sm = [smear(src[t], edt[t], bg[t], a_s[t], b_s[t], s) for t in idx]
        sm = [x for x in sm if x is not None]
        if sm:
            frac = np.array([x[0] for x in sm])
            tex = np.array([x[1] for x in sm])
            scores["fill_visible"] = float(np.median(frac))
            scores["fill_texture"] = float(np.median(tex))
            seams = [x[2] for x in sm if x[2] is not None]
            if seams and len(seams) >= MIN_SEAM_FRAMES * len(sm):
                scores["fill_seams"] = float(np.median(seams))
            # the worse frames, as for the remnant: a flat strip shows where B leaves it uncovered
            scores["fill_flat"] = float(np.percentile([x[3] for x in sm], 75))
            if scores["fill_visible"] >= s.min_fill_visible and scores["fill_texture"] < s.min_fill_texture:
                reasons.append(f"erase smear: the visible fill ({scores['fill_visible']:.2f} of A's area) has "
                               f"{scores['fill_texture']:.2f} of the texture around it < {s.min_fill_texture:.2f}")
            elif scores["fill_visible"] >= s.min_fill_visible and scores["fill_texture"] > s.max_fill_texture:
                reasons.append(f"erase smear: the visible fill ({scores['fill_visible']:.2f} of A's area) has "
                               f"{scores['fill_texture']:.2f} times the texture around it > {s.max_fill_texture:.2f} "
                               "(copied glitches or fragments)")
            elif (scores["fill_visible"] >= s.min_fill_visible and s.max_fill_seams > 0
                  and scores.get("fill_seams", 0.0) > s.max_fill_seams):
                reasons.append(f"erase smear: the visible fill ({scores['fill_visible']:.2f} of A's area) shows "
                               f"blocks: {scores['fill_seams']:.2f} times the share of straight horizontal and "
                               f"vertical edges of the frame around it > {s.max_fill_seams:.2f} (a patch fill's "
                               "seams)")
            elif s.max_fill_flat < 1 and scores["fill_flat"] > s.max_fill_flat:
                reasons.append(f"erase smear: a flat piece of the visible fill covers {scores['fill_flat']:.3f} of "
                               f"A's area > {s.max_fill_flat:.3f} (under {s.flat_fill_contrast:.2f} of the contrast "
                               "around it)")
    if s.min_product_area > 0 or s.max_product_area < 1:
        scores["product_area"] = float(np.median([b_s[t].mean() for t in idx]))
        if scores["product_area"] < s.min_product_area:
            reasons.append(f"product too small: B covers {scores['product_area']:.4f} of the frame "
                           f"< {s.min_product_area}")
        elif scores["product_area"] > s.max_product_area:
            reasons.append(f"product too large: B covers {scores['product_area']:.2f} of the frame "
                           f"> {s.max_product_area} (A's slot most likely took in the backdrop)")
    fl = [floating(a_s[t], b_s[t], s) for t in idx]
    fl = [f for f in fl if f is not None]
    if fl and s.max_floating < 1:
        scores["floating"] = float(np.median(fl))
        if scores["floating"] > s.max_floating:
            reasons.append(f"floating: B's base is {scores['floating']:.2f} of A's height above where A stood "
                           f"> {s.max_floating:.2f}")
    return scores, reasons
