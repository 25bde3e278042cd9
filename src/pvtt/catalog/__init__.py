"""Catalog ingest: templates (videos) and products (photos) from three input layouts.

``load_catalog(path)`` tells them apart:

* a directory with ``annotations/metadata.json`` — the PVTT benchmark layout (:mod:`.pvtt_layout`);
* a directory with ``videos/`` and/or ``images/`` subfolders and no metadata — a plain folder
  (:mod:`.folder`): ids from file names, every image a product;
* a ``.csv``, ``.jsonl`` or ``.json`` file — a manifest (:mod:`.manifest`).

Problems with single entries (a missing file, a duplicate id, a record without a path) do not
stop ingest: they are collected as :class:`CatalogProblem` and recorded as failed items, and
the rest of the catalog goes on. A catalog that cannot be read at all (malformed JSON, an
unknown layout) raises :class:`~pvtt.errors.BadInput` naming the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pvtt.errors import BadInput
from pvtt.types import Product, Template

VIDEO_EXTENSIONS = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


@dataclass
class CatalogProblem:
    """An entry that could not be ingested; becomes a failed item of stage ``ingest``."""

    kind: str  # "template" or "product"
    item_id: str
    reason: str


@dataclass
class Catalog:
    root: Path
    layout: str  # "pvtt", "folder" or "manifest"
    templates: list[Template] = field(default_factory=list)
    products: list[Product] = field(default_factory=list)
    problems: list[CatalogProblem] = field(default_factory=list)


_SAFE_ID = re.compile(r"[^A-Za-z0-9._-]+")


def safe_id(raw: object) -> str:
    """An id usable as a file name: runs of other characters become ``_``."""
    text = _SAFE_ID.sub("_", str(raw).strip()).strip("._")
    return text or "_"


class CatalogBuilder:
    """Collects entries, checking ids for duplicates and paths for existence."""

    def __init__(self, root: Path, layout: str):
        self.catalog = Catalog(root=root, layout=layout)
        self._seen: dict[tuple[str, str], str] = {}

    def _claim(self, kind: str, item_id: str, where: str) -> bool:
        first = self._seen.get((kind, item_id))
        if first is not None:
            # recorded under its own name so the kept item's record is not overwritten
            copies = sum(1 for p in self.catalog.problems if p.item_id.startswith(f"{item_id}.duplicate-"))
            self.problem(kind, f"{item_id}.duplicate-{copies + 1}",
                         f"duplicate {kind} id {item_id!r} ({where}; first seen {first}); kept the first")
            return False
        self._seen[(kind, item_id)] = where
        return True

    def problem(self, kind: str, item_id: str, reason: str) -> None:
        self.catalog.problems.append(CatalogProblem(kind, item_id, reason))

    def add_template(self, template: Template, where: str) -> None:
        self._add("template", template, "video", template.video, self.catalog.templates, where)

    def add_product(self, product: Product, where: str) -> None:
        self._add("product", product, "image", product.image, self.catalog.products, where)

    def _add(self, kind: str, entry: Template | Product, what: str, path: Path, into: list, where: str) -> None:
        """``entry`` appended to ``into`` unless its id was seen before or its ``what`` file is missing (a problem)."""
        if not self._claim(kind, entry.id, where):
            return
        if not path.is_file():
            self.problem(kind, entry.id, f"{what} file not found: {path} ({where})")
            return
        into.append(entry)


def detect_layout(path: Path) -> str:
    if path.is_file():
        if path.suffix.lower() in (".csv", ".jsonl", ".json"):
            return "manifest"
        raise BadInput(f"catalog file {path} is not a manifest (.csv, .jsonl or .json)")
    if not path.is_dir():
        raise BadInput(f"catalog not found: {path}")
    if (path / "annotations" / "metadata.json").is_file():
        return "pvtt"
    if (path / "videos").is_dir() or (path / "images").is_dir():
        return "folder"
    raise BadInput(
        f"cannot tell the layout of catalog {path}: expected annotations/metadata.json (PVTT benchmark), "
        "videos/ and images/ subfolders (plain folder), or a .csv/.jsonl manifest file"
    )


def load_catalog(path: str | Path) -> Catalog:
    """Read a catalog in any of the three layouts (see the module docstring)."""
    from pvtt.catalog import folder, manifest, pvtt_layout

    path = Path(path).expanduser().resolve()
    layout = detect_layout(path)
    loader = {"pvtt": pvtt_layout.load, "folder": folder.load, "manifest": manifest.load}[layout]
    return loader(path)
