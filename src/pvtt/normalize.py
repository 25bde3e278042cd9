"""One decoding pass per template: shot detection, fps resampling, resize, windowing, H.264 encode.

A template video is decoded once. Each frame goes to the shot detector (unless the cuts are
already known from a cached shots record); frames are held back for the detector's lag, then
committed to the current shot, whose resampler picks the frame nearest in time to each output
tick (``start + k / fps``) — this is what makes variable-frame-rate input come out at a constant
rate. Only picked frames are resized and encoded, and with ``windows: first`` nothing after the
first window of a shot is resized or encoded at all.

What a shot opens with before its content — flat frames, the rest of a fade-in, a title card —
is not written (:mod:`pvtt.leadin`): the first window starts on content, and a shot that is only
lead-in gives no clip. Output clips of a shot are written under temporary names and renamed into
place only when the shot ends and passes ``shots.min_duration``; windows shorter than
``normalize.min_frames`` are dropped. Every shot that gives no clip is named in ``dropped`` with why.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av

from pvtt.config import MediaSettings, NormalizeSettings, ShotSettings
from pvtt.errors import BadInput, RejectItem
from pvtt.leadin import LeadIn
from pvtt.media.video import VideoWriter, decode_frames, probe, to_rgb
from pvtt.shots import ShotDetector
from pvtt.store import TMP_MARK
from pvtt.types import Shot


def output_size(width: int, height: int, settings: NormalizeSettings) -> tuple[int, int]:
    """Output ``(width, height)``: short side ``settings.short_side``, both sides multiples of ``settings.multiple``.

    The aspect ratio is kept up to the rounding of the long side (at most ``multiple / 2`` pixels).
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"`width` and `height` must be positive but are {width}x{height}")
    m = settings.multiple
    short = min(width, height)
    target = settings.short_side if settings.allow_upscale else min(settings.short_side, short)
    target = max(m, target // m * m)
    scale = target / short
    if width <= height:
        out_w, out_h = target, max(m, int(round(height * scale / m)) * m)
    else:
        out_w, out_h = max(m, int(round(width * scale / m)) * m), target
    return out_w, out_h


@dataclass
class ClipInfo:
    """A written clip, as stored in the normalize record."""

    clip_id: str
    path: str  # absolute here; the pipeline stores it relative to the workspace
    shot_index: int
    window_index: int
    start_time: float  # seconds into the template video
    num_frames: int
    fps: float
    width: int
    height: int
    lead_in: dict[str, int] = field(default_factory=dict)  # output frames skipped before this window, by reason


@dataclass
class NormalizeResult:
    shots: list[Shot]
    clips: list[ClipInfo]
    source_frames: int
    source_fps: float
    source_size: tuple[int, int]
    rotation: int
    dropped: list[str] = field(default_factory=list)  # why a shot or window gave no clip

    def to_json(self) -> dict:
        return asdict(self)


class _ShotWriter:
    """Receives the output frames of one shot, drops its lead-in and writes its windows."""

    def __init__(self, shot_index: int, start: float, out_dir: Path, clip_prefix: str, size: tuple[int, int],
                 norm: NormalizeSettings, media: MediaSettings):
        self.shot_index, self.start = shot_index, start
        self.out_dir, self.prefix, self.size = out_dir, clip_prefix, size
        self.norm, self.media = norm, media
        self.windows: list[tuple[ClipInfo, Path]] = []  # finished windows, still under temporary names
        self._writer: VideoWriter | None = None
        self._count = 0  # frames in the current window
        self.emitted = 0  # output frames seen in this shot
        self.lead_in = LeadIn(norm)

    @property
    def accepting(self) -> bool:
        """False once the policy wants no more frames from this shot."""
        return not (self.norm.windows == "first" and self.windows)

    def write(self, frame: av.VideoFrame) -> None:
        """Take the shot's next output frame; it is written once the lead-in test has passed it."""
        for decided, keep in self.lead_in.push(frame):
            self._take(decided, keep)

    def _take(self, frame: av.VideoFrame, keep: bool) -> None:
        """Write a decided frame (only counted when it is lead-in or the policy stopped accepting)."""
        if keep and self.accepting:
            if self._writer is None:
                window = len(self.windows)
                final = self.out_dir / f"{self.prefix}-s{self.shot_index:02d}-w{window:02d}.mp4"
                tmp = final.with_name(f"{final.name}{TMP_MARK}{os.getpid()}")
                self._writer = VideoWriter(tmp, self.norm.fps, *self.size, crf=self.media.crf,
                                           preset=self.media.preset)
                self._final, self._tmp, self._window_start = final, tmp, self.start + self.emitted / self.norm.fps
            self._writer.write(to_rgb(frame, self.size))
            self._count += 1
        self.emitted += 1
        if self._count == self.norm.max_frames:
            self._close_window()

    def _close_window(self) -> None:
        assert self._writer is not None
        self._writer.close()
        info = ClipInfo(self._final.stem, str(self._final), self.shot_index, len(self.windows),
                        round(self._window_start, 6), self._count, self.norm.fps, *self.size,
                        lead_in=dict(self.lead_in.skipped) if not self.windows else {})
        self.windows.append((info, self._tmp))
        self._writer, self._count = None, 0

    def finish(self, duration: float, min_duration: float) -> tuple[list[ClipInfo], list[str]]:
        """Close the shot: keep its windows (rename into place) if the shot and each window are long enough.

        Returns the kept clips and why the others (or the whole shot) were dropped.
        """
        for decided, keep in self.lead_in.finish():
            self._take(decided, keep)
        if self._writer is not None:
            self._close_window()
        name = f"shot {self.shot_index}"
        if not self.windows:
            skipped = ", ".join(f"{reason} {n}" for reason, n in self.lead_in.skipped.items())
            return [], [f"{name}: all {self.emitted} frame(s) are lead-in ({skipped})" if self.emitted
                        else f"{name}: no output frame in {duration:.2f}s"]
        if duration < min_duration:
            self.abort()
            return [], [f"{name}: {duration:.2f}s < shots.min_duration {min_duration}s"]
        kept, dropped = [], []
        for info, tmp in self.windows:
            if info.num_frames >= self.norm.min_frames:
                os.replace(tmp, info.path)
                kept.append(info)
                continue
            tmp.unlink(missing_ok=True)
            after = f" after {sum(info.lead_in.values())} lead-in frame(s)" if info.lead_in else ""
            dropped.append(f"{info.clip_id}: {info.num_frames} frame(s){after} < normalize.min_frames "
                           f"{self.norm.min_frames}")
        return kept, dropped

    def abort(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._tmp.unlink(missing_ok=True)
        for _, tmp in self.windows:
            tmp.unlink(missing_ok=True)


class _Resampler:
    """Nearest-in-time frame for each output tick ``start + k / fps`` of one shot."""

    def __init__(self, start: float, fps: float):
        self.start, self.fps = start, fps
        self.k = 0
        self.prev: tuple[float, av.VideoFrame] | None = None

    def _tick(self) -> float:
        return self.start + self.k / self.fps

    def push(self, t: float, frame: av.VideoFrame) -> list[av.VideoFrame]:
        out = []
        if self.prev is not None:
            midpoint = (self.prev[0] + t) / 2.0
            while self._tick() < midpoint:
                out.append(self.prev[1])
                self.k += 1
        self.prev = (t, frame)
        return out

    def finish(self, end: float) -> list[av.VideoFrame]:
        out = []
        if self.prev is not None:
            while self._tick() < end - 1e-9:
                out.append(self.prev[1])
                self.k += 1
        return out


def normalize_video(
    path: str | Path,
    out_dir: str | Path,
    clip_prefix: str,
    shots: ShotSettings,
    norm: NormalizeSettings,
    media: MediaSettings,
    known_cuts: list[int] | None = None,
) -> NormalizeResult:
    """Split ``path`` into shots and write its normalized clips into ``out_dir``.

    ``known_cuts`` (source frame indices) skips detection, e.g. when only normalize settings changed.
    Raises :class:`BadInput` for unreadable video and :class:`RejectItem` when no clip survives.
    """
    info = probe(path, max_pixels=media.max_pixels)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    size = output_size(info.width, info.height, norm)
    detector = ShotDetector(shots, info.fps) if known_cuts is None else None
    lag = detector.lag if detector else 0
    frame_period = 1.0 / (info.fps or 25.0)

    pending_cuts: list[int] = sorted(known_cuts or [])
    held: deque[tuple[int, float, av.VideoFrame]] = deque()  # frames waiting for the detector's lag
    shot_list: list[Shot] = []
    clips: list[ClipInfo] = []
    dropped: list[str] = []
    state: dict = {"writer": None, "resampler": None, "start_frame": 0, "start": 0.0}

    def open_shot(index: int, t: float) -> None:
        state["writer"] = _ShotWriter(len(shot_list), t, out_dir, clip_prefix, size, norm, media)
        state["resampler"] = _Resampler(t, norm.fps)
        state["start_frame"], state["start"] = index, t

    def close_shot(end_frame: int, end: float) -> None:
        writer: _ShotWriter = state["writer"]
        sampler: _Resampler = state["resampler"]
        for frame in sampler.finish(end):
            writer.write(frame)
        shot = Shot(len(shot_list), state["start_frame"], end_frame, state["start"], end)
        kept, why = writer.finish(shot.duration, shots.min_duration)
        clips.extend(kept)
        dropped.extend(why)
        shot_list.append(shot)

    def commit(index: int, t: float, frame: av.VideoFrame) -> None:
        if state["writer"] is None:
            open_shot(index, t)
        elif pending_cuts and pending_cuts[0] <= index:
            while pending_cuts and pending_cuts[0] <= index:
                pending_cuts.pop(0)
            close_shot(index, t)
            open_shot(index, t)
        for out in state["resampler"].push(t, frame):
            state["writer"].write(out)

    count = 0
    last_t = 0.0
    try:
        for index, (t, frame) in enumerate(decode_frames(path)):
            count, last_t = index + 1, t
            if detector is not None:
                pending_cuts.extend(detector.push(index, frame))
                pending_cuts.sort()
            held.append((index, t, frame))
            while len(held) > lag:
                commit(*held.popleft())
        if detector is not None:
            pending_cuts.extend(detector.finish())
            pending_cuts.sort()
        while held:
            commit(*held.popleft())
        if count == 0:
            raise BadInput(f"no frames could be decoded from {path}")
        close_shot(count, last_t + frame_period)
    except BaseException:
        if state["writer"] is not None:
            state["writer"].abort()
        raise

    result = NormalizeResult(shot_list, clips, count, info.fps, (info.width, info.height), info.rotation, dropped)
    if not clips:
        longest = max((s.duration for s in shot_list), default=0.0)
        raise RejectItem(
            f"no usable shot: {len(shot_list)} shot(s) from {count} frame(s), longest {longest:.2f}s "
            f"(need shots.min_duration >= {shots.min_duration}s and normalize.min_frames >= {norm.min_frames}): "
            + "; ".join(dropped)
        )
    return result
