"""Seconds per editing stage on a 101-frame 720p clip (the bracelet case resized to a 720 short side).

    /work/venv/bin/python benchmarks/bench_edit.py [--data DIR] [--frames 101] [--short 720]

Masks and tracks are made here from the case's hand-made frame-0 mask carried by the background's
motion (the bracelets lie still; not timed). Targets: erase < 30 s per clip; insert + propagate + judge < 10 s per pair.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from pvtt.compose import box_of_mask
from pvtt.cutout import make_cutter
from pvtt.erase import make_eraser
from pvtt.erase.classical import background_motion
from pvtt.insert import make_inserter
from pvtt.judge import judge
from pvtt.media.image import load_image_rgba
from pvtt.media.video import read_video
from pvtt.propagate import make_propagator
from pvtt.types import Clip, Masks, ProductImage, Tracks

DEV_DATA = Path(os.environ.get("PVTT_DEV_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "pvtt-dev"))
DEFAULT = DEV_DATA / "cases" / "bracelet_to_necklace"


def masks_and_tracks(frames: np.ndarray, mask0: np.ndarray) -> tuple[np.ndarray, Tracks]:
    """A's masks and tracks for the bracelet case (not timed): the bracelets lie still on the fabric, so the
    frame-0 mask and its corner features are carried by the background's motion (RANSAC homographies chained
    from Lucas-Kanade on the background, as the eraser estimates it). Plain optical flow / free LK tracks
    drift on the thin chains (the transform's points stop agreeing after ~40 frames)."""
    t_count, height, width = frames.shape[:3]
    scale = min(1.0, 360 / min(height, width))
    size = (round(width * scale), round(height * scale))
    grey = [cv2.cvtColor(cv2.resize(f, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY) for f in frames]
    small = cv2.resize(mask0.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    avoid = np.repeat((cv2.dilate(small, np.ones((31, 31), np.uint8)) > 0)[None], t_count, 0)
    chain, _ = background_motion(grey, avoid)  # frame t -> frame 0, work resolution
    to_small = np.diag([size[0] / width, size[1] / height, 1.0])
    to_t = [np.linalg.inv(np.linalg.inv(to_small) @ c @ to_small) for c in chain]  # frame 0 -> frame t, full res
    masks = np.stack([cv2.warpPerspective(mask0.astype(np.uint8), m, (width, height), flags=cv2.INTER_NEAREST) > 0
                      for m in to_t])
    grey0 = cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY)
    p0 = cv2.goodFeaturesToTrack(grey0, 24, 0.01, 10, mask=mask0.astype(np.uint8) * 255).reshape(1, -1, 2)
    points = np.stack([cv2.perspectiveTransform(p0.astype(np.float64), m)[0] for m in to_t]).astype(np.float32)
    return masks, Tracks(points, np.ones(points.shape[:2], bool))


def load_case(data: Path, n_frames: int, short: int) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, Tracks]:
    """The bracelet case at ``data`` as this benchmark times it: ``n_frames`` frames (the clip looped back and forth
    when shorter) resized to a ``short`` short side (multiples of 16), the frame-0 mask, A's masks and tracks.
    Exits (status 0, "skipped") when the case is not there."""
    if not (data / "source_video.mp4").exists():
        print(f"skipped: no bracelet case at {data} (set PVTT_DEV_DATA or --data)")
        sys.exit(0)
    frames, fps = read_video(data / "source_video.mp4", max_frames=n_frames)
    if len(frames) < n_frames:  # loop the clip to the window length
        frames = np.concatenate([frames, frames[::-1]] * (n_frames // len(frames) + 1))[:n_frames]
    h, w = frames.shape[1:3]
    scale = short / min(h, w)
    size = (int(round(w * scale / 16)) * 16, int(round(h * scale / 16)) * 16)
    frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
    m0 = load_image_rgba(data / "bracelet_mask.png")
    m0 = m0[..., :3].max(-1) > 127 if m0[..., 3].min() == 255 else m0[..., 3] > 127
    m0 = cv2.resize(m0.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    masks, tracks = masks_and_tracks(frames, m0)
    return frames, fps, m0, masks, tracks


def make_pair(data: Path, frames: np.ndarray, fps: float, m0: np.ndarray, masks: np.ndarray, tracks: Tracks,
              timed=lambda name, fn: fn()):
    """The bracelet pair as a build makes it from :func:`load_case`'s clip: B's cutout, the erase, the first-frame
    insert and the propagation, each step run through ``timed(name, fn)``. Returns (cutout, erased, propagated)."""
    clip = Clip("bench", frames, fps)
    product = ProductImage("target", load_image_rgba(data / "product_image.jpg"))
    cut = timed("cutout", lambda: make_cutter().cut_out(product))
    erased = timed("erase", lambda: make_eraser().erase(clip, Masks(masks)))
    inserted = timed("insert", lambda: make_inserter(anchor="center").insert(frames[0], erased.frames[0], m0,
                                                                              box_of_mask(m0), cut.rgba))
    result = timed("propagate", lambda: make_propagator().propagate(clip, erased.frames, Masks(masks), tracks,
                                                                     inserted))
    return cut, erased, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--frames", type=int, default=101)
    parser.add_argument("--short", type=int, default=720)
    args = parser.parse_args()
    frames, fps, m0, masks, tracks = load_case(args.data, args.frames, args.short)
    size = (frames.shape[2], frames.shape[1])
    timings = {}

    def timed(name, fn):
        start = time.perf_counter()
        out = fn()
        timings[name] = round(time.perf_counter() - start, 2)
        return out

    cut, erased, result = make_pair(args.data, frames, fps, m0, masks, tracks, timed)
    verdict = timed("judge", lambda: judge(frames, result.frames, Masks(masks), result.masks, cut.rgba, tracks,
                                           background=erased.frames))  # as a build judges: the smear check too
    timings["per_pair"] = round(timings["insert"] + timings["propagate"] + timings["judge"], 2)
    print(json.dumps({"clip": f"{len(frames)}x{size[1]}x{size[0]}", "seconds": timings, "verdict": verdict.verdict,
                      "reasons": verdict.reasons}, indent=1))


if __name__ == "__main__":
    main()
