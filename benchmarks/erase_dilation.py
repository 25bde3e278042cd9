"""The erase of the bench_edit bracelet clip with the region dilated by the box diagonal (erase versions up to 7) and
as the eraser dilates it now (the box diagonal or 2·sqrt(area), whichever is less), one after the other.

    python benchmarks/erase_dilation.py [--data DIR] [--frames 101] [--short 720]

Prints the erase's wall seconds, the share of the frame the region covers and the never-visible pixels for each.
Run it on an otherwise idle machine: the times are wall seconds. Masks are made as in ``bench_edit.py`` (not timed).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_edit  # noqa: E402  (the same clip and masks)

import pvtt.erase.classical as classical  # noqa: E402
from pvtt.erase import make_eraser  # noqa: E402
from pvtt.types import Clip, Masks  # noqa: E402


def by_diagonal(mask: np.ndarray, dilate: float, shadow: float, max_hole: float = 0.0) -> np.ndarray:
    """The region as erase version 7 made it: dilated by ``dilate`` × the box diagonal (no holes filled)."""
    box = classical._box_of(mask)
    if box is None:
        return mask.copy()
    x0, y0, x1, y1 = box
    out = mask.astype(np.uint8)
    down = int(round(shadow * (y1 - y0)))
    if down > 0:
        out = cv2.dilate(out, np.ones((down + 1, 1), np.uint8), anchor=(0, down))
    r = int(round(dilate * np.hypot(x1 - x0, y1 - y0)))
    if r > 0:
        out = cv2.dilate(out, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return out > 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=bench_edit.DEFAULT)
    parser.add_argument("--frames", type=int, default=101)
    parser.add_argument("--short", type=int, default=720)
    args = parser.parse_args()
    frames, fps, _, masks, _ = bench_edit.load_case(args.data, args.frames, args.short)
    current = classical.dilate_region
    for name, region_fn in (("box diagonal (erase version 7)", by_diagonal), ("current", current)):
        classical.dilate_region = region_fn
        try:
            start = time.perf_counter()
            erased = make_eraser().erase(Clip("bench", frames, fps), Masks(masks))
            seconds = time.perf_counter() - start
        finally:
            classical.dilate_region = current
        print(f"{name}: {seconds:.1f} s, region {erased.region.mean():.4f} of the frame, "
              f"never visible {erased.info['never_visible_pixels']}")


if __name__ == "__main__":
    main()
