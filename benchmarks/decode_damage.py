"""Decode damage on a workspace's normalized clips: per clip, the largest share of a frame's rows that are stripes
(:func:`pvtt.curate.metrics.striped_rows`, which ``curate.max_striped_rows`` thresholds), the frames above the
threshold and the seconds the check took.

    python benchmarks/decode_damage.py WORKSPACE [--threshold 0.03]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from pvtt.curate.metrics import decode_damage
from pvtt.media.video import read_video
from pvtt.types import Clip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workspace", type=Path)
    ap.add_argument("--threshold", type=float, default=0.03)
    args = ap.parse_args()
    for path in sorted((args.workspace / "clips").glob("*/*/*.mp4")):
        frames, fps = read_video(path)
        start = time.perf_counter()
        found = decode_damage(Clip(path.stem, frames, fps), args.threshold)
        seconds = time.perf_counter() - start
        print(f"{path.stem:22} {frames.shape[0]:4d} frames {frames.shape[2]}x{frames.shape[1]}  max "
              f"{found['striped_rows_max']:.3f}  damaged {int(found['striped_frames'])}  first "
              f"{int(found['striped_first'])}  {seconds:.2f} s", flush=True)


if __name__ == "__main__":
    main()
