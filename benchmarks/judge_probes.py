"""Judge measures tried against a reviewer's labels and not adopted (BENCHMARKS.md, "fourth build" and
"Blocky fills").

Usage:
  python benchmarks/judge_probes.py holes WORKSPACE LABELS.yaml
  python benchmarks/judge_probes.py zone-edge WORKSPACE LABELS.yaml
  python benchmarks/judge_probes.py backdrop-colour WORKSPACE LABELS.yaml
  python benchmarks/judge_probes.py backdrop-share WORKSPACE LABELS.yaml
  python benchmarks/judge_probes.py base-span WORKSPACE LABELS.yaml

- ``holes``: how much of B's filled silhouette turns into holes after the first frame (pieces of the clip shown
  through B by the warp's occlusion), per pair: the 75th percentile and the maximum over every second frame.
- ``zone-edge``: the remnant score (75th percentile over the judged frames, as the judge computes it) with the
  parts of A's GrabCut extent beyond its mask dropped when they run into the edge of the extent's search zone or
  the frame by more than 25 % of their outline (backdrop cut by the zone, not a part of A that ends inside it),
  next to today's score.
- ``backdrop-colour``: the remnant score with the survivors beside A's mask dropped where their colour is within
  12 Lab of one of the backdrop's 6 main colours (k-means of the ring outside the extent's search zone) and nearer
  to it than to any of A's 6 (k-means of A's masked pixels), next to today's score.
- ``backdrop-share``: on the judged frames, the backdrop that A's extent learns from as a share of its search zone
  (:func:`pvtt.judge.defects.backdrop_share`; ``judge.remnant_min_backdrop`` skips the extent below it): the
  smallest and the median, next to the remnant score.
- ``base-span``: over every ``judge.stride``-th frame, the width of A's lowest tenth over A's width (a base spans
  most of A; the low end of a diagonal cord is a sliver): the median and the smallest, next to the floating score.
"""
from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import yaml
from scipy.ndimage import binary_fill_holes

from pvtt import artifacts
from pvtt.compose import box_diagonal, dilate
from pvtt.config import load_config
from pvtt.items import collect_clips
from pvtt.judge import defects
from pvtt.judge.metrics import _resize
from pvtt.store import Workspace


def holes(masks_b: np.ndarray, short_side: int) -> tuple[float, float]:
    f = short_side / min(masks_b.shape[1:])
    size = (round(masks_b.shape[2] * f), round(masks_b.shape[1] * f))
    share = []
    for t in range(0, len(masks_b), 2):
        m = cv2.resize(masks_b[t].astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        m = cv2.morphologyEx(m.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
        filled = binary_fill_holes(m)
        share.append((filled & ~m).sum() / max(filled.sum(), 1))
    grown = np.maximum(np.array(share) - share[0], 0)
    return float(np.percentile(grown, 75)), float(grown.max())


def _inside(src, edt, bg, mask_a, mask_b, s):
    """What :func:`pvtt.judge.defects.remnant` counts inside A's mask: ``(B's surroundings, the pixels the edit
    kept from the source, the survivors inside the mask)``."""
    b_near = dilate(mask_b, max(2, int(0.02 * box_diagonal(mask_a))))
    s16, e16, g16 = (x.astype(np.int16) for x in (src, edt, bg))
    same = np.abs(e16 - s16).max(2) <= s.remnant_same
    return b_near, same, mask_a & ~b_near & same & (np.abs(s16 - g16).max(2) >= s.remnant_differs)


def remnant_zone_edge(src, edt, bg, mask_a, mask_b, s, touch_max: float = 0.25) -> float | None:
    """:func:`pvtt.judge.defects.remnant` with the extent's parts that the zone's edge cuts left out."""
    area_a = int(mask_a.sum())
    if area_a < 30:
        return None
    diag = box_diagonal(mask_a)
    b_near, same, survived = _inside(src, edt, bg, mask_a, mask_b, s)
    zone = dilate(defects._hull(mask_a), max(3, int(s.remnant_reach * diag)))
    edge = dilate(~zone, 2) & zone
    frame = np.zeros_like(edge)
    frame[:2, :] = frame[-2:, :] = True
    frame[:, :2] = frame[:, -2:] = True
    beyond = defects.a_extent(src, mask_a, s.remnant_reach) & ~mask_a
    count, comp = cv2.connectedComponents(beyond.astype(np.uint8), connectivity=8)
    keep = np.zeros_like(beyond)
    for i in range(1, count):
        part = comp == i
        ring = dilate(part, 1) & ~part & ~mask_a
        cut = (ring & edge).sum() + (part & frame).sum()
        if cut / max(ring.sum() + (part & frame).sum(), 1) <= touch_max:
            keep |= part
    survived |= cv2.morphologyEx((keep & ~b_near & same).astype(np.uint8), cv2.MORPH_OPEN, defects._disk(1)) > 0
    return float(survived.sum()) / area_a


def _centres(lab: np.ndarray, k: int) -> np.ndarray:
    """Up to ``k`` k-means colour centres of ``lab`` pixels (subsampled, seeded)."""
    if len(lab) > 4000:
        lab = lab[np.random.default_rng(0).choice(len(lab), 4000, replace=False)]
    k = max(1, min(k, len(lab)))
    cv2.setRNGSeed(0)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    _, _, centres = cv2.kmeans(np.ascontiguousarray(lab, np.float32), k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    return centres


def looks_like_backdrop(src: np.ndarray, mask_a: np.ndarray, region: np.ndarray, reach: float,
                        distance: float, k: int = 6) -> np.ndarray:
    """The pixels of ``region`` whose colour is within ``distance`` (Lab) of one of the backdrop's main colours
    and nearer to it than to any of A's. The backdrop is the ring just outside a_extent's search zone; A's
    colours are those under its mask. a_extent's GrabCut starts the whole zone as probable A, so a patch of
    the backdrop that differs from the frame further out (sunlit bark, a hand, an older fill) can end up in A's
    extent; a part of A the mask missed looks like A, or at least unlike the backdrop."""
    diag = box_diagonal(mask_a)
    step = max(3, int(reach * diag))
    zone = dilate(defects._hull(mask_a), step)
    ring = dilate(zone, step) & ~zone
    if ring.sum() < 50 or mask_a.sum() < 30:
        return np.zeros(region.shape, bool)
    lab = cv2.cvtColor(src, cv2.COLOR_RGB2LAB).astype(np.float32)
    back, own = _centres(lab[ring], k), _centres(lab[mask_a], k)
    pixels = lab[region]
    d_back = np.linalg.norm(pixels[:, None] - back[None], axis=-1).min(axis=1)
    d_own = np.linalg.norm(pixels[:, None] - own[None], axis=-1).min(axis=1)
    out = np.zeros(region.shape, bool)
    out[region] = (d_back < distance) & (d_back < d_own)
    return out


def remnant_backdrop_colour(src, edt, bg, mask_a, mask_b, s, distance: float = 12.0) -> float | None:
    """:func:`pvtt.judge.defects.remnant` with the survivors beside the mask that look like the backdrop left out."""
    area_a = int(mask_a.sum())
    if area_a < 30:
        return None
    b_near, same, survived = _inside(src, edt, bg, mask_a, mask_b, s)
    beyond = defects.a_extent(src, mask_a, s.remnant_reach) & ~mask_a & ~b_near
    beside = cv2.morphologyEx((beyond & same).astype(np.uint8), cv2.MORPH_OPEN, defects._disk(1)) > 0
    if beside.any():
        beside &= ~looks_like_backdrop(src, mask_a, beside, s.remnant_reach, distance)
    return float((survived | beside).sum()) / area_a


def base_span(mask_a: np.ndarray) -> float:
    """The width of A's bottom band (its lowest tenth) over A's width: a base (a vase, a box) spans most of A, the low
    end of a diagonal cord a sliver."""
    ys, xs = np.nonzero(mask_a)
    if len(ys) == 0:
        return float("nan")
    a_height = ys.max() - ys.min() + 1
    low = xs[ys >= ys.max() - max(2, a_height // 10)]
    return float((low.max() - low.min() + 1) / (xs.max() - xs.min() + 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("probe", choices=["holes", "zone-edge", "backdrop-colour", "backdrop-share", "base-span"])
    ap.add_argument("workspace")
    ap.add_argument("labels")
    args = ap.parse_args()
    ws = Workspace(args.workspace)
    s = load_config(None, []).judge
    labels = yaml.safe_load(open(args.labels))
    pairs = {p["pair_id"]: p for p in json.loads((ws.root / "pairs.json").read_text())}
    clips = {c.id: c for c in collect_clips(ws)}
    for pair_id, seen in sorted(labels.items()):
        if pair_id not in pairs:
            continue
        try:
            edited, masks_b = artifacts.edited(ws, pair_id), np.asarray(artifacts.masks_b(ws, pair_id), bool)
        except Exception:  # noqa: BLE001  (no edited clip in this workspace)
            continue
        head = f"{pair_id:34} {str(seen or ['clean']):34}"
        if args.probe == "base-span":
            clip = clips[pairs[pair_id]["clip_id"]]
            masks_a = np.asarray(artifacts.masks(ws, clip.id).data, bool)
            idx = range(0, len(masks_b), s.stride)
            spans = [base_span(masks_a[t]) for t in idx]
            fl = [defects.floating(masks_a[t], masks_b[t], s) for t in idx]
            fl = [f for f in fl if f is not None]
            print(f"{head} base span median {np.nanmedian(spans):.3f} min {np.nanmin(spans):.3f}, floating "
                  f"{np.median(fl) if fl else float('nan'):.3f}", flush=True)
            continue
        if args.probe == "holes":
            p75, top = holes(masks_b, s.work_short_side)
            print(f"{head} holes p75 {p75:.3f} max {top:.3f}", flush=True)
            continue
        clip = clips[pairs[pair_id]["clip_id"]]
        src, bg = clip.load(ws).frames, artifacts.background(ws, clip.id)
        masks_a = np.asarray(artifacts.masks(ws, clip.id).data, bool)
        count, height, width = src.shape[:3]
        scale = min(1.0, s.work_short_side / min(height, width))
        size = (round(width * scale), round(height * scale))
        idx = list(range(0, count, s.stride))
        frames = sorted({idx[int(round(i))] for i in np.linspace(0, len(idx) - 1, min(len(idx), s.remnant_frames))})
        today, edged, shares = [], [], []
        for t in frames:
            S, E, G = (_resize(np.asarray(x[t]), size) for x in (src, edited, bg))
            A, B = _resize(masks_a[t], size, True), _resize(masks_b[t], size, True)
            today.append(defects.remnant(S, E, G, A, B, s))
            if args.probe == "backdrop-share":
                shares.append(defects.backdrop_share(A, s.remnant_reach) if A.sum() >= 30 else float("nan"))
                continue
            probe = remnant_zone_edge if args.probe == "zone-edge" else remnant_backdrop_colour
            edged.append(probe(S, E, G, A, B, s))
        if args.probe == "backdrop-share":
            score = np.percentile([x for x in today if x is not None], 75) if any(x is not None for x in today) \
                else float("nan")
            print(f"{head} backdrop share min {np.nanmin(shares):.3f} median {np.nanmedian(shares):.3f}, "
                  f"remnant {score:.3f}", flush=True)
            continue
        p75 = [np.percentile([x for x in r if x is not None], 75) if any(x is not None for x in r) else float("nan")
               for r in (today, edged)]
        what = "zone edge left out" if args.probe == "zone-edge" else "backdrop colours left out"
        print(f"{head} remnant today {p75[0]:.3f}, {what} {p75[1]:.3f}", flush=True)


if __name__ == "__main__":
    main()
