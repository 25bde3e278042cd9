"""FLOPs of pvtt's SAM2 segment call (SAM2.1-hiera-large at full size, random weights), counted on the CPU, to turn
the H200's measured seconds into achieved TFLOP/s.

    python benchmarks/sam2_flops.py --clip gpucat/ELEC003-s00-w00.mp4 --frames 78 --seconds 0.991 1.136 1.695

The count does not depend on the device or on compilation (the same matmuls, convolutions and attention run), so
it is taken with ``torch.utils.flop_counter.FlopCounterMode`` around the eager ``Sam2Segmenter.segment`` in
float32 on the CPU — on the first ``--count-frames`` frames twice (two lengths), the per-frame cost from their
difference (SAM2's memory holds 7 frames, so after the first few every frame costs the same) and extrapolated to
``--frames``. ``--seconds``: the segment call's measured wall seconds for ``--frames`` frames (the BENCHMARKS
table's eager, compiled and reduce-overhead rows); printed as TFLOP/s and as a share of the H200's ~790 bf16.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))
import full_size  # noqa: E402

from pvtt.media.video import read_video  # noqa: E402
from pvtt.segment.sam2 import Sam2Segmenter  # noqa: E402
from pvtt.types import Box, Clip  # noqa: E402

PEAK_BF16 = 790e12


def count(seg: Sam2Segmenter, frames, box: Box) -> float:
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        seg.segment(Clip("clip", frames, 20.0), box)
    return float(counter.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", required=True)
    parser.add_argument("--box", type=float, nargs=4, default=[0.25, 0.40, 0.81, 1.00])
    parser.add_argument("--frames", type=int, default=78, help="frames the measured seconds are for")
    parser.add_argument("--count-frames", type=int, nargs=2, default=[10, 18], help="the two lengths counted")
    parser.add_argument("--seconds", type=float, nargs="*", default=[], help="measured seconds of a segment call")
    args = parser.parse_args()
    frames, _ = read_video(args.clip)
    h, w = frames.shape[1:3]
    x0, y0, x1, y1 = args.box
    box = Box(x0 * w, y0 * h, x1 * w, y1 * h)
    seg = Sam2Segmenter(device="cpu", dtype="fp32", batch_size=8, mask_threshold=-1e4)
    full_size.DEV, full_size.DT = "cpu", torch.float32  # the count is the same on any device and dtype
    seg.setup(model=full_size.sam2_video_large())
    short, long = args.count_frames
    t0 = time.perf_counter()
    f_short, f_long = count(seg, frames[:short], box), count(seg, frames[:long], box)
    per_frame = (f_long - f_short) / (long - short)
    total = f_long + (args.frames - long) * per_frame
    print(f"counted {short} and {long} frames in {time.perf_counter() - t0:.0f} s: {f_short / 1e12:.2f} and "
          f"{f_long / 1e12:.2f} TFLOP; {per_frame / 1e12:.3f} TFLOP per frame; {args.frames} frames: "
          f"{total / 1e12:.1f} TFLOP")
    for s in args.seconds:
        print(f"{s:.3f} s for {args.frames} frames: {total / s / 1e12:.0f} TFLOP/s ({total / s / PEAK_BF16:.0%} of "
              f"~790 bf16)")


if __name__ == "__main__":
    main()
