"""Pixels of the erased backgrounds in a workspace that show shift-map's unwritten value: Lab (0, 0, 0), which is
RGB (0, 64, 194) — a saturated blue that no fill should hold.

Usage: python benchmarks/erase_blue.py WORKSPACE [--every 5]

For every clip that passed curate and whose erase record is done (a clip curate now rejects may keep an erase
record from an earlier build): the mean count per frame (every ``--every``-th frame) of pixels within
30 / 30 / 40 of RGB (0, 64, 194) (the background video is x264-encoded, so the value blurs a little). Before the
fix in ``pvtt.erase.classical.fill_unseen`` (erase stage version 3) 5 of the 19 curated clips of the fifth
development build had them; a background written since has none unless the clip itself shows that colour.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pvtt import artifacts
from pvtt.store import Workspace

BLUE = np.array([0, 64, 194])
TOLERANCE = np.array([30, 30, 40])


def blue_per_frame(ws: Workspace, clip_id: str, every: int) -> float:
    frames = artifacts.background(ws, clip_id)[::every].astype(np.int16)
    near = (np.abs(frames - BLUE) < TOLERANCE).all(axis=-1)
    return float(near.sum() / len(frames))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--every", type=int, default=5)
    args = parser.parse_args()
    ws = Workspace(args.workspace)
    with_blue = 0
    clips = sorted(p.stem for p in (args.workspace / "records" / "erase").glob("*.json"))
    done = [c for c in clips if artifacts.record(ws, "curate", c, required=False) is not None
            and artifacts.record(ws, "erase", c, required=False) is not None]
    for clip_id in done:
        count = blue_per_frame(ws, clip_id, args.every)
        with_blue += count > 0
        print(f"{clip_id:20s} {count:10.0f}")
    print(f"{with_blue} of {len(done)} erased curated clips hold blue pixels")


if __name__ == "__main__":
    main()
