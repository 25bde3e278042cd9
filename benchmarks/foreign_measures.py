"""The two measures that keep a product's foreign parts out of B, on the development data.

    python benchmarks/foreign_measures.py photos ../shared/data/pvtt-dev/images
    python benchmarks/foreign_measures.py clips WORKSPACE

- ``photos``: every product photo (``*/*_source.*``) cut out by the classical cutter at its own size and at copies
  resized to a long side of 500 and 2,000 px; for the cuts on a plain background, ``smooth_base`` (the share of the
  cut's lower outline that runs through smooth shading: :func:`pvtt.cutout.smooth_base`, what
  ``cutout.max_smooth_base`` thresholds), else why the photo was rejected before it.
- ``clips``: every curated clip of a built workspace, on the frames ``video_cutout`` samples: the largest lift of a
  piece of the mask hanging above the rest (:func:`pvtt.stages.product.piece_lift`, what ``video_cutout.max_piece_lift``
  thresholds), how many frames exceed the default limit, and the lifts above 0.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from pvtt.config import VideoCutoutSettings
from pvtt.cutout import CutoutSettings, make_cutter
from pvtt.errors import RejectItem
from pvtt.media.image import load_image_rgba
from pvtt.types import ProductImage


def photos(folder: Path) -> None:
    limit = CutoutSettings().max_smooth_base
    cutter = make_cutter(CutoutSettings(reject_low_confidence=False))
    for path in sorted(folder.glob("*/*_source.*")):
        product_id = path.name.split("_")[0]
        rgba = load_image_rgba(path)
        line = f"{product_id:8}"
        for side in (None, 500, 2000):
            image = rgba
            if side is not None:
                scale = side / max(rgba.shape[:2])
                image = cv2.resize(rgba, (round(rgba.shape[1] * scale), round(rgba.shape[0] * scale)),
                                   interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            label = f"{max(rgba.shape[:2])} px (own)" if side is None else f"{side} px"
            try:
                cut = cutter.cut_out(ProductImage(product_id, image))
            except RejectItem as exc:
                line += f"  {label}: rejected ({str(exc)[:60]})"
                break
            if "smooth_base" not in cut.measures:
                line += f"  {label}: not measured ({cut.notes[:50]})"
                break
            value = cut.measures["smooth_base"]
            line += f"  {label}: {value:.3f}{' > limit' if value > limit else ''}"
        print(line, flush=True)


def clips(workspace: Path) -> None:
    from pvtt import artifacts
    from pvtt.items import collect_clips
    from pvtt.stages.product import _pieces, _sample_indices, piece_lift
    from pvtt.store import Workspace
    from pvtt.types import Status

    settings = VideoCutoutSettings()
    ws = Workspace(workspace)
    for clip in collect_clips(ws):
        record = ws.read_record("curate", clip.id)
        if record is None or record.status is not Status.DONE:
            continue
        masks = np.asarray(artifacts.masks(ws, clip.id).data, bool)
        lifts = np.array([piece_lift(_pieces(masks[t])[0]) for t in _sample_indices(len(masks), settings.frames_per_clip)])
        over = int((lifts > settings.max_piece_lift).sum())
        print(f"{clip.id:18} largest lift {lifts.max():.2f}, {over}/{len(lifts)} frames > {settings.max_piece_lift}, "
              f"lifts above 0: {np.round(np.sort(lifts[lifts > 0]), 2).tolist()}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["photos", "clips"])
    ap.add_argument("path", type=Path)
    args = ap.parse_args()
    (photos if args.what == "photos" else clips)(args.path)


if __name__ == "__main__":
    main()
