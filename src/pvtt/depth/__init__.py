"""depth: a per-clip depth video, temporally stable, for depth-conditioned propagation (``vace-depth``).

Interface: :class:`DepthEstimator` — ``estimate(clip) -> (T, H, W) float32`` relative depth
(larger is nearer, as Depth Anything's disparity-like output), with one scale and shift for the
whole clip so frames can be compared. :func:`depth_to_video_frames` turns it into uint8 frames
to store as the clip's ``depth/<clip_id>.mp4`` artifact.

Backends (chosen by ``depth.backend``):

- ``depth-anything``: Depth Anything V2 per frame, batched, then per-frame least-squares alignment
  to a running reference and an EMA (:mod:`pvtt.depth.temporal`). GPU; needs the ``models`` extra.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from pvtt.models import ModelBackend, ModelSettings
from pvtt.registry import Registry
from pvtt.types import Clip

BACKENDS = Registry("depth", {
    "depth-anything": "pvtt.depth.depth_anything:DepthAnythingEstimator",
})


class DepthSettings(ModelSettings, backends=BACKENDS):
    backend: str = "depth-anything"
    """Depth backend. One of: depth-anything."""
    model: str = "depth-anything/Depth-Anything-V2-Large-hf"
    """Depth Anything V2 weights: a local directory or a cached hub id."""
    batch_size: int = Field(16, ge=1)
    """Frames per forward pass."""
    input_size: int = Field(518, ge=14)
    """Short side of the network input (rounded to a multiple of 14)."""
    align: bool = True
    """Align each frame's scale and shift to the clip's running reference."""
    ema: float = Field(0.6, gt=0, le=1)
    """Weight of the current frame in the temporal EMA (1 = no smoothing)."""


class DepthEstimator(ModelBackend):
    """Interface of depth backends."""

    stage = "depth"
    settings_class = DepthSettings

    def estimate(self, clip: Clip) -> np.ndarray:
        """``(T, H, W)`` float32 relative depth of ``clip`` (larger = nearer), one scale for the whole clip."""
        raise NotImplementedError


def make_depth(settings: DepthSettings | None = None, **overrides: Any) -> DepthEstimator:
    return BACKENDS.make(settings or DepthSettings(), **overrides)


def depth_to_video_frames(depth: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """``(T, H, W)`` depth → ``(T, H, W, 3)`` uint8 grey frames, one normalization for the whole clip.

    The ``low``/``high`` percentiles of the clip map to 0/255, so a frame's brightness keeps its
    meaning across the clip (no per-frame stretching that would flicker).
    """
    depth = np.asarray(depth, np.float32)
    if depth.ndim != 3:
        raise ValueError(f"depth must be (T, H, W), got shape {depth.shape}")
    finite = depth[np.isfinite(depth)]
    if finite.size == 0:
        return np.zeros(depth.shape + (3,), np.uint8)
    lo, hi = np.percentile(finite, [low, high])
    scale = 255.0 / max(float(hi - lo), 1e-6)
    grey = np.clip((np.nan_to_num(depth, nan=lo) - lo) * scale, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


__all__ = ["BACKENDS", "DepthEstimator", "DepthSettings", "depth_to_video_frames", "make_depth"]
