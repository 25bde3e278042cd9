"""Locate's first-frame box and segment's first-frame mask against reviewer boxes on the development clips.

    python benchmarks/bench_locate.py WORKSPACE [--labels benchmarks/labels/dev_boxes.yaml] [--segment]
                                      [--sheet OUT.png] [--grids DIR] [--pieces] [--set locate.key=value ...]

WORKSPACE is a prepared workspace (``pvtt prepare``); each labelled clip's frame 0 is located as the locate
stage does (the template's own product photo, then saliency) and compared with the reviewer's box
(``benchmarks/labels/dev_boxes.yaml``): IoU, and the share of the reviewer's box the located box covers.
``--set locate.backend=salient`` locates with U²-Net-p's map for the saliency step. ``--segment`` also cuts
frame 0 as the classical segmenter does (GrabCut in the box, grown past a rough box)
and reports the same for the mask's bounding box. ``--sheet`` draws every clip (reviewer box white, located
box yellow, mask green); ``--grids`` writes frames with 10 % grids for drawing new labels; ``--pieces`` prints, for
every clip, the saliency mass of each piece of U²-Net-p's map of frame 0 over the largest's (what
``locate.salient.join`` compares).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

from pvtt.items import collect_clips, collect_products
from pvtt.config import load_config
from pvtt.errors import RejectItem
from pvtt.locate import make_locator
from pvtt.media import read_video, write_png
from pvtt.segment.classical import first_frame_mask
from pvtt.store import Workspace
from pvtt.types import Box, Clip


def box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def covered(truth, box) -> float:
    """Share of the reviewer's box inside ``box``."""
    ix = max(0.0, min(truth[2], box[2]) - max(truth[0], box[0]))
    iy = max(0.0, min(truth[3], box[3]) - max(truth[1], box[1]))
    return ix * iy / max((truth[2] - truth[0]) * (truth[3] - truth[1]), 1e-9)


def first_mask_box(frame: np.ndarray, box: Box, settings) -> tuple[tuple, np.ndarray] | None:
    """(bounding box as fractions, mask) of frame 0's mask, cut as the classical segmenter cuts frame 0."""
    mask = first_frame_mask(frame, box, settings)
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return (xs.min() / mask.shape[1], ys.min() / mask.shape[0], (xs.max() + 1) / mask.shape[1],
            (ys.max() + 1) / mask.shape[0]), mask


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workspace", type=Path)
    ap.add_argument("--labels", type=Path, default=Path(__file__).parent / "labels/dev_boxes.yaml")
    ap.add_argument("--segment", action="store_true")
    ap.add_argument("--sheet", type=Path)
    ap.add_argument("--grids", type=Path)
    ap.add_argument("--pieces", action="store_true")
    ap.add_argument("--set", action="append", default=[], help="config override, as pvtt build --set")
    args = ap.parse_args()
    cfg = load_config(None, args.set)
    ws = Workspace(args.workspace)
    labels = yaml.safe_load(args.labels.read_text())
    products = {p.id: p for p in collect_products(ws)}
    locator = make_locator(cfg.locate)
    rows, tiles = [], []
    if args.pieces:
        from pvtt.locate.saliency import network_pieces
        from pvtt.models.u2net import load_network

        salient = cfg.locate.salient
        net = load_network(salient.model, key="locate.salient.model")
        for item in sorted(collect_clips(ws), key=lambda c: c.id):
            frame = read_video(ws.abs(item.path), max_frames=1)[0][0]
            masses = " ".join(f"{m:.2f}" for m in network_pieces(net, frame, salient.threshold)[:5])
            print(f"{item.id:18} pieces {masses}   {'(no reviewer box)' if labels.get(item.id) is None else ''}")
    for item in collect_clips(ws):
        if item.id not in labels:
            continue
        frames, _ = read_video(ws.abs(item.path), max_frames=1)
        frame = frames[0]
        h, w = frame.shape[:2]
        if args.grids:
            tiles.append(("grid", item.id, frame, None, None, None))
        truth = labels[item.id]
        if truth is None:
            continue
        photo = products.get(item.product_id)
        t0 = time.perf_counter()
        try:
            box = locator.locate(Clip(item.id, frames, item.fps), photo.load(ws) if photo else None, item.hint_box)
        except RejectItem as exc:
            rows.append((item.id, None, None, None, None, str(exc)[:60], time.perf_counter() - t0))
            continue
        seconds = time.perf_counter() - t0
        frac = (box.x0 / w, box.y0 / h, box.x1 / w, box.y1 / h)
        mask_box = mask = None
        if args.segment:
            cut = first_mask_box(frame, box, cfg.segment)
            if cut is not None:
                mask_box, mask = cut
        rows.append((item.id, box_iou(truth, frac), covered(truth, frac),
                     box_iou(truth, mask_box) if mask_box else None,
                     covered(truth, mask_box) if mask_box else None, f"{box.source} {box.confidence:.2f}", seconds))
        tiles.append(("box", item.id, frame, truth, frac, mask))
    print(f"{'clip':18} {'box IoU':>8} {'covers':>7} {'mask IoU':>9} {'covers':>7}  source")
    for cid, iou, cov, miou, mcov, src, _ in rows:
        f = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        print(f"{cid:18} {f(iou):>8} {f(cov):>7} {f(miou):>9} {f(mcov):>7}  {src}")
    located = [r for r in rows if r[1] is not None]
    ious = np.array([r[1] for r in located])
    print(f"\n{len(rows)} labelled clips, {len(located)} located; box IoU median {np.median(ious):.2f}, "
          f"mean {ious.mean():.2f}, >= 0.5: {(ious >= 0.5).sum()}; covers median "
          f"{np.median([r[2] for r in located]):.2f}; locate s median {np.median([r[6] for r in rows]):.2f}")
    if args.segment:
        m = [r for r in located if r[3] is not None]
        print(f"mask box IoU median {np.median([r[3] for r in m]):.2f}, >= 0.5: {sum(r[3] >= 0.5 for r in m)}; "
              f"covers median {np.median([r[4] for r in m]):.2f}")
    if args.sheet:
        _sheet([t for t in tiles if t[0] == "box"], args.sheet)
    if args.grids:
        args.grids.mkdir(parents=True, exist_ok=True)
        for _, cid, frame, *_rest in (t for t in tiles if t[0] == "grid"):
            write_png(args.grids / f"{cid}.png", _grid(frame))


def _grid(frame: np.ndarray, height: int = 480) -> np.ndarray:
    s = height / frame.shape[0]
    t = cv2.resize(frame, (round(frame.shape[1] * s), height), interpolation=cv2.INTER_AREA)
    h, w = t.shape[:2]
    for i in range(1, 10):
        c = (255, 0, 255) if i == 5 else (0, 255, 255)
        cv2.line(t, (round(w * i / 10), 0), (round(w * i / 10), h), c, 1)
        cv2.line(t, (0, round(h * i / 10)), (w, round(h * i / 10)), c, 1)
    return t


def _sheet(tiles, path: Path, size: int = 300, per_row: int = 5) -> None:
    out = []
    for _, cid, frame, truth, frac, mask in tiles:
        h, w = frame.shape[:2]
        s = size / max(h, w)
        t = cv2.resize(frame, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        th, tw = t.shape[:2]
        if mask is not None:
            m = cv2.resize(mask.astype(np.uint8), (tw, th), interpolation=cv2.INTER_NEAREST) > 0
            t[m] = (0.5 * t[m] + 0.5 * np.array([0, 255, 0])).astype(np.uint8)
        for b, colour in ((truth, (255, 255, 255)), (frac, (255, 255, 0))):
            cv2.rectangle(t, (round(b[0] * tw), round(b[1] * th)), (round(b[2] * tw) - 1, round(b[3] * th) - 1), colour, 2)
        tile = np.zeros((size + 18, size, 3), np.uint8)
        tile[18:18 + th, :tw] = t
        cv2.putText(tile, f"{cid} IoU {box_iou(truth, frac):.2f}", (2, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (255, 255, 255), 1)
        out.append(tile)
    out += [np.zeros_like(out[0])] * (-len(out) % per_row)
    write_png(path, np.vstack([np.hstack(out[i:i + per_row]) for i in range(0, len(out), per_row)]))


if __name__ == "__main__":
    main()
