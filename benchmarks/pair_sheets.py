"""Contact sheets of every synthesized pair of a built dataset, kept and rejected apart, for looking at results.

Usage: python benchmarks/pair_sheets.py DATASET OUT_DIR [--per-sheet 4]
       → OUT_DIR/kept_01.png …, OUT_DIR/rejected_01.png …, OUT_DIR/index.txt (pair id → sheet, row)

Each row: the source's first frame, then the edited clip's first, middle and last frames, then a crop of
the edited product region on the first frame (where remnants, smears and cut-out backgrounds show), with the
pair id, the verdict and the judge's reasons written over it. Replace-mode pairs with an edited video only
(pairs rejected before synthesis have nothing to look at).
"""
from __future__ import annotations

import argparse
import json
import re
import textwrap
from pathlib import Path

import cv2
import numpy as np

from pvtt.media import read_video, write_png

TILE = 300


def _rows(dataset: Path) -> list[dict]:
    page = (dataset / "report/index.html").read_text()
    data = re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S).group(1)
    rows = json.loads(data.replace("<\\/", "</"))
    return [r for r in rows if r["files"].get("edited_video") and r["mode"] == "replace"]


def _fit(frame: np.ndarray, width: int = TILE) -> np.ndarray:
    return cv2.resize(frame, (width, int(round(width * frame.shape[0] / frame.shape[1]))), interpolation=cv2.INTER_AREA)


def _crop(frame: np.ndarray, box: list[float] | None, height: int) -> np.ndarray:
    if not box:
        return np.zeros((height, TILE, 3), np.uint8)
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    x0, y0 = int(max(0, x0 - 0.5 * w)), int(max(0, y0 - 0.5 * h))
    x1, y1 = int(min(frame.shape[1], x1 + 0.5 * w)), int(min(frame.shape[0], y1 + 0.5 * h))
    crop = frame[y0:y1, x0:x1]
    if crop.size == 0:
        return np.zeros((height, TILE, 3), np.uint8)
    scale = min(TILE / crop.shape[1], height / crop.shape[0])
    crop = cv2.resize(crop, (max(1, int(crop.shape[1] * scale)), max(1, int(crop.shape[0] * scale))))
    out = np.zeros((height, TILE, 3), np.uint8)
    out[:crop.shape[0], :crop.shape[1]] = crop
    return out


def _row(dataset: Path, r: dict) -> np.ndarray:
    src, _ = read_video(dataset / "report" / r["files"]["source_video"])
    edt, _ = read_video(dataset / "report" / r["files"]["edited_video"])
    mid = len(edt) // 2
    tiles = [_fit(src[0])] + [_fit(edt[i]) for i in (0, mid, len(edt) - 1)]
    height = tiles[0].shape[0]
    tiles.append(_crop(edt[0], r.get("box_b"), height))
    row = np.concatenate(tiles, 1)
    lines = [f"{r['pair_id']}  {r['verdict']}"] + textwrap.wrap("; ".join(r.get("reasons") or []), 120)[:3]
    for n, line in enumerate(lines):
        y = 18 + 18 * n
        cv2.putText(row, line, (4, y), 0, 0.5, (0, 0, 0), 3)
        cv2.putText(row, line, (4, y), 0, 0.5, (255, 255, 0), 1)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--per-sheet", type=int, default=4)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = _rows(args.dataset)
    index = []
    for verdict in ("keep", "reject"):
        sel = sorted((r for r in rows if r["verdict"] == verdict), key=lambda r: r["pair_id"])
        for start in range(0, len(sel), args.per_sheet):
            chunk = sel[start:start + args.per_sheet]
            tiles = [_row(args.dataset, r) for r in chunk]
            width = max(t.shape[1] for t in tiles)
            tiles = [np.pad(t, ((0, 4), (0, width - t.shape[1]), (0, 0))) for t in tiles]
            name = f"{'kept' if verdict == 'keep' else 'rejected'}_{start // args.per_sheet + 1:02d}.png"
            write_png(args.out / name, np.concatenate(tiles, 0))
            index += [f"{r['pair_id']}\t{name}\t{n + 1}" for n, r in enumerate(chunk)]
    (args.out / "index.txt").write_text("\n".join(index) + "\n")
    kept = sum(r["verdict"] == "keep" for r in rows)
    print(f"{len(rows)} pairs with an edited video: {kept} kept, {len(rows) - kept} rejected → {args.out}")


if __name__ == "__main__":
    main()
