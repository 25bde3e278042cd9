"""Locate: the product's box on the first frame of a clip.

Backends (chosen by ``locate.backend``):

- ``auto`` (CPU, no weights): the catalog's annotated box when there is one, else the template's own
  product photo matched against frame 0 (SIFT + ratio test + RANSAC homography), else a saliency map.
- ``detector``: a text-prompted open-vocabulary detector (OWLv2 / Grounding DINO, GPU-friendly).

Every backend returns a :class:`~pvtt.types.Box` in frame-0 pixels with ``confidence`` in [0, 1] and
``source`` in {"catalog", "photo-match", "saliency", "detector"}, or raises
:class:`~pvtt.errors.RejectItem` whose message carries the measured values.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pvtt.errors import RejectItem
from pvtt.models import ModelSettings
from pvtt.registry import Backend, load_backend
from pvtt.settings import Settings
from pvtt.types import Box, Clip, ProductImage

BACKENDS = {"auto": "pvtt.locate.auto:AutoLocator", "detector": "pvtt.locate.detector:DetectorLocator"}


class DetectorSettings(ModelSettings):
    family: Literal["owlv2", "grounding-dino"] = Field("owlv2", description="Open-vocabulary detector family.")
    model: str = Field("", description="Weights: a local directory or a cached hub id (empty: the family's default).")
    threshold: float = Field(0.1, ge=0, le=1, description="Lowest detection score accepted as the product.")
    frame_index: int = Field(0, ge=0, description="Frame of the clip to detect on.")


class LocateSettings(Settings):
    stage = "locate"
    backends = BACKENDS  # `backend` must name one of these (checked when the config loads)
    backend: str = Field("auto", description="'auto' (catalog box, then photo match, then saliency; CPU) or 'detector'.")
    min_inliers: int = Field(10, ge=4, description="RANSAC homography inliers needed to accept a product-photo match.")
    ratio: float = Field(0.75, gt=0, lt=1, description="Lowe ratio test for photo-match descriptors (lower is stricter).")
    match_long_side: int = Field(960, ge=128, description="Frame and photo are resized to this long side (px) for matching.")
    min_area: float = Field(0.005, ge=0, le=1, description="Smallest projected photo area accepted, as a fraction of the frame.")
    max_area: float = Field(0.9, ge=0, le=1, description="Largest projected photo area accepted, as a fraction of the frame.")
    min_saliency: float = Field(0.15, ge=0, le=1, description="Saliency contrast (mean inside the box minus mean outside, in [0, 1]) below which the saliency fallback gives up.")
    use_photo: bool = Field(True, description="Try matching the template's product photo before falling back to saliency.")
    use_saliency: bool = Field(True, description="Fall back to saliency when there is no hint and no photo match.")
    detector: DetectorSettings = Field(default_factory=DetectorSettings, description="Settings of the 'detector' backend.")


class Locator(Backend):
    """Base of locate backends."""

    def locate(self, clip: Clip, product: ProductImage | None, hint: Box | None) -> Box:
        raise NotImplementedError


def hint_box(clip: Clip, hint: Box) -> Box:
    """The catalog box clipped to the frame; :class:`RejectItem` when nothing of it is inside."""
    inside = hint.clip_to(clip.width, clip.height)
    if inside.width < 1 or inside.height < 1:
        raise RejectItem(f"product not found: catalog box {tuple(round(v, 1) for v in hint.as_tuple())} "
                         f"is outside the {clip.width}x{clip.height} frame")
    return Box(inside.x0, inside.y0, inside.x1, inside.y1, confidence=1.0, source="catalog")


def make_locator(settings: LocateSettings) -> Locator:
    """The locate backend named by ``settings.backend``."""
    if settings.backend == "detector":
        return load_backend("locate", BACKENDS, settings.backend, settings=settings.detector)
    return load_backend("locate", BACKENDS, settings.backend, settings=settings)


__all__ = ["BACKENDS", "DetectorSettings", "LocateSettings", "Locator", "hint_box", "make_locator"]
