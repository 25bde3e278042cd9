"""Seconds per editing stage on a 101-frame 720p clip (the bracelet case resized to a 720 short side).

    /work/venv/bin/python benchmarks/bench_edit.py [--data DIR] [--frames 101] [--short 720]

Masks and tracks are made here with plain optical flow from the case's hand-made frame-0 mask (not
timed). Targets: erase < 30 s per clip; insert + propagate + judge < 10 s per pair.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from pvtt.cutout import make_cutter
from pvtt.erase import make_eraser
from pvtt.insert import make_inserter
from pvtt.judge import judge
from pvtt.media.image import load_image_rgba
from pvtt.media.video import read_video
from pvtt.propagate import make_propagator
from pvtt.propagate.controls import box_of_mask
from pvtt.types import Clip, Masks, ProductImage, Tracks

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "pvtt-dev" / "cases" / "bracelet_to_necklace"


def masks_and_tracks(frames: np.ndarray, mask0: np.ndarray) -> tuple[np.ndarray, Tracks]:
    t_count, height, width = frames.shape[:3]
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    gx, gy = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    masks = np.zeros((t_count, height, width), bool)
    masks[0] = mask0
    for t in range(1, t_count):
        flow = dis.calc(grey[t], grey[t - 1], None)
        masks[t] = cv2.remap(masks[t - 1].astype(np.uint8), gx + flow[..., 0], gy + flow[..., 1],
                             cv2.INTER_NEAREST) > 0
    p0 = cv2.goodFeaturesToTrack(grey[0], 24, 0.01, 10, mask=mask0.astype(np.uint8) * 255).reshape(-1, 2)
    points = np.zeros((t_count, len(p0), 2), np.float32)
    visible = np.ones((t_count, len(p0)), bool)
    points[0] = p0
    for t in range(1, t_count):
        nxt, st, _ = cv2.calcOpticalFlowPyrLK(grey[t - 1], grey[t], points[t - 1].reshape(-1, 1, 2), None)
        points[t], visible[t] = nxt.reshape(-1, 2), visible[t - 1] & (st.ravel() == 1)
    return masks, Tracks(points, visible)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--frames", type=int, default=101)
    parser.add_argument("--short", type=int, default=720)
    args = parser.parse_args()
    frames, fps = read_video(args.data / "source_video.mp4", max_frames=args.frames)
    if len(frames) < args.frames:  # loop the clip to the window length
        frames = np.concatenate([frames, frames[::-1]] * (args.frames // len(frames) + 1))[: args.frames]
    h, w = frames.shape[1:3]
    scale = args.short / min(h, w)
    size = (int(round(w * scale / 16)) * 16, int(round(h * scale / 16)) * 16)
    frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
    m0 = load_image_rgba(args.data / "bracelet_mask.png")
    m0 = m0[..., :3].max(-1) > 127 if m0[..., 3].min() == 255 else m0[..., 3] > 127
    m0 = cv2.resize(m0.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    masks, tracks = masks_and_tracks(frames, m0)
    clip = Clip("bench", frames, fps)
    product = ProductImage("target", load_image_rgba(args.data / "product_image.jpg"))
    timings = {}

    def timed(name, fn):
        start = time.perf_counter()
        out = fn()
        timings[name] = round(time.perf_counter() - start, 2)
        return out

    cut = timed("cutout", lambda: make_cutter().cut_out(product))
    erased = timed("erase", lambda: make_eraser().erase(clip, Masks(masks)))
    inserted = timed("insert", lambda: make_inserter(anchor="center").insert(frames[0], erased.frames[0], m0,
                                                                              box_of_mask(m0), cut.rgba))
    result = timed("propagate", lambda: make_propagator().propagate(clip, erased.frames, Masks(masks), tracks,
                                                                     inserted))
    verdict = timed("judge", lambda: judge(frames, result.frames, Masks(masks), result.masks, cut.rgba, tracks))
    timings["per_pair"] = round(timings["insert"] + timings["propagate"] + timings["judge"], 2)
    print(json.dumps({"clip": f"{len(frames)}x{size[1]}x{size[0]}", "seconds": timings, "verdict": verdict.verdict,
                      "reasons": verdict.reasons}, indent=1))


if __name__ == "__main__":
    main()
