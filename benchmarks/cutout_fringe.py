"""How much the edited frames differ from the erased background just outside B: the fringe a cutout's soft edge
leaves around the inserted product (a glow of the photo's backdrop), compared between two builds of the same pairs.

Usage: python benchmarks/cutout_fringe.py WORKSPACE_A WORKSPACE_B [--pairs ID ...]

For every pair synthesized in both workspaces (or the ``--pairs`` given): on the edited clip's first and middle
frames, the mean absolute difference of Lab lightness between the edited frame and the clip's erased background
in a ring 2–6 px outside B's visible mask (B's contact shadow also falls there, the same in both builds). Lower
is less fringe. Prints one row per pair and the median and mean of each workspace.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from pvtt import artifacts
from pvtt.store import Workspace


def ring_difference(ws: Workspace, pair_id: str) -> float:
    edited = artifacts.edited(ws, pair_id)
    masks_b = artifacts.masks_b(ws, pair_id)
    background = artifacts.background(ws, pair_id.split("__")[0])
    values = []
    for t in (0, len(edited) // 2):
        m = masks_b[t].astype(np.uint8)
        ring = (cv2.dilate(m, np.ones((13, 13), np.uint8)) > 0) & ~(cv2.dilate(m, np.ones((3, 3), np.uint8)) > 0)
        if not ring.any():
            continue
        le = cv2.cvtColor(edited[t], cv2.COLOR_RGB2Lab)[..., 0].astype(np.float32)
        lb = cv2.cvtColor(background[t], cv2.COLOR_RGB2Lab)[..., 0].astype(np.float32)
        values.append(float(np.abs(le - lb)[ring].mean()))
    return float(np.mean(values)) if values else float("nan")


def synthesized(ws: Workspace) -> set[str]:
    """The pairs with an edited clip (kept or rejected by the judge: a rejected pair keeps its files)."""
    out = set()
    for path in (ws.root / "records" / "synthesize").glob("*.json"):
        record = ws.read_record("synthesize", path.stem)
        if record is not None and (record.outputs or {}).get("edited_path"):
            out.add(path.stem)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workspace_a", type=Path)
    parser.add_argument("workspace_b", type=Path)
    parser.add_argument("--pairs", nargs="*", help="pair ids (default: those with an edited clip in both)")
    args = parser.parse_args()
    a, b = Workspace(args.workspace_a), Workspace(args.workspace_b)
    pairs = sorted(args.pairs or (synthesized(a) & synthesized(b)))
    rows = [(p, ring_difference(a, p), ring_difference(b, p)) for p in pairs]
    for p, x, y in rows:
        print(f"{p:32s} {x:7.2f} {y:7.2f}")
    xs, ys = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    print(f"{len(rows)} pairs; median {np.nanmedian(xs):.2f} -> {np.nanmedian(ys):.2f}; mean {np.nanmean(xs):.2f} -> "
          f"{np.nanmean(ys):.2f}; lower in B for {int((ys < xs).sum())}")


if __name__ == "__main__":
    main()
