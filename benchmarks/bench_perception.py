"""Seconds per perception stage (locate → segment → track → curate) on one clip, plus track quality.

    python benchmarks/bench_perception.py [CLIP.mp4 [PRODUCT_PHOTO]] [--frames 101] [--sheet out.png]

Without a clip, a synthetic 101-frame 1280x720 case is rendered (pvtt.bench.make) and its truth is
used to report mask IoU and track error as well.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from pvtt.curate import CurateSettings, curate
from pvtt.locate import LocateSettings, make_locator
from pvtt.media.image import load_image_rgba, write_png
from pvtt.media.video import read_video
from pvtt.review_media import contact_sheet, overlay_frames
from pvtt.segment import SegmentSettings, make_segmenter
from pvtt.track import TrackSettings, forward_backward_error, make_tracker
from pvtt.types import Clip, ProductImage


def synthetic_case(folder: Path, frames: int) -> tuple[Path, Path]:
    from pvtt.bench.make import draw_params, make_case
    from pvtt.demo import draw_product
    from pvtt.testmedia import textured_background

    rng = np.random.default_rng(3)
    params = draw_params(rng, frames, 1280, 720, occluder=False, lighting=False)
    make_case(folder, textured_background(900, 1600, 3), draw_product(0, 400, 1), draw_product(1, 400, 2), params)
    return folder / "video_a.mp4", folder / "photo_a.png"


def run(video: Path, photo: Path | None, frames: int, sheet: Path | None) -> dict[str, float]:
    data, fps = read_video(video, max_frames=frames)
    clip = Clip(video.stem, data, fps)
    product = ProductImage("photo", load_image_rgba(photo)) if photo else None
    times: dict[str, float] = {}
    t = time.perf_counter()
    box = make_locator(LocateSettings()).locate(clip, product, None)
    times["locate"] = time.perf_counter() - t
    t = time.perf_counter()
    masks = make_segmenter(SegmentSettings()).segment(clip, box)
    times["segment"] = time.perf_counter() - t
    t = time.perf_counter()
    tracks = make_tracker(TrackSettings()).track(clip, masks)
    times["track"] = time.perf_counter() - t
    t = time.perf_counter()
    result = curate(clip, masks, tracks, CurateSettings())
    times["curate"] = time.perf_counter() - t
    fb = forward_backward_error(clip, tracks)
    print(f"clip {video} {clip.num_frames}x{clip.height}x{clip.width}; box {box.source} "
          f"{tuple(round(v) for v in box.as_tuple())} conf {box.confidence:.2f}")
    for name, sec in times.items():
        print(f"  {name:8s} {sec:6.2f} s")
    print(f"  total    {sum(times.values()):6.2f} s")
    print(f"  median FB error {np.nanmedian(fb):.3f} px; visible at last frame {tracks.visible[-1].mean():.2f}; "
          f"curate passed={result.passed} {result.reasons}")
    if sheet:
        write_png(sheet, contact_sheet(overlay_frames(clip, masks, tracks)))
    return {**times, "fb": float(np.nanmedian(fb)), "visible_last": float(tracks.visible[-1].mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", nargs="?", type=Path)
    ap.add_argument("photo", nargs="?", type=Path)
    ap.add_argument("--frames", type=int, default=101)
    ap.add_argument("--sheet", type=Path)
    args = ap.parse_args()
    if args.video:
        run(args.video, args.photo, args.frames, args.sheet)
        return
    with tempfile.TemporaryDirectory() as tmp:
        video, photo = synthetic_case(Path(tmp) / "case", args.frames)
        run(video, photo, args.frames, args.sheet)


if __name__ == "__main__":
    main()
