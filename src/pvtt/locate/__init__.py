"""Locate: the product's box on the first frame of a clip.

Backends (chosen by ``locate.backend``):

A clip listed in ``locate.boxes`` (a reviewer's box) takes that box whatever the backend.

- ``auto`` (CPU, no weights): the catalog's annotated box when there is one, else the template's own
  product photo matched against frame 0 (SIFT + ratio test + RANSAC homography), else a saliency map. A lifestyle
  photo's match (no product outline to project) boxes the hull of its matched features, one part of the product or
  the product with the table features matched around it; where that hull and the salient object's box nest, the
  salient box is taken instead.
- ``salient`` (CPU, one 4.6 MB weights file): as ``auto``, with U²-Net-p's salient-object map
  (:mod:`pvtt.models.u2net`) for the saliency step instead of the spectral residual.
- ``detector``: a text-prompted open-vocabulary detector (OWLv2 / Grounding DINO, GPU-friendly).

Every backend returns a :class:`~pvtt.types.Box` in frame-0 pixels with ``confidence`` in [0, 1] and ``source`` in
{"reviewer", "catalog", "photo-outline", "photo-match", "saliency", "saliency-u2netp", "detector"}, or raises
:class:`~pvtt.errors.RejectItem` whose message carries the measured values. ``photo-outline``: the outline of
the photo's product (its alpha, or what stands out from a plain studio backdrop) projected into the frame, the
product's extent; ``photo-match``: a lifestyle photo's match, the hull of the matched features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from pvtt.errors import ConfigError, RejectItem
from pvtt.models import ModelSettings
from pvtt.registry import Backend, Entry, Registry
from pvtt.settings import Settings
from pvtt.types import Box, Clip, ProductImage

BACKENDS = Registry("locate", {"auto": "pvtt.locate.auto:AutoLocator",
                               "salient": "pvtt.locate.salient:SalientLocator",
                               "detector": Entry("pvtt.locate.detector:DetectorLocator", "detector")})


class DetectorSettings(ModelSettings):
    family: Literal["owlv2", "grounding-dino"] = "owlv2"
    """Open-vocabulary detector family."""
    model: str = ""
    """Weights: a local directory or a cached hub id (empty: the family's default)."""
    threshold: float = Field(0.1, ge=0, le=1)
    """Lowest detection score accepted as the product."""
    frame_index: int = Field(0, ge=0)
    """Frame of the clip to detect on."""


class SalientLocateSettings(Settings):
    """The ``salient`` backend: U²-Net-p's weights and where its map is cut."""

    model: str = "u2netp"
    """'u2netp' (rembg's ``u2netp.onnx`` in pvtt's weights folder, ``pvtt models download``) or the path of an .onnx
    file of the same network (:mod:`pvtt.models.u2net`)."""
    threshold: float = Field(0.5, gt=0, lt=1)
    """Saliency above which a pixel belongs to the salient object whose box is the product's."""
    join: float = Field(0.5, gt=0, le=1)
    """Pieces of the cut map whose saliency mass reaches this share of the largest piece's join its box: a set of
    separate pieces (two bracelets, two vases) is one product. On frame 0 of the dev clips the second piece of a set
    weighs 0.74-0.99 of the first, everything else that is salient beside a product 0.23 or less, a dial-logo close-up
    without a product box 0.51 (`benchmarks/bench_locate.py WS --pieces`). 1: the largest piece alone."""


class LocateSettings(Settings, backends=BACKENDS):
    backend_sections = {"detector": ("detector",), "salient": ("salient",)}
    backend: str = "auto"
    """'auto' (catalog box, then photo match, then saliency; CPU), 'salient' (the same, with U²-Net-p's
    salient-object map for the saliency step; CPU, one 4.6 MB weights file) or 'detector'. Against the reviewer boxes
    of 28 dev clips (`benchmarks/bench_locate.py`): auto 23 located, 12 at IoU >= 0.5 (median 0.55); salient 28
    located, 21 (median 0.74)."""
    min_inliers: int = Field(10, ge=4)
    """RANSAC homography inliers needed to accept a product-photo match."""
    ratio: float = Field(0.75, gt=0, lt=1)
    """Lowe ratio test for photo-match descriptors (lower is stricter)."""
    match_long_side: int = Field(960, ge=128)
    """Frame and photo are resized to this long side (px) for matching."""
    min_area: float = Field(0.005, ge=0, le=1)
    """Smallest projected photo area accepted, as a fraction of the frame."""
    max_area: float = Field(0.9, ge=0, le=1)
    """Largest projected photo area accepted, as a fraction of the frame."""
    min_saliency: float = Field(0.15, ge=0, le=1)
    """Saliency contrast (mean inside the box minus mean outside, in [0, 1]) below which the saliency fallback gives
    up."""
    boxes: str = ""
    """A YAML file of reviewer boxes, clip id -> [x0, y0, x1, y1] as fractions of the frame (`python
    benchmarks/bench_locate.py WS --grids DIR` draws frame 0 of every clip on a 10 % grid to read them from). A
    listed clip takes its box (source 'reviewer') before the catalog box, the photo and saliency, whatever the
    backend; null entries and unlisted clips are located as usual. Empty: none."""
    use_photo: bool = True
    """Try matching the template's product photo before falling back to saliency."""
    use_saliency: bool = True
    """Fall back to saliency when there is no hint and no photo match."""
    salient: SalientLocateSettings = Field(default_factory=SalientLocateSettings)
    """Settings of the 'salient' backend."""
    detector: DetectorSettings = Field(default_factory=DetectorSettings)
    """Settings of the 'detector' backend."""


    @field_validator("boxes")
    @classmethod
    def _readable_boxes(cls, path: str) -> str:
        """The reviewer-box file is read when the config loads, so a wrong path or entry stops the run before
        any work (pvtt.config reports it as ``locate.boxes: ...``)."""
        if path:
            try:
                read_reviewer_boxes(path)
            except ConfigError as exc:
                raise ValueError(str(exc).removeprefix("locate.boxes: ")) from None
        return path


class Locator(Backend):
    """Base of locate backends."""

    def locate(self, clip: Clip, product: ProductImage | None, hint: Box | None) -> Box:
        raise NotImplementedError


def hint_box(clip: Clip, hint: Box) -> Box:
    """The given box (a reviewer box, or the catalog's: a box without a source) clipped to the frame, confidence 1;
    :class:`RejectItem` when nothing of it is inside."""
    source = hint.source or "catalog"
    inside = hint.clip_to(clip.width, clip.height)
    if inside.width < 1 or inside.height < 1:
        raise RejectItem(f"product not found: {source} box {tuple(round(v, 1) for v in hint.as_tuple())} "
                         f"is outside the {clip.width}x{clip.height} frame")
    return Box(inside.x0, inside.y0, inside.x1, inside.y1, confidence=1.0, source=source)


def read_reviewer_boxes(path: str | Path) -> dict[str, tuple[float, float, float, float] | None]:
    """The reviewer boxes of ``locate.boxes``: clip id -> (x0, y0, x1, y1) as fractions of the frame, or None.

    :class:`ConfigError` names the file and the entry when the file is missing or an entry is not four
    fractions with x1 > x0 and y1 > y0.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"locate.boxes: no such file {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"locate.boxes: {path} must map clip ids to [x0, y0, x1, y1], got {type(data).__name__}")
    boxes: dict[str, tuple[float, float, float, float] | None] = {}
    for clip_id, raw in data.items():
        if raw is None:
            boxes[str(clip_id)] = None
            continue
        try:
            x0, y0, x1, y1 = (float(v) for v in raw)
        except (TypeError, ValueError):
            raise ConfigError(f"locate.boxes: {path}: {clip_id}: expected [x0, y0, x1, y1], got {raw!r}") from None
        if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
            raise ConfigError(f"locate.boxes: {path}: {clip_id}: {raw!r} is not fractions of the frame with "
                              "0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")
        boxes[str(clip_id)] = (x0, y0, x1, y1)
    return boxes


def make_locator(settings: LocateSettings | None = None, **overrides: Any) -> Locator:
    """The locate backend named by ``settings.backend``."""
    return BACKENDS.make(settings or LocateSettings(), **overrides)


__all__ = ["BACKENDS", "DetectorSettings", "LocateSettings", "Locator", "hint_box", "make_locator", "read_reviewer_boxes"]
