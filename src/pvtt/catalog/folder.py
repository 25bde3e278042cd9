"""A plain folder: ``videos/`` and ``images/`` subfolders, no metadata.

Ids come from file names (stems); a file in a subfolder (``videos/shoes/a.mp4``) takes the
subfolder name as its category. Every image is a product and no template owns one.
"""

from __future__ import annotations

from pathlib import Path

from pvtt.catalog import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, Catalog, CatalogBuilder, safe_id
from pvtt.types import Product, Template


def _files(folder: Path, extensions: set[str]) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in extensions)


def _category(folder: Path, path: Path) -> str | None:
    parts = path.relative_to(folder).parts
    return parts[0] if len(parts) > 1 else None


def load(root: Path) -> Catalog:
    builder = CatalogBuilder(root, "folder")
    for path in _files(root / "videos", VIDEO_EXTENSIONS):
        where = str(path.relative_to(root))
        builder.add_template(Template(safe_id(path.stem), path, _category(root / "videos", path)), where)
    for path in _files(root / "images", IMAGE_EXTENSIONS):
        where = str(path.relative_to(root))
        builder.add_product(Product(safe_id(path.stem), path, _category(root / "images", path)), where)
    return builder.catalog
