"""Whether the same frames give the same H.264 file here as on another machine and every time, and what it costs.

Usage: python benchmarks/encode_determinism.py [CLIP.mp4 ...]   (needs only numpy, PyAV and pvtt's src on the path)

Prints md5 prefixes of two generated clips (240x320 and 720x1280, noisy gradients) encoded by
:class:`pvtt.media.video.VideoWriter` (YUV converted in integers, 3 encoder threads) and, the old way, from RGB
through FFmpeg's swscale with libx264's thread count left to "auto"; and of each stream decoded to RGB. Run it on
two machines and compare the lines: the writer's must match, the old way's need not. Then the time of
:func:`pvtt.media.video.rgb_to_yuv420p` against swscale's RGB → YUV of a 720x1280 frame (median of 20).

Then, the same frames encoded again and again in one process: a 64x64 pan of 16 frames, 200 times, with the writer's
libx264 parameters (:data:`pvtt.media.video.ENCODER_PARAMS`: ``asm=avx2`` on a CPU with AVX-512) and with libx264's
defaults: the number of different files each gives. Last, each CLIP given, decoded and encoded 3 times each way:
the number of different files, whether the two ways wrote the same bytes, and the seconds per encode.
"""
from __future__ import annotations

import hashlib
import io
import platform
import time

import av
import numpy as np

from pvtt.media import video
from pvtt.media.video import VideoWriter, read_video, rgb_to_yuv420p
from pvtt.testmedia import panning_frames, textured_background


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()[:10]


def _clip(height: int, width: int, count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:height, :width]
    out = []
    for t in range(count):
        base = np.stack([(xx + 3 * t) % 256, (yy * 2 + t) % 256, ((xx + yy) // 2) % 256], -1).astype(np.float32)
        out.append(np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8))
    return out


def _old_way(frames: list[np.ndarray]) -> bytes:
    buf = io.BytesIO()
    container = av.open(buf, mode="w", format="mp4")
    stream = container.add_stream("libx264", rate=20)
    stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
    stream.options = {"crf": "18", "preset": "medium"}
    for rgb in frames:
        for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return buf.getvalue()


def _writer(frames: list[np.ndarray], path) -> bytes:
    with VideoWriter(path, 20, frames[0].shape[1], frames[0].shape[0], crf=18, preset="medium") as writer:
        for rgb in frames:
            writer.write(rgb)
    return open(path, "rb").read()


def _decoded(data: bytes) -> str:
    container = av.open(io.BytesIO(data))
    frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    container.close()
    return _md5(frames.tobytes())


def _encode(frames: np.ndarray, params: str, path) -> tuple[bytes, float]:
    """``frames`` through the writer with ``params`` as its libx264 parameters: the file's bytes and seconds."""
    saved, video.ENCODER_PARAMS = video.ENCODER_PARAMS, params
    try:
        started = time.perf_counter()
        video.write_video(path, frames, 24.0)
        return open(path, "rb").read(), time.perf_counter() - started
    finally:
        video.ENCODER_PARAMS = saved


def _psnr(data: bytes, frames: np.ndarray) -> float:
    container = av.open(io.BytesIO(data))
    decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    container.close()
    mse = float(np.mean((decoded.astype(np.float64) - frames) ** 2))
    return 10 * np.log10(255 ** 2 / max(mse, 1e-12))


def repeats(tmp, count: int = 200) -> None:
    frames = panning_frames(textured_background(256, 256, 1, detail=0.5), 16, 64, 64)
    for label, params in (("writer's params " + repr(video.ENCODER_PARAMS), video.ENCODER_PARAMS),
                          ("libx264's defaults", "")):
        files = {_md5(_encode(frames, params, tmp / "pan.mp4")[0]) for _ in range(count)}
        print(f"64x64 pan, 16 frames, encoded {count} times, {label}: {len(files)} different file(s)")


def clip_cost(tmp, clips: list[str], count: int = 3) -> None:
    for clip in clips:
        frames, _ = read_video(clip)
        frames = frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]
        row = []
        for params in (video.ENCODER_PARAMS, ""):
            runs = [_encode(frames, params, tmp / "clip.mp4") for _ in range(count)]
            row.append(({_md5(data) for data, _ in runs}, float(np.median([seconds for _, seconds in runs]))))
        (ours, sec), (default, sec0) = row
        print(f"{clip}: {frames.shape[0]} frames {frames.shape[2]}x{frames.shape[1]}, {count} encodes each: writer's "
              f"params {len(ours)} file(s) {sorted(ours)} {sec:.2f} s; defaults {len(default)} file(s) "
              f"{sorted(default)} {sec0:.2f} s")


def main() -> None:
    import sys
    import tempfile
    from pathlib import Path

    print(f"machine: {platform.machine()} {platform.processor() or ''}; PyAV {av.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        for height, width, count in ((240, 320, 12), (720, 1280, 8)):
            frames = _clip(height, width, count)
            ours = _writer(frames, Path(tmp) / "clip.mp4")
            old = _old_way(frames)
            # the container's bytes hold no timestamps or machine strings: equal streams give equal files
            print(f"{height}x{width}: writer file {_md5(ours)} decoded {_decoded(ours)} | "
                  f"old way (swscale, auto threads) file {_md5(old)} decoded {_decoded(old)}")
    frame = _clip(720, 1280, 1)[0]
    for name, convert in (("rgb_to_yuv420p", lambda: rgb_to_yuv420p(frame)),
                          ("swscale", lambda: av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(
                              format="yuv420p"))):
        times = []
        for _ in range(20):
            started = time.perf_counter()
            convert()
            times.append(time.perf_counter() - started)
        print(f"{name:15} {1000 * float(np.median(times)):.1f} ms per 720x1280 frame")
    with tempfile.TemporaryDirectory() as tmp:
        repeats(Path(tmp))
        clip_cost(Path(tmp), sys.argv[1:])


if __name__ == "__main__":
    main()
