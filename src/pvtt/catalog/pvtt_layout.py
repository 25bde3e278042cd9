"""The PVTT benchmark layout: ``annotations/metadata.json`` + ``videos/<cat>/<ID>.mp4`` + ``images/<cat>/<ID>_source.*``.

Each sample becomes a template (its video) and a product (its source product photo, product A
of that template). The template keeps a link to its own product so pairing never pairs them.
An optional first-frame box per sample (``box`` or ``bbox``: ``[x0, y0, x1, y1]`` in pixels of
the original video) is passed on to ``locate``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pvtt.catalog import Catalog, CatalogBuilder, safe_id
from pvtt.errors import BadInput
from pvtt.types import Product, Template


def _box(sample: dict[str, Any]) -> tuple[float, float, float, float] | None:
    raw = sample.get("box", sample.get("bbox"))
    if raw is None:
        return None
    if not (isinstance(raw, (list, tuple)) and len(raw) == 4 and all(isinstance(v, (int, float)) for v in raw)):
        raise ValueError(f"box must be [x0, y0, x1, y1] numbers, got {raw!r}")
    x0, y0, x1, y1 = (float(v) for v in raw)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {raw!r} is empty (need x1 > x0 and y1 > y0)")
    return (x0, y0, x1, y1)


def load(root: Path) -> Catalog:
    meta_path = root / "annotations" / "metadata.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BadInput(f"{meta_path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except UnicodeDecodeError as exc:
        raise BadInput(f"{meta_path} is not UTF-8 text: {exc}") from None
    samples = meta.get("samples") if isinstance(meta, dict) else meta
    if not isinstance(samples, list):
        raise BadInput(f"{meta_path} must hold a list of samples (a top-level list or a 'samples' list)")

    builder = CatalogBuilder(root, "pvtt")
    for n, sample in enumerate(samples):
        where = f"{meta_path.name} sample #{n}"
        if not isinstance(sample, dict) or not sample.get("id"):
            builder.problem("template", f"sample-{n}", f"{where} has no 'id'")
            continue
        item_id = safe_id(sample["id"])
        video_rel = (sample.get("template_video") or {}).get("path")
        product = sample.get("source_product") or {}
        image_rel = product.get("image_path")
        description = product.get("description") or None
        category = sample.get("category") or None
        subcategory = sample.get("subcategory") or None
        extra = {k: sample[k] for k in ("difficulty", "shot_type", "prompts") if k in sample}
        if image_rel:
            builder.add_product(
                Product(item_id, root / image_rel, category, subcategory, description, template_id=item_id), where
            )
        if not video_rel:
            builder.problem("template", item_id, f"{where} has no template_video.path")
            continue
        try:
            box = _box(sample)
        except ValueError as exc:
            builder.problem("template", item_id, f"{where}: {exc}")
            continue
        template = Template(
            item_id,
            root / video_rel,
            category,
            subcategory,
            description,
            product_id=item_id if image_rel else None,
            box=box,
            extra=extra,
        )
        builder.add_template(template, where)
    return builder.catalog
