"""Shot splitting with PySceneDetect, usable on a stream of frames.

:class:`ShotDetector` wraps a PySceneDetect detector so the normalize pass can find cuts while
it decodes — one decode per template instead of two. PySceneDetect may report a cut up to
:attr:`ShotDetector.lag` frames after it happened; the caller holds that many frames back before
committing them to a shot. :func:`detect_shots` is the standalone version for a file.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from scenedetect import AdaptiveDetector, ContentDetector, FrameTimecode

from pvtt.config import ShotSettings
from pvtt.media.video import decode_frames, display_size, to_rgb
from pvtt.types import Shot


class ShotDetector:
    """Feed frames in order with :meth:`push`; cuts come back as frame indices (the first frame of a new shot)."""

    def __init__(self, settings: ShotSettings, fps: float):
        self.settings = settings
        self.fps = fps if fps > 0 else 25.0
        min_len = max(1, int(round(settings.min_gap * self.fps)))
        if settings.detector == "adaptive":
            self._detector = AdaptiveDetector(
                adaptive_threshold=settings.adaptive_threshold,
                min_scene_len=min_len,
                min_content_val=settings.min_content_val,
            )
        else:
            self._detector = ContentDetector(threshold=settings.threshold, min_scene_len=min_len)
        self._last_index = -1

    @property
    def lag(self) -> int:
        """How many frames late a cut may be reported."""
        return int(self._detector.event_buffer_length) + 2

    def _small_bgr(self, frame: av.VideoFrame) -> np.ndarray:
        width, height = display_size(frame)
        target = min(self.settings.detect_width, width)
        return to_rgb(frame, (target, max(1, round(height * target / width))), fmt="bgr24",
                      interpolation="FAST_BILINEAR")

    def push(self, index: int, frame: av.VideoFrame) -> list[int]:
        """Feed decoded frame ``index``; returns cuts confirmed so far (frame indices, possibly in the past)."""
        self._last_index = index
        cuts = self._detector.process_frame(FrameTimecode(index, fps=self.fps), self._small_bgr(frame))
        return [int(c.frame_num) for c in cuts if int(c.frame_num) > 0]

    def finish(self) -> list[int]:
        if self._last_index < 0:
            return []
        cuts = self._detector.post_process(FrameTimecode(self._last_index, fps=self.fps))
        return [int(c.frame_num) for c in cuts if int(c.frame_num) > 0]


def detect_shots(path: str | Path, settings: ShotSettings | None = None) -> list[Shot]:
    """All shots of the video at ``path`` (none dropped; ``min_duration`` is the caller's filter)."""
    from pvtt.media.video import probe

    settings = settings or ShotSettings()
    info = probe(path)
    detector = ShotDetector(settings, info.fps)
    times: list[float] = []
    cuts: list[int] = []
    for index, (t, frame) in enumerate(decode_frames(path)):
        times.append(t)
        cuts.extend(detector.push(index, frame))
    cuts.extend(detector.finish())
    frame_period = 1.0 / (info.fps or 25.0)
    return shots_from_cuts(sorted(set(cuts)), times, frame_period)


def shots_from_cuts(cuts: list[int], times: list[float], frame_period: float) -> list[Shot]:
    """Shots between ``cuts`` (frame indices) over frames with timestamps ``times``."""
    bounds = [0] + [c for c in cuts if 0 < c < len(times)] + [len(times)]
    shots = []
    for n, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        end = times[b] if b < len(times) else times[-1] + frame_period
        shots.append(Shot(n, a, b, times[a], end))
    return shots
