"""What the judge of the bench_edit bracelet pair costs, against the baselines it replaced, in one run:

1. its wide dilations by OpenCV's elliptic kernel (as up to 2026-12-05) against `pvtt.compose.dilate` now (a distance
   transform from DISTANCE_DILATE_MIN px on), A's extents found afresh for both;
2. the first pair of a clip against the next (`pvtt.judge.defects.a_extent` remembers A's extent per source frame
   and mask, which every pair of a clip shares): the same pair judged with the remembered extents dropped, then kept.

    python benchmarks/judge_cost.py [--data DIR] [--frames 101] [--short 720] [--repeats 2]

The pair is made by ``bench_edit.make_pair`` (cutout, erase, insert, propagate; not timed) and judged as a build judges
it (with the erased background: the smear check runs too). Prints each judge's wall seconds (the best of
``--repeats``), the verdicts and the largest difference between the scores. Run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_edit  # noqa: E402  (the same clip, masks and tracks)

import pvtt.judge.defects as defects  # noqa: E402
from pvtt.judge import judge  # noqa: E402
from pvtt.types import Masks  # noqa: E402


def kernel_dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """`pvtt.compose.dilate` as it was: OpenCV's elliptic kernel at every radius."""
    mask = np.asarray(mask, bool)
    if pixels <= 0:
        return mask.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    if mask.ndim == 2:
        return cv2.dilate(mask.astype(np.uint8), kernel) > 0
    return np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in mask])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=bench_edit.DEFAULT)
    parser.add_argument("--frames", type=int, default=101)
    parser.add_argument("--short", type=int, default=720)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    frames, fps, m0, masks, tracks = bench_edit.load_case(args.data, args.frames, args.short)
    cut, erased, result = bench_edit.make_pair(args.data, frames, fps, m0, masks, tracks)

    def run(fresh: bool):
        if fresh:
            defects._extents.clear()
        start = time.perf_counter()
        verdict = judge(frames, result.frames, Masks(masks), result.masks, cut.rgba, tracks, background=erased.frames)
        return time.perf_counter() - start, verdict

    current = defects.dilate
    seconds: dict[str, list[float]] = {"kernel": [], "current": [], "next pair": []}
    verdicts = {}
    for _ in range(args.repeats):
        for name, fn in (("kernel", kernel_dilate), ("current", current)):
            defects.dilate = fn
            try:
                took, verdicts[name] = run(fresh=True)
            finally:
                defects.dilate = current
            seconds[name].append(took)
        took, verdicts["next pair"] = run(fresh=False)  # A's extents from the "current" run just before
        seconds["next pair"].append(took)
    for name in seconds:
        print(f"{name}: judge {min(seconds[name]):.2f} s (best of {args.repeats}), verdict {verdicts[name].verdict}")
    for base, new in (("kernel", "current"), ("current", "next pair")):
        a, b = verdicts[base], verdicts[new]
        diff = max((abs(a.scores[k] - b.scores[k]), k) for k in a.scores if k in b.scores)
        print(f"{new} / {base}: {min(seconds[new]) / min(seconds[base]):.2f}x; largest score difference "
              f"{diff[0]:.4f} ({diff[1]})")


if __name__ == "__main__":
    main()
