"""The cut's outline over a dark background, with and without `pvtt.cutout.alpha.unmix_edge`.

Usage:
  python benchmarks/cutout_outline.py [PHOTO_DIR ...]   (default: the demo's photos, then ../shared/data/pvtt-dev/images)

A cut's outermost pixels can mix product and backdrop at full opacity: over another background they are a pale line
along a dark product (the demo mug's right side). For each photo on a plain backdrop (busy ones are skipped) the
classical cutout runs twice, with `unmix_edge` off and on, and prints how many pixels it made softer (alpha lower by
more than 0.1, as a share of the cut) and the pale line: the cut composited over black, the mean grey level of its
outline (the opaque pixels within 2 px of the clear ones) minus that of the band 3-6 px further in (positive: the
outline is lighter than the product just inside it).
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

import pvtt.cutout.classical as classical
from pvtt.catalog import IMAGE_EXTENSIONS
from pvtt.cutout import CutoutSettings
from pvtt.demo import PRODUCTS, product_photo
from pvtt.media.image import load_image_rgba
from pvtt.types import ProductImage


def pale_line(rgba: np.ndarray) -> float:
    alpha = rgba[..., 3].astype(np.float32) / 255
    grey = cv2.cvtColor(rgba[..., :3], cv2.COLOR_RGB2GRAY).astype(np.float32) * alpha  # over black
    clear = (alpha <= 0.03).astype(np.uint8)
    near = [cv2.dilate(clear, np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0 for r in (2, 3, 6)]
    outline = near[0] & (alpha > 0.03)
    inside = near[2] & ~near[1]
    return float(grey[outline].mean() - grey[inside].mean()) if outline.any() and inside.any() else 0.0


def main() -> None:
    folders = [Path(p) for p in sys.argv[1:]] or [Path(__file__).resolve().parents[2] / "shared/data/pvtt-dev/images"]
    photos = {f"demo-{name}": product_photo(kind, kind) for kind, (name, *_) in enumerate(PRODUCTS)} \
        if not sys.argv[1:] else {}
    for path in sorted(p for f in folders for p in f.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS):
        photos[path.stem] = load_image_rgba(path)[..., :3]
    unmix = classical.unmix_edge
    cutter = classical.ClassicalCutter(CutoutSettings())

    def cut(rgb: np.ndarray, unmixed: bool):
        classical.unmix_edge = unmix if unmixed else (lambda rgb, alpha: alpha)
        try:
            return cutter.cut_out(ProductImage("photo", np.ascontiguousarray(rgb)))
        finally:
            classical.unmix_edge = unmix

    print(f"{'photo':16} {'softened':>9} {'pale line off':>14} {'on':>6}")
    for name, rgb in photos.items():
        try:
            off_cut = cut(rgb, False)
        except Exception as exc:  # noqa: BLE001  (a photo with no separable product)
            print(f"{name:16} skipped: {exc}")
            continue
        if not off_cut.notes.startswith("plain"):
            print(f"{name:16} skipped: busy background")
            continue
        off, on = off_cut.rgba, cut(rgb, True).rgba
        h, w = min(off.shape[0], on.shape[0]), min(off.shape[1], on.shape[1])
        softened = (on[:h, :w, 3].astype(int) < off[:h, :w, 3].astype(int) - 25).sum() / max(1, (off[..., 3] > 127).sum())
        print(f"{name:16} {softened * 100:8.2f}% {pale_line(off):14.1f} {pale_line(on):6.1f}")


if __name__ == "__main__":
    main()
