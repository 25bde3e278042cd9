"""Seconds and peak memory per stage on one clip and one product photo, with the configured backends.

Peak memory is the peak of Python/NumPy allocations during the stage (``tracemalloc``, which sees
NumPy arrays but not memory that OpenCV or FFmpeg allocate internally) plus, for model backends on
a GPU, ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pvtt.config import PipelineConfig


def _measure(name: str, fn: Callable[[], Any], rows: list[dict]) -> Any:
    tracemalloc.reset_peak()
    gpu = None
    try:
        import torch  # only if installed; the measurement itself needs no GPU

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
            gpu = torch
    except ImportError:
        pass
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    row = {"stage": name, "seconds": round(seconds, 3), "peak_mb": round(peak / 2**20, 1)}
    if gpu is not None:
        row["gpu_peak_mb"] = round(gpu.cuda.max_memory_allocated() / 2**20, 1)
    rows.append(row)
    return result


def profile_clip(video: str | Path, photo: str | Path, config: PipelineConfig,
                 own_photo: str | Path | None = None) -> list[dict]:
    """Run every stage once on the first normalized clip of ``video`` paired with the product in ``photo``."""
    from pvtt.cutout import make_cutter
    from pvtt.curate import clip_embedding, curate
    from pvtt.erase import make_eraser
    from pvtt.insert import make_inserter
    from pvtt.judge import judge
    from pvtt.locate import make_locator
    from pvtt.media.image import load_image_rgba
    from pvtt.media.video import read_video, write_video
    from pvtt.normalize import normalize_video
    from pvtt.propagate import make_propagator
    from pvtt.segment import make_segmenter
    from pvtt.track import make_tracker
    from pvtt.types import Clip, ProductImage

    rows: list[dict] = []
    tracemalloc.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            result = _measure("normalize", lambda: normalize_video(video, tmp, "clip", config.shots, config.normalize,
                                                                   config.media), rows)
            info = result.clips[0]
            frames, fps = read_video(info.path)
            clip = Clip(info.clip_id, frames, fps)
            own = ProductImage("own", load_image_rgba(own_photo)) if own_photo else None
            locator, segmenter = make_locator(config.locate), make_segmenter(config.segment)
            tracker, eraser = make_tracker(config.track), make_eraser(config.erase)
            cutter, inserter = make_cutter(config.cutout), make_inserter(config.insert)
            propagator = make_propagator(config.propagate)
            for backend in (locator, segmenter, tracker, eraser, cutter, inserter, propagator):
                backend.setup()
            box = _measure("locate", lambda: locator.locate(clip, own, None), rows)
            masks = _measure("segment", lambda: segmenter.segment(clip, box), rows)
            tracks = _measure("track", lambda: tracker.track(clip, masks), rows)
            _measure("curate", lambda: (curate(clip, masks, tracks, config.curate), clip_embedding(clip)), rows)
            erased = _measure("erase", lambda: eraser.erase(clip, masks), rows)
            product = ProductImage("target", load_image_rgba(photo))
            cut = _measure("cutout", lambda: cutter.cut_out(product), rows)
            inserted = _measure("insert", lambda: inserter.insert(frames[0], erased.frames[0], masks.data[0], box,
                                                                  cut.rgba), rows)
            edited = _measure("propagate", lambda: propagator.propagate(clip, erased.frames, masks, tracks, inserted),
                              rows)
            _measure("judge", lambda: judge(frames, edited.frames, masks, edited.masks, inserted.product, tracks,
                                            config.judge), rows)
            _measure("encode", lambda: write_video(tmp / "edited.mp4", edited.frames, fps, crf=config.media.crf,
                                                   preset=config.media.preset), rows)
            for row in rows:
                row.update({"frames": len(frames), "width": clip.width, "height": clip.height})
    finally:
        tracemalloc.stop()
    return rows
