"""The classical cutout of every product photo of a catalog folder with the outline redrawn
(``cutout.refine_size``) and without: seconds and product area (alpha > 0.5, share of the cut's canvas), and a
side-by-side PNG per photo (over lavender) to look at.

    python benchmarks/cutout_redraw.py ../shared/data/pvtt-dev/images OUT
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pvtt.cutout import CutoutSettings, make_cutter
from pvtt.errors import RejectItem
from pvtt.media.image import load_image_rgba
from pvtt.types import ProductImage

BACKDROP = np.array([180, 160, 210], np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in sorted(args.images.glob("*/*_source.*")):
        product_id = path.name.split("_")[0]
        image = ProductImage(product_id, load_image_rgba(path))
        tiles, line = [], f"{product_id:8}"
        for size in (0, CutoutSettings().refine_size):
            start = time.perf_counter()
            try:
                cut = make_cutter(CutoutSettings(refine_size=size)).cut_out(image)
            except RejectItem as exc:
                line += f"  rejected: {exc}"
                break
            alpha = cut.rgba[..., 3:].astype(np.float32) / 255
            line += f"  refine_size {size}: {time.perf_counter() - start:5.1f} s, area {float((alpha > 0.5).mean()):.4f}"
            tiles.append((cut.rgba[..., :3] * alpha + BACKDROP * (1 - alpha)).astype(np.uint8))
        print(line, flush=True)
        if len(tiles) == 2:
            height = min(t.shape[0] for t in tiles)
            width = max(t.shape[1] for t in tiles)
            tiles = [np.pad(t[:height], ((0, 0), (0, width - t.shape[1]), (0, 0))) for t in tiles]
            Image.fromarray(np.concatenate(tiles, 1)).save(args.out / f"{product_id}.png")


if __name__ == "__main__":
    main()
