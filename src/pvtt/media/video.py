"""Video reading and writing on PyAV (no system ffmpeg).

Every frame that leaves this module is RGB ``uint8`` ``(H, W, 3)`` in *display* orientation:
the rotation a phone stores in the container's display matrix is applied, so a portrait phone
video comes out portrait. Times are seconds from the first decoded frame, taken from the frames'
own timestamps, so variable-frame-rate input is handled by the time-based resampling in
:mod:`pvtt.normalize` rather than by counting frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pvtt.errors import BadInput

DEFAULT_MAX_PIXELS = 4096 * 4096


@dataclass
class VideoInfo:
    """What the container says about the first video stream (display orientation)."""

    path: str
    width: int
    height: int
    fps: float  # average frame rate; VFR input has no single true rate
    duration: float  # seconds; 0.0 when the container does not say
    num_frames: int  # as declared by the container; 0 when unknown (estimate with duration * fps)
    rotation: int  # degrees counter-clockwise applied to decoded frames
    codec: str

    @property
    def estimated_frames(self) -> int:
        return self.num_frames or int(round(self.duration * self.fps))


def _open(path: str | Path) -> av.container.InputContainer:
    path = Path(path)
    if not path.exists():
        raise BadInput(f"video not found: {path}")
    if path.is_dir():
        raise BadInput(f"expected a video file but {path} is a directory")
    if path.stat().st_size == 0:
        raise BadInput(f"video file is empty (0 bytes): {path}")
    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise BadInput(f"not a readable video ({type(exc).__name__}: {exc}): {path}") from None
    if not container.streams.video:
        container.close()
        raise BadInput(f"no video stream in {path}")
    return container


def _rotation_of(stream: av.video.stream.VideoStream, container: av.container.InputContainer) -> int:
    """Rotation of the display matrix, read from the first decoded frame (PyAV exposes it there)."""
    try:
        for frame in container.decode(stream):
            return int(round(frame.rotation or 0)) % 360
    except av.error.FFmpegError:
        return 0
    return 0


def probe(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> VideoInfo:
    """Read the header of ``path``; raise :class:`BadInput` with a readable reason when it is unusable."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width <= 0 or height <= 0:
            raise BadInput(f"video stream has no frame size (corrupt header?): {path}")
        if width * height > max_pixels:
            raise BadInput(
                f"resolution {width}x{height} ({width * height / 1e6:.1f} MP) exceeds the limit of "
                f"{max_pixels / 1e6:.1f} MP (setting media.max_pixels): {path}"
            )
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        if fps <= 0 or not math.isfinite(fps):
            fps = 0.0
        rotation = _rotation_of(stream, container)
        if rotation in (90, 270):
            width, height = height, width
        return VideoInfo(
            path=str(path),
            width=width,
            height=height,
            fps=fps,
            duration=duration,
            num_frames=int(stream.frames or 0),
            rotation=rotation,
            codec=ctx.name,
        )
    finally:
        container.close()


def to_rgb(frame: av.VideoFrame, size: tuple[int, int] | None = None, fmt: str = "rgb24",
           interpolation: str | None = None) -> np.ndarray:
    """A decoded frame as ``uint8`` ``(H, W, 3)`` in display orientation, optionally resized to ``size`` (w, h).

    Resizing happens in libswscale together with the colour conversion, which is several times
    faster than converting at full size and resizing with OpenCV. ``interpolation`` defaults to
    area averaging when shrinking and bicubic when enlarging.
    """
    k = int(round(frame.rotation or 0)) % 360 // 90
    if size is not None:
        width, height = size if k % 2 == 0 else (size[1], size[0])  # swscale works before rotation
        if (width, height) != (frame.width, frame.height):
            if interpolation is None:
                interpolation = "AREA" if width * height < frame.width * frame.height else "BICUBIC"
            frame = frame.reformat(width=width, height=height, format=fmt, interpolation=interpolation)
    array = frame.to_ndarray(format=fmt)
    if k:
        array = np.ascontiguousarray(np.rot90(array, k=k))
    return array


def display_size(frame: av.VideoFrame) -> tuple[int, int]:
    """``(width, height)`` of ``frame`` after its display rotation."""
    rotated = int(round(frame.rotation or 0)) % 180 == 90
    return (frame.height, frame.width) if rotated else (frame.width, frame.height)


def iter_frames(
    path: str | Path,
    start: float | None = None,
    end: float | None = None,
    threads: bool = True,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time, rgb)`` for every frame with ``start <= time < end`` (seconds from the first frame).

    Seeking is frame-accurate: the demuxer seeks to the keyframe before ``start`` and frames
    before ``start`` are decoded and dropped. A decode error in the middle of the file (a truncated
    or corrupt video) raises :class:`BadInput` naming the time where decoding stopped.
    """
    for t, frame in decode_frames(path, start, end, threads):
        yield t, to_rgb(frame)


def decode_frames(
    path: str | Path,
    start: float | None = None,
    end: float | None = None,
    threads: bool = True,
) -> Iterator[tuple[float, av.VideoFrame]]:
    """Like :func:`iter_frames` but yields PyAV frames, to convert (and resize) only the frames that are used."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        if threads:
            stream.thread_type = "AUTO"
        time_base = stream.time_base or Fraction(1, 90000)
        first_pts = stream.start_time if stream.start_time is not None else None
        if start is not None and start > 0:
            offset = first_pts or 0
            container.seek(offset + int(start / time_base), stream=stream, backward=True, any_frame=False)
        last_time = None
        decoded = 0
        eps = 1e-6
        try:
            for frame in container.decode(stream):
                decoded += 1
                pts = frame.pts if frame.pts is not None else frame.dts
                if pts is None:  # no timestamps at all: count frames at the average rate
                    t = 0.0 if last_time is None else last_time + 1.0 / float(stream.average_rate or 25)
                else:
                    if first_pts is None:
                        first_pts = pts
                    t = float((pts - first_pts) * time_base)
                if last_time is not None and t <= last_time:
                    continue  # duplicate or out-of-order timestamp: keep the first frame of a time
                last_time = t
                if start is not None and t < start - eps:
                    continue
                if end is not None and t >= end - eps:
                    break
                yield t, frame
            else:
                if start is None and end is None:
                    _check_complete(stream, decoded, last_time, path)
        except av.error.FFmpegError as exc:
            where = f"{last_time:.2f}s" if last_time is not None else "the first frame"
            raise BadInput(
                f"decoding failed after {where} ({type(exc).__name__}: {exc}); "
                f"the file is truncated or corrupt: {path}"
            ) from None
    finally:
        container.close()


def _check_complete(stream: av.video.stream.VideoStream, decoded: int, last_time: float | None, path) -> None:
    """Raise :class:`BadInput` when a full decode ended well before what the container declares.

    A truncated MP4 whose index survived decodes without any error and just stops early; this is
    the only way to notice it.
    """
    declared = int(stream.frames or 0)
    if declared > 0:
        if decoded < declared - max(2, int(0.02 * declared)):
            raise BadInput(f"video is truncated: decoded {decoded} of the {declared} frames its header declares: {path}")
        return
    if stream.duration is not None and stream.time_base is not None and last_time is not None:
        duration = float(stream.duration * stream.time_base)
        if duration > 1.0 and last_time < 0.9 * duration:
            raise BadInput(
                f"video is truncated: decoding stopped at {last_time:.2f}s of the {duration:.2f}s its header declares: {path}"
            )


def read_video(
    path: str | Path, start: float | None = None, end: float | None = None, max_frames: int | None = None
) -> tuple[np.ndarray, float]:
    """Decode ``path`` to ``(frames (T, H, W, 3) uint8, fps)``; fps is the stream's average rate."""
    frames = []
    for _, rgb in iter_frames(path, start=start, end=end):
        frames.append(rgb)
        if max_frames is not None and len(frames) >= max_frames:
            break
    if not frames:
        raise BadInput(f"no frames could be decoded from {path}")
    container = _open(path)
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
    finally:
        container.close()
    return np.stack(frames), fps


def rgb_to_yuv420p(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB → (H * 3 / 2, W) uint8 planar YUV 4:2:0 (BT.601, limited range: what libx264 is given and
    what decoders assume), in integer arithmetic. FFmpeg's swscale does this conversion with SIMD code whose rounding
    depends on the CPU: the same frames encoded on two machines came out different (a test's tracked points moved by
    a pixel on CI). In integers, the same frames give the same stream on any machine."""
    h, w = rgb.shape[:2]
    out = np.empty((h * 3 // 2, w), np.uint8)
    c = rgb.astype(np.uint16)
    y = c.reshape(-1, 3) @ np.array([66, 129, 25], np.uint16)  # at most 56,100: uint16 holds it
    y += 128
    y >>= 8
    out[:h] = (y + 16).reshape(h, w)
    # chroma of each 2x2 block from its summed RGB (the conversion is linear: the mean of the four pixels' U and V)
    rgb4 = (c[0::2, 0::2] + c[1::2, 0::2] + c[0::2, 1::2] + c[1::2, 1::2]).astype(np.int32)
    uv = ((rgb4.reshape(-1, 3) @ np.array([[-38, 112], [-74, -94], [112, -18]], np.int32) + 512) >> 10) + 128
    out[h:].reshape(-1)[:] = uv.T.ravel()  # the U plane, then the V plane
    return out


ENCODER_THREADS = 3  # fixed: libx264's output depends on its thread count, and "auto" follows the machine's cores


def x264_params(features: dict[str, bool] | None = None) -> str:
    """libx264's parameters for a CPU with ``features`` (numpy's record of this one's by default): ``asm=avx2`` where
    it has AVX-512, else none.

    libx264's AVX-512 code (its macroblock-tree path) gives a different stream for the same frames from one encode to
    the next, even with one thread: a 64x64 pan of 16 frames encoded 200 times in one process gave 3-40 different
    files, and one ``pvtt demo`` background differed in 13 % of its decoded pixels. Its AVX2 code gives one file, and
    the same file as the AVX-512 code wherever that one is steady (a 30-frame dev clip: identical bytes), so capping
    the instruction set changes nothing else (BENCHMARKS.md, "The same frames, the same file, every time").
    ``asm`` names instruction sets that libx264 then uses without checking the CPU, hence only where AVX-512 (and
    with it AVX2) is there; numpy's record of the CPU's features says so on any OS."""
    if features is None:
        try:
            from numpy._core._multiarray_umath import __cpu_features__ as features
        except ImportError:  # numpy < 2
            try:
                from numpy.core._multiarray_umath import __cpu_features__ as features
            except ImportError:
                features = {}
    return "asm=avx2" if features.get("AVX512F") and features.get("AVX2") else ""


ENCODER_PARAMS = x264_params()


def x264_options(crf: int, preset: str) -> dict[str, str]:
    """libx264's options as every pvtt video is written with them: ``crf``, ``preset`` and :data:`ENCODER_PARAMS`."""
    return {"crf": str(crf), "preset": preset, **({"x264-params": ENCODER_PARAMS} if ENCODER_PARAMS else {})}


class VideoWriter:
    """H.264 (libx264, yuv420p) writer; frames are RGB ``uint8`` of a fixed size with even sides.

    ``path`` is written as MP4 whatever its suffix, so atomic writes can use a temporary name. The same frames give
    the same file on any machine and every time: the RGB → YUV conversion is done here in integers
    (:func:`rgb_to_yuv420p`), the encoder runs ``threads`` threads (default :data:`ENCODER_THREADS`), not as many as
    the machine has cores, and with libx264's AVX-512 code left out (:data:`ENCODER_PARAMS`).
    """

    def __init__(
        self,
        path: str | Path,
        fps: float,
        width: int,
        height: int,
        crf: int = 18,
        preset: str = "medium",
        threads: int = ENCODER_THREADS,
    ):
        if width % 2 or height % 2:
            raise ValueError(f"`width` and `height` have to be even for yuv420p but are {width}x{height}")
        if threads < 1:
            raise ValueError(f"`threads` must be at least 1 but is {threads}")
        self.path = Path(path)
        self.width, self.height = width, height
        self._container = av.open(str(self.path), mode="w", format="mp4")
        rate = Fraction(fps).limit_denominator(1001)
        stream = self._container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = x264_options(crf, preset)
        stream.codec_context.thread_count = threads
        self._stream = stream
        self.frames_written = 0

    def write(self, rgb: np.ndarray) -> None:
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise ValueError(
                f"frame must be uint8 of shape {(self.height, self.width, 3)} but is {rgb.dtype} {rgb.shape}"
            )
        frame = av.VideoFrame.from_ndarray(rgb_to_yuv420p(rgb), format="yuv420p")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        if self._container is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_video(path: str | Path, frames: np.ndarray, fps: float, crf: int = 18, preset: str = "medium") -> None:
    """Encode ``frames`` (T, H, W, 3) uint8 to an H.264 MP4 at ``path``."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"`frames` must have shape (T, H, W, 3) but has {frames.shape}")
    with VideoWriter(path, fps, frames.shape[2], frames.shape[1], crf=crf, preset=preset) as writer:
        for rgb in frames:
            writer.write(rgb)
