"""Clips and products as items of the later stages, collected from the workspace's records.

Clip-level stages work on :class:`ClipItem`: a normalized clip plus what the catalog says about
its template. Product-level stages work on :class:`ProductItem`. Both are small and picklable; the
frames are read from the workspace by the stage that needs them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


from pvtt.artifacts import record
from pvtt.media.image import load_image_rgba
from pvtt.media.video import read_video
from pvtt.store import Workspace
from pvtt.types import Box, Clip, ProductImage, Status


@dataclass
class ClipItem:
    id: str
    template_id: str
    path: str  # relative to the workspace
    key: str  # the normalize key: a clip's identity for every later cache key
    fps: float
    width: int
    height: int
    num_frames: int
    shot_index: int
    window_index: int
    start_time: float
    category: str | None = None
    subcategory: str | None = None
    description: str | None = None
    product_id: str | None = None  # the catalog product shown in the template (product A)
    hint: tuple[float, float, float, float] | None = None  # catalog box scaled to this clip, first clip only
    extra: dict[str, Any] = field(default_factory=dict)

    def load(self, ws: Workspace) -> Clip:
        frames, _ = read_video(ws.abs(self.path))
        return Clip(self.id, frames, self.fps, self.template_id, self.shot_index, self.window_index, self.start_time)

    @property
    def hint_box(self) -> Box | None:
        return Box(*self.hint, confidence=1.0, source="catalog") if self.hint else None


@dataclass
class ProductItem:
    id: str
    image_path: str  # the RGBA PNG in the workspace
    key: str
    category: str | None = None
    subcategory: str | None = None
    description: str | None = None
    template_id: str | None = None

    def load(self, ws: Workspace) -> ProductImage:
        rgba = load_image_rgba(ws.abs(self.image_path))
        return ProductImage(self.id, rgba, self.category, self.subcategory, self.description)


def _catalog(ws: Workspace) -> dict[str, Any]:
    path = ws.root / "catalog.json"
    return json.loads(path.read_text()) if path.is_file() else {"templates": [], "products": []}


def collect_clips(ws: Workspace, template_ids: list[str] | None = None) -> list[ClipItem]:
    """Every clip of the templates whose normalize record is done, in catalog order."""
    catalog = _catalog(ws)
    items = []
    for template in catalog["templates"]:
        if template_ids is not None and template["id"] not in template_ids:
            continue
        record = ws.read_record("normalize", template["id"])
        if record is None or record.status is not Status.DONE:
            continue
        source_w, source_h = record.outputs.get("source_size", [0, 0])
        for clip in record.outputs["clips"]:
            hint = None
            if template.get("box") and clip["shot_index"] == 0 and clip["window_index"] == 0 and source_w:
                sx, sy = clip["width"] / source_w, clip["height"] / source_h
                x0, y0, x1, y1 = template["box"]
                hint = (x0 * sx, y0 * sy, x1 * sx, y1 * sy)
            items.append(ClipItem(
                id=clip["clip_id"], template_id=template["id"], path=clip["path"], key=record.key,
                fps=clip["fps"], width=clip["width"], height=clip["height"], num_frames=clip["num_frames"],
                shot_index=clip["shot_index"], window_index=clip["window_index"], start_time=clip["start_time"],
                category=template.get("category"), subcategory=template.get("subcategory"),
                description=template.get("description"), product_id=template.get("product_id"), hint=hint,
                extra=template.get("extra") or {},
            ))
    return items


def curated_clips(ws: Workspace, template_id: str) -> list[ClipItem]:
    """The clips of ``template_id`` that passed curation, in shot order: their ``curate`` record is done, and so
    is their ``segment`` record (the masks every user of curated clips reads) — a re-run whose new settings
    reject a clip at segment leaves that clip's older curate record behind, which no longer counts."""
    return [clip for clip in collect_clips(ws, [template_id])
            if all(record(ws, stage, clip.id, required=False) for stage in ("segment", "curate"))]


def collect_products(ws: Workspace) -> list[ProductItem]:
    """Every product whose photo was stored, in catalog order."""
    items = []
    for product in _catalog(ws)["products"]:
        record = ws.read_record("product", product["id"])
        if record is None or record.status is not Status.DONE:
            continue
        items.append(ProductItem(product["id"], record.outputs["image_path"], record.key, product.get("category"),
                                 product.get("subcategory"), product.get("description"), product.get("template_id")))
    return items

