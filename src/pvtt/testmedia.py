"""Synthetic media with known truth, for the demo and the tests.

Everything is drawn from a seeded generator, so the same arguments give the same pixels. Videos
are written with PyAV directly (timestamps and display rotation under the caller's control), so
tests can produce variable-frame-rate, rotated or odd-sized files.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def textured_background(height: int, width: int, seed: int, detail: float = 0.0) -> np.ndarray:
    """A smooth colourful texture with some shapes: enough structure for optical flow and features.

    ``detail`` adds a static fine grain of that standard deviation (like fabric or wood), so that
    frames look as sharp as real footage to a blur measure.
    """
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(2, height // 24), max(2, width // 24), 3), dtype=np.uint8)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    base = rng.integers(40, 200, size=3)
    image = (0.5 * image + 0.5 * base).astype(np.uint8)
    for _ in range(12):
        color = tuple(int(c) for c in rng.integers(0, 256, size=3))
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        radius = int(rng.integers(max(2, min(height, width) // 30), max(3, min(height, width) // 8)))
        if rng.random() < 0.5:
            cv2.circle(image, center, radius, color, -1, lineType=cv2.LINE_AA)
        else:
            cv2.rectangle(image, center, (center[0] + radius, center[1] + radius // 2), color, -1)
    if detail > 0:
        grain = rng.normal(0.0, detail, size=(height, width, 1))
        image = np.clip(image.astype(np.float32) + grain, 0, 255).astype(np.uint8)
    return image


def panning_frames(background: np.ndarray, num_frames: int, height: int, width: int,
                   velocity: tuple[float, float] = (2.0, 1.0)) -> np.ndarray:
    """``num_frames`` crops of ``background`` moving by ``velocity`` px/frame (a camera pan)."""
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for i in range(num_frames):
        m = np.float32([[1, 0, -velocity[0] * i], [0, 1, -velocity[1] * i]])
        frames[i] = cv2.warpAffine(background, m, (width, height), borderMode=cv2.BORDER_REFLECT)
    return frames


def write_video(path: str | Path, frames: np.ndarray, fps: float = 20.0, times: list[float] | None = None,
                rotation: int = 0, codec: str = "libx264") -> Path:
    """Encode ``frames`` with optional per-frame ``times`` (seconds; variable frame rate) and display rotation.

    libx264 of even-sided frames is given them as :class:`~pvtt.media.video.VideoWriter` gives them (YUV converted in
    integers, its thread count and parameters), so the same frames make the same file on any machine: the demo's
    templates are written here, and a template that differs from machine to machine gives a different demo."""
    from pvtt.media.video import ENCODER_THREADS, rgb_to_yuv420p, x264_options

    path = Path(path)
    height, width = frames.shape[1:3]
    as_writer = codec == "libx264" and not height % 2 and not width % 2
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = x264_options(18, "ultrafast") if as_writer else {"crf": "18", "preset": "ultrafast"}
        if as_writer:
            stream.codec_context.thread_count = ENCODER_THREADS
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb_to_yuv420p(rgb), format="yuv420p") if as_writer else \
                av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            if times is not None:
                frame.pts = int(round(times[i] * 1000))
                frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def multi_shot_video(path: str | Path, shot_lengths: list[int], height: int = 96, width: int = 128,
                     fps: float = 20.0, seed: int = 0) -> Path:
    """A video of hard cuts between unrelated panning scenes; shot ``i`` has ``shot_lengths[i]`` frames."""
    shots = []
    for i, length in enumerate(shot_lengths):
        background = textured_background(height * 2, width * 2, seed * 100 + i)
        shots.append(panning_frames(background, length, height, width, velocity=(1.5, 0.5)))
    return write_video(path, np.concatenate(shots), fps=fps)
