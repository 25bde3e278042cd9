"""The two measures that keep a product's foreign parts out of B, on the development data.

    python benchmarks/foreign_measures.py photos ../shared/data/pvtt-dev/images
    python benchmarks/foreign_measures.py clips WORKSPACE
    python benchmarks/foreign_measures.py surfaces WORKSPACE

- ``photos``: every product photo (``*/*_source.*``) cut out by the classical cutter at its own size and at copies
  resized to a long side of 500 and 2,000 px; for the cuts on a plain background, ``smooth_base`` (the share of the
  cut's lower outline that runs through smooth shading: :func:`pvtt.cutout.smooth_base`, what
  ``cutout.max_smooth_base`` thresholds), else why the photo was rejected before it.
- ``clips``: every curated clip of a built workspace, on the frames ``video_cutout`` samples: the largest lift of a
  piece of the mask hanging above the rest (:func:`pvtt.compose.piece_lift`, what ``video_cutout.max_piece_lift``
  thresholds), how many frames exceed the default limit, and the lifts above 0.
- ``surfaces``: two tries at seeing a table cut out with a video product (TOYS012-s00's frame 0 in the seventeenth
  build), neither kept: on the frames ``video_cutout`` samples, as ``score_frame`` keeps their mask, the frame's
  ``smooth_base`` and the share of the mask's bottom quarter and eighth whose Lab colour is within 10 of the median
  colour of the surface 3-20 px below the mask (:func:`surface_share`); qualifying frames first, the rest after ``|``.
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


def _curated(workspace: Path):
    """``(workspace, clip)`` for every clip of a built workspace that curate kept."""
    from pvtt.items import collect_clips
    from pvtt.store import Workspace
    from pvtt.types import Status

    ws = Workspace(workspace)
    for clip in collect_clips(ws):
        record = ws.read_record("curate", clip.id)
        if record is not None and record.status is Status.DONE:
            yield ws, clip


def clips(workspace: Path) -> None:
    from pvtt import artifacts
    from pvtt.compose import main_pieces, piece_lift
    from pvtt.stages.product import _sample_indices

    settings = VideoCutoutSettings()
    for ws, clip in _curated(workspace):
        masks = np.asarray(artifacts.masks(ws, clip.id).data, bool)
        lifts = np.array([piece_lift(main_pieces(masks[t])[0]) for t in _sample_indices(len(masks), settings.frames_per_clip)])
        over = int((lifts > settings.max_piece_lift).sum())
        print(f"{clip.id:18} largest lift {lifts.max():.2f}, {over}/{len(lifts)} frames > {settings.max_piece_lift}, "
              f"lifts above 0: {np.round(np.sort(lifts[lifts > 0]), 2).tolist()}", flush=True)


def surface_share(rgb: np.ndarray, mask: np.ndarray, band: float, below: tuple[int, int] = (3, 20),
                  tol: float = 10.0) -> float:
    """Share of the mask's bottom ``band`` (of its height) whose Lab colour is within ``tol`` of the median colour of
    the pixels ``below`` px under the mask (outside it): how much of the mask's base continues the surface under it."""
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return 0.0
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100 / 255
    lab[..., 1:] -= 128
    ring = np.zeros(mask.shape, bool)
    for shift in range(below[0], below[1]):
        ring[shift:] |= mask[:-shift]
    ring &= ~(cv2.dilate(mask.astype(np.uint8), np.ones((2 * below[0] + 1,) * 2, np.uint8)) > 0)
    if ring.sum() < 20:
        return 0.0
    surface = np.median(lab[ring], axis=0)
    lower = mask.copy()
    lower[: rows[-1] - int(band * (rows[-1] - rows[0] + 1))] = False
    return float((np.linalg.norm(lab[lower] - surface, axis=1) < tol).mean())


def surfaces(workspace: Path) -> None:
    from pvtt import artifacts
    from pvtt.cutout import smooth_base
    from pvtt.stages.product import _sample_indices, _stability, score_frame

    settings = VideoCutoutSettings()
    for ws, clip in _curated(workspace):
        video, masks = clip.load(ws), artifacts.masks(ws, clip.id)
        rows: dict[str, list] = {"smooth base": [], "surface, bottom quarter": [], "surface, bottom eighth": []}
        qualifies = []
        for t in _sample_indices(video.num_frames, settings.frames_per_clip):
            rgb = video.frames[t]
            _, kept, reason = score_frame(rgb, masks.data[t], settings, 1.0, None, _stability(masks.areas, t))
            qualifies.append(not reason)
            rows["smooth base"].append(smooth_base(rgb, kept.astype(np.uint8) * 255) if kept.any() else 0.0)
            rows["surface, bottom quarter"].append(surface_share(rgb, kept, 0.25))
            rows["surface, bottom eighth"].append(surface_share(rgb, kept, 0.125))
        for name, values in rows.items():
            good = [round(v, 2) for v, q in zip(values, qualifies) if q]
            rest = [round(v, 2) for v, q in zip(values, qualifies) if not q]
            print(f"{clip.id:18} {name:24} {good} | {rest}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["photos", "clips", "surfaces"])
    ap.add_argument("path", type=Path)
    args = ap.parse_args()
    {"photos": photos, "clips": clips, "surfaces": surfaces}[args.what](args.path)


if __name__ == "__main__":
    main()
