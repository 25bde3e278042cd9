"""Where a shot's content starts: the flat frames, fade-in and title card a shot may open with.

Everything after normalize reads a clip from its first frame: locate finds the product on frame 0,
segment grows its masks from that box, the review sheet opens on it. Templates often open with
something else, and :class:`LeadIn` drops it:

- **flat** frames (black or white before a fade): luma standard deviation below ``flat_threshold`` and
  nothing but plain blocks (:data:`FLAT_PLAIN`) — a small product on a white studio backdrop has a low standard
  deviation too, but its edges are not plain;
- the rest of a **fade-in** from black: frames darker than ``fade_ratio`` times the brightest frame
  of the next ``lead_window`` seconds. A caption or logo that stays on screen during the fade keeps
  every frame from being flat, but not from being dark;
- a **title card** (text or a logo over a flat or gradient background): a run of frames that are
  (1) mostly plain — flat or smooth-gradient blocks —, (2) still — the same as the run's first
  frame —, and (3) replaced: ``lead_window`` seconds after the run, most of the frame shows
  something else (a cut the shot detector could not separate, or a dissolve; the frames of a
  dissolve still closer to the card than to what follows go with it). A still product on a plain
  backdrop passes (1) and (2) but not (3) when a hand or the camera starts to move, so it is kept.
  A run that lasts to the end of the shot (a card on its own, cut from the footage) or for a whole
  window is dropped as "still plain": nothing replaces it, so it may also be a product on a plain
  backdrop where nothing moves — a clip that curate would reject as too static.

The tests look ahead, so a shot's first frames are held until its start is known (``lead_window``
seconds of them, or while a still plain run lasts, at most one window of ``max_frames``); after that
frames pass straight through.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

import av
import cv2
import numpy as np

from pvtt.config import NormalizeSettings
from pvtt.media.video import display_size, to_rgb

THUMB_SIDE = 256  # long side (px) of the luma thumbnail the fade and card tests look at (never upscaled)
PLAIN_LAPLACIAN = 3.0  # a 4x4 block of the thumbnail is plain (flat or a linear gradient) when |Laplacian| <= this
FLAT_PLAIN = 0.98  # a flat frame is at least this plain: blank frames 1.0; a bracelet on a white backdrop 0.88-0.95
CHANGE_LEVEL = 4  # a pixel has changed when its luma differs by more than this (compression noise is less)
MIN_FADE_RISE = 8.0  # luma levels a fade must still gain, so the noise of a very dark shot is no fade
MIN_CARD_SECONDS = 0.4  # a card stays up long enough to be read; a moment of stillness is no card


@dataclass
class Look:
    """What the lead-in tests measure on one frame."""

    std: float  # luma standard deviation on a 64x64 sample (the flat test)
    luma: np.ndarray  # uint8 luma thumbnail, long side THUMB_SIDE
    mean: float  # mean luma of the thumbnail
    plain: float  # fraction of the thumbnail's 4x4 blocks that are flat or a smooth gradient


def plain_fraction(luma: np.ndarray) -> float:
    """Fraction of 4x4 blocks whose Laplacian stays within :data:`PLAIN_LAPLACIAN`: flat or gradient areas.

    The Laplacian of a linear gradient is zero, so a gradient background counts as plain; texture,
    shading noise and edges do not.
    """
    lap = np.abs(cv2.Laplacian(luma.astype(np.float32), cv2.CV_32F))
    h, w = lap.shape[0] // 4 * 4, lap.shape[1] // 4 * 4
    if h == 0 or w == 0:
        return 0.0
    blocks = lap[:h, :w].reshape(h // 4, 4, w // 4, 4).max(axis=(1, 3))
    return float((blocks <= PLAIN_LAPLACIAN).mean())


def changed_fraction(a: Look, b: Look) -> float:
    """Fraction of thumbnail pixels whose luma differs by more than :data:`CHANGE_LEVEL` between two frames."""
    return float((np.abs(a.luma.astype(np.int16) - b.luma.astype(np.int16)) > CHANGE_LEVEL).mean())


def difference(a: Look, b: Look) -> float:
    """Mean absolute luma difference of two thumbnails."""
    return float(np.abs(a.luma.astype(np.int16) - b.luma.astype(np.int16)).mean())


def look(frame: av.VideoFrame) -> Look:
    """Measure a decoded frame; both samples are made by libswscale, not from the full-size RGB frame."""
    small = to_rgb(frame, (64, 64), fmt="gray", interpolation="FAST_BILINEAR")
    width, height = display_size(frame)
    scale = min(1.0, THUMB_SIDE / max(width, height))
    luma = to_rgb(frame, (max(4, round(width * scale)), max(4, round(height * scale))), fmt="gray")
    return Look(float(small.std()), luma, float(luma.mean()), plain_fraction(luma))


class LeadIn:
    """Feed a shot's frames in order; get them back, each marked keep or skip, once the start is known.

    ``skipped`` counts the dropped frames by reason ("flat", "fade-in", "title card", "still plain").
    """

    def __init__(self, norm: NormalizeSettings):
        self.norm = norm
        self.window = max(1, round(norm.lead_window * norm.fps))
        self.min_card = max(2, round(MIN_CARD_SECONDS * norm.fps))
        self.started = not (norm.skip_flat_start or norm.skip_fade_in or norm.skip_title_cards)
        self.held: deque[tuple[av.VideoFrame, Look]] = deque()
        self.skipped: Counter[str] = Counter()

    def push(self, frame: av.VideoFrame) -> list[tuple[av.VideoFrame, bool]]:
        """Take the shot's next frame; returns the frames now decided, in order, with keep flags."""
        if self.started:
            return [(frame, True)]
        self.held.append((frame, look(frame)))
        return self._decide(final=False)

    def finish(self) -> list[tuple[av.VideoFrame, bool]]:
        """The shot ended: decide the frames still held."""
        return self._decide(final=True) if not self.started else []

    def _decide(self, final: bool) -> list[tuple[av.VideoFrame, bool]]:
        out: list[tuple[av.VideoFrame, bool]] = []
        while self.held:
            decision = self._head(final)
            if decision is None:  # more frames are needed
                break
            reason, count = decision
            if reason is None:  # content starts here
                self.started = True
                out.extend((frame, True) for frame, _ in self.held)
                self.held.clear()
                break
            self.skipped[reason] += count
            for _ in range(count):
                out.append((self.held.popleft()[0], False))
        return out

    def _head(self, final: bool) -> tuple[str | None, int] | None:
        """``(reason, n)``: the first ``n`` held frames are lead-in; ``(None, 0)``: content starts at the
        first held frame; ``None``: undecided until more frames arrive."""
        s = self.norm
        looks = [item[1] for item in self.held]
        first = looks[0]
        if s.skip_flat_start and first.std < s.flat_threshold and first.plain >= FLAT_PLAIN:
            return "flat", 1
        if s.skip_title_cards and first.plain >= s.card_plain:
            card = self._card(looks, final)
            if card != (None, 0):
                return card
        if s.skip_fade_in:
            if len(looks) <= self.window and not final:
                return None
            ahead = looks[1:1 + self.window]
            peak = max((x.mean for x in ahead), default=first.mean)
            if first.mean < s.fade_ratio * peak and peak - first.mean >= MIN_FADE_RISE:
                return "fade-in", 1
        return None, 0

    def _card(self, looks: list[Look], final: bool) -> tuple[str | None, int] | None:
        """The title-card test on a plain first frame (see the module docstring)."""
        s = self.norm
        first = looks[0]
        run = 1  # frames still showing the first one
        while run < len(looks) and changed_fraction(first, looks[run]) < s.card_change:
            run += 1
        if run == len(looks) and not final and run < s.max_frames:
            return None
        if run < self.min_card:
            return None, 0
        if run >= s.max_frames or run == len(looks):
            return "still plain", run  # a whole window, or the rest of the shot: a card, or nothing moves
        after = run - 1 + self.window  # what replaced the card, once it has settled
        if after >= len(looks) and not final:
            return None
        reference = looks[min(after, len(looks) - 1)]
        if changed_fraction(first, reference) < s.card_replaced:
            return None, 0
        end = run  # a dissolve: frames still closer to the card than to what follows go with it
        while end < len(looks) and difference(looks[end], first) < difference(looks[end], reference):
            end += 1
        return "title card", end
