"""Value types shared by every stage.

Plain dataclasses of NumPy arrays and numbers: cheap to pickle (process pools, Ray), easy to
build in tests, no behaviour beyond small conveniences. Frames are always RGB ``uint8`` arrays
of shape ``(T, H, W, 3)``; coordinates are pixels with the origin at the top-left corner and
``x`` to the right.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np


class Status(str, Enum):
    """Outcome of one stage on one item."""

    DONE = "done"
    REJECTED = "rejected"  # the input is valid but does not meet a quality bar; the reason says why
    FAILED = "failed"  # the input is broken or the stage raised; the error says why


@dataclass(frozen=True)
class Resources:
    """What one call of a stage (or backend) needs; runners use it for placement (Ray), the local runner
    runs a stage that needs a GPU in one process."""

    cpus: float = 1.0
    gpus: float = 0.0
    gpu_memory_gb: float = 0.0

    def __or__(self, other: "Resources") -> "Resources":
        """What a call that uses both needs (the larger of each)."""
        return Resources(max(self.cpus, other.cpus), max(self.gpus, other.gpus),
                         max(self.gpu_memory_gb, other.gpu_memory_gb))


@dataclass
class Template:
    """A template video from the catalog (the video showing product A)."""

    id: str
    video: Path
    category: str | None = None
    subcategory: str | None = None
    description: str | None = None
    product_id: str | None = None  # the catalog product shown in this template, if known
    box: tuple[float, float, float, float] | None = None  # annotated first-frame box (x0, y0, x1, y1)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Product:
    """A product photo from the catalog."""

    id: str
    image: Path
    category: str | None = None
    subcategory: str | None = None
    description: str | None = None
    template_id: str | None = None  # the template this photo belongs to, if any (never paired with it)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Shot:
    """A single shot of a template video, in source frames and seconds (end exclusive)."""

    index: int
    start_frame: int
    end_frame: int
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class Box:
    """An axis-aligned box in pixels, ``x1``/``y1`` exclusive."""

    x0: float
    y0: float
    x1: float
    y1: float
    confidence: float = 1.0
    source: str = ""

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)

    def intersection(self, other: Box) -> float:
        """Area shared with ``other``."""
        return (max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
                * max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0)))

    def iou(self, other: Box) -> float:
        """Intersection over union with ``other`` (0.0 when both are empty)."""
        inter = self.intersection(other)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def clip_to(self, width: int, height: int) -> Box:
        """The part of the box inside a ``width`` x ``height`` frame."""
        return Box(
            min(max(self.x0, 0.0), width),
            min(max(self.y0, 0.0), height),
            min(max(self.x1, 0.0), width),
            min(max(self.y1, 0.0), height),
            self.confidence,
            self.source,
        )


@dataclass
class Clip:
    """A normalized single-shot window of a template: constant fps, dims multiples of 16."""

    id: str
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    fps: float
    template_id: str = ""
    shot_index: int = 0
    window_index: int = 0
    start_time: float = 0.0  # seconds into the original template video

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])


@dataclass
class Masks:
    """Per-frame product masks: ``data`` is ``(T, H, W)`` bool."""

    data: np.ndarray
    confidence: np.ndarray | None = None  # (T,) float in [0, 1], per-frame quality estimate

    @property
    def areas(self) -> np.ndarray:
        return self.data.reshape(self.data.shape[0], -1).sum(axis=1)


@dataclass
class Tracks:
    """K points tracked through T frames: ``points`` ``(T, K, 2)`` float32 (x, y), ``visible`` ``(T, K)`` bool."""

    points: np.ndarray
    visible: np.ndarray
    labels: list[str] = field(default_factory=list)  # per-point kind, e.g. "feature" / "extremal"

    @property
    def num_points(self) -> int:
        return int(self.points.shape[1])


@dataclass
class ProductImage:
    """A product photo decoded to RGBA ``uint8`` ``(H, W, 4)``."""

    id: str
    rgba: np.ndarray
    category: str | None = None
    subcategory: str | None = None
    description: str | None = None


@dataclass
class InsertResult:
    """The first-frame edit (what insert hands to propagate): B placed where A was."""

    frame: np.ndarray  # (H, W, 3) uint8, the edited first frame
    alpha: np.ndarray  # (H, W) float32 in [0, 1], B's coverage in that frame
    box: Box  # B's box
    product: np.ndarray | None = None  # (h, w, 4) uint8, B as placed: scaled + harmonised RGBA
    transform: np.ndarray | None = None  # (3, 3), from `product` pixels to frame-0 pixels
    info: dict = field(default_factory=dict)  # e.g. "shadow" (map) + "shadow_transform", "gain", "scale"


@dataclass
class ItemRecord:
    """What a stage did with one item; stored as JSON under ``records/<stage>/<item>.json``."""

    stage: str
    item_id: str
    key: str  # hash of the inputs and the settings that affect this stage's output
    status: Status
    reason: str = ""  # why rejected / the error when failed
    outputs: dict[str, Any] = field(default_factory=dict)  # artifact paths (relative to the workspace) and values
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
