"""A CSV or JSONL (or JSON list) manifest, one row per item.

Columns (all optional but ``id`` and at least one of ``video`` / ``image``):
``id, video, image, category, subcategory, description, box``. A row with a ``video`` is a
template; a row with an ``image`` is a product; a row with both is a template shown with its own
product (as in the PVTT benchmark), and the two are never paired. Relative paths are relative to
the manifest's folder. ``box`` is ``x0,y0,x1,y1`` (CSV: a quoted string; JSON: a list).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from pvtt.catalog import Catalog, CatalogBuilder, safe_id
from pvtt.errors import BadInput
from pvtt.types import Product, Template

_COLUMNS = {"id", "video", "image", "category", "subcategory", "description", "box"}


def _rows(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(f"manifest {path} is not UTF-8 text: {exc}") from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None or "id" not in reader.fieldnames:
            raise BadInput(f"manifest {path} needs a header row with an 'id' column, got {reader.fieldnames}")
        unknown = set(reader.fieldnames) - _COLUMNS
        if unknown:
            raise BadInput(f"manifest {path} has unknown columns {sorted(unknown)}; known: {sorted(_COLUMNS)}")
        return list(reader)
    if suffix == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"manifest {path} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
        if not isinstance(rows, list):
            raise BadInput(f"manifest {path} must hold a JSON list of rows")
        return rows
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise BadInput(f"manifest {path} line {lineno} is not valid JSON: {exc.msg}") from None
    return rows


def _parse_box(raw: Any) -> tuple[float, float, float, float] | None:
    if raw in (None, ""):
        return None
    values = raw.split(",") if isinstance(raw, str) else raw
    box = tuple(float(v) for v in values)
    if len(box) != 4 or box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"box must be x0,y0,x1,y1 with x1 > x0 and y1 > y0, got {raw!r}")
    return box  # type: ignore[return-value]


def load(path: Path) -> Catalog:
    root = path.parent
    builder = CatalogBuilder(root, "manifest")
    for n, row in enumerate(_rows(path)):
        where = f"{path.name} row {n + 1}"
        if not isinstance(row, dict) or not str(row.get("id") or "").strip():
            builder.problem("template", f"row-{n + 1}", f"{where} has no id")
            continue
        item_id = safe_id(row["id"])
        video, image = row.get("video") or None, row.get("image") or None
        if not video and not image:
            builder.problem("template", item_id, f"{where} has neither a video nor an image")
            continue
        info = {k: (str(row[k]).strip() or None) if row.get(k) is not None else None
                for k in ("category", "subcategory", "description")}
        if image:
            builder.add_product(
                Product(item_id, root / image, **info, template_id=item_id if video else None), where
            )
        if video:
            try:
                box = _parse_box(row.get("box"))
            except (TypeError, ValueError) as exc:
                builder.problem("template", item_id, f"{where}: {exc}")
                continue
            builder.add_template(
                Template(item_id, root / video, **info, product_id=item_id if image else None, box=box), where
            )
    return builder.catalog
