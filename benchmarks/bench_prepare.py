"""Prepare step (decode → shots → resample → resize → encode) against bare PyAV decode+encode.

Usage: python benchmarks/bench_prepare.py [VIDEO] [--repeat N]

Times, in the same run and interleaved so machine noise hits all alike:
  transcode  bare PyAV: decode every frame, encode every frame at the source size (same x264 settings)
  strict     bare PyAV: decode every frame, resize + encode exactly the frames the pipeline outputs
  prepare    pvtt.normalize.normalize_video with the default config, windows=all (every output frame encoded)
and prints the ratios prepare/transcode and prepare/strict. The best of N repeats is reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from pvtt.config import PipelineConfig
from pvtt.media.video import VideoWriter, iter_frames, probe
from pvtt.normalize import normalize_video, output_size

REPO = Path(__file__).resolve().parents[1]
DEFAULT = Path(os.environ.get("PVTT_DEV_DATA", REPO.parent / "shared" / "data" / "pvtt-dev")) / "videos/jewelry/JEW002.mp4"


def transcode(path: Path, out: Path, crf: int, preset: str) -> int:
    info = probe(path)
    width, height = info.width // 2 * 2, info.height // 2 * 2
    with VideoWriter(out, info.fps, width, height, crf=crf, preset=preset) as writer:
        for _, rgb in iter_frames(path):
            writer.write(np.ascontiguousarray(rgb[:height, :width]))
        return writer.frames_written


def strict(path: Path, out: Path, ticks: list[float], size: tuple[int, int], fps: float, crf: int, preset: str) -> int:
    """Decode all, encode the frame nearest each output tick (the pipeline's output, without shot logic)."""
    with VideoWriter(out, fps, *size, crf=crf, preset=preset) as writer:
        k, prev = 0, None
        for t, rgb in iter_frames(path):
            if prev is not None:
                while k < len(ticks) and ticks[k] < (prev[0] + t) / 2:
                    writer.write(cv2.resize(prev[1], size, interpolation=cv2.INTER_AREA))
                    k += 1
            prev = (t, rgb)
        while k < len(ticks):
            writer.write(cv2.resize(prev[1], size, interpolation=cv2.INTER_AREA))
            k += 1
        return writer.frames_written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if not args.video.is_file():
        sys.exit(f"video not found: {args.video} (pass a path or set PVTT_DEV_DATA)")
    config = PipelineConfig()
    config.normalize.windows = "all"
    crf, preset = config.media.crf, config.media.preset
    info = probe(args.video)
    size = output_size(info.width, info.height, config.normalize)
    best = {"transcode": 1e9, "strict": 1e9, "prepare": 1e9}
    frames = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = normalize_video(args.video, tmp / "p", "x", config.shots, config.normalize, config.media)
            best["prepare"] = min(best["prepare"], time.perf_counter() - t0)
            frames["prepare"] = sum(c.num_frames for c in result.clips)
            # the same output ticks as the pipeline, over all shots (dropped shots included, a slight overcount)
            ticks = [s.start + k / config.normalize.fps for s in result.shots
                     for k in range(int(np.ceil((s.end - s.start) * config.normalize.fps - 1e-9)))]
            t0 = time.perf_counter()
            frames["strict"] = strict(args.video, tmp / "s.mp4", ticks, size, config.normalize.fps, crf, preset)
            best["strict"] = min(best["strict"], time.perf_counter() - t0)
            t0 = time.perf_counter()
            frames["transcode"] = transcode(args.video, tmp / "t.mp4", crf, preset)
            best["transcode"] = min(best["transcode"], time.perf_counter() - t0)
    print(f"machine: {platform.node()} {os.cpu_count()} cpus, python {platform.python_version()}, PyAV {av.__version__}")
    print(f"clip: {args.video.name} {info.width}x{info.height} {info.fps:.2f} fps, {info.estimated_frames} frames "
          f"-> {size[0]}x{size[1]} @ {config.normalize.fps:g} fps, x264 crf {crf} preset {preset}, best of {args.repeat}")
    for name in ("transcode", "strict", "prepare"):
        print(f"  {name:<10} {best[name]:7.2f} s  {frames[name]:4d} frames encoded")
    print(f"ratio prepare/transcode = {best['prepare'] / best['transcode']:.2f}  (target <= 1.5)")
    print(f"ratio prepare/strict    = {best['prepare'] / best['strict']:.2f}")


if __name__ == "__main__":
    main()
