"""The write phase of a synthesized pair (``synthesize``'s ``phase_seconds['write']``): its review overlay made over
the whole clip at once in float (as up to 2026-12-05) against frame by frame (`pvtt.review_media.pair_overlay` now),
in one run, with the two encodes for scale.

    python benchmarks/pair_write.py WORKSPACE [PAIR_ID]

Reads the pair's edited clip (decoded from its mp4), A's masks and B's masks from a build's workspace (PAIR_ID:
the first synthesized pair when left out). Prints wall seconds and the peak of numpy's allocations (tracemalloc) of
each overlay, whether the two are identical, and the seconds of encoding the edited clip and the overlay as the stage
does. Run it on an otherwise idle machine.
"""
from __future__ import annotations

import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np

from pvtt import artifacts
from pvtt.artifacts import write_mp4
from pvtt.config import MediaSettings
from pvtt.media.video import read_video
from pvtt.review_media import half_size, pair_overlay
from pvtt.store import Workspace


def whole_clip_overlay(edited: np.ndarray, masks_a: np.ndarray, masks_b: np.ndarray) -> np.ndarray:
    """`pair_overlay` as it was: the whole clip converted to float, tinted, outlined, then halved."""
    out = edited.astype(np.float32)
    tint = np.array([40, 220, 90], np.float32)
    out[masks_b] = out[masks_b] * 0.6 + tint * 0.4
    out = out.astype(np.uint8)
    for t in range(len(out)):
        contours, _ = cv2.findContours(masks_a[t].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out[t], contours, -1, (230, 40, 40), 2)
    return half_size(out)


def measured(fn, *args):
    tracemalloc.start()
    start = time.perf_counter()
    out = fn(*args)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak / 2**20


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    ws = Workspace(Path(sys.argv[1]))
    pair_ids = sys.argv[2:] or sorted(p.name for p in (ws.root / "synthesize").iterdir())
    record = next((r for r in (ws.read_record("synthesize", p) for p in pair_ids)
                   if r is not None and "edited_path" in (r.outputs or {})), None)
    if record is None:
        sys.exit(f"no synthesized pair in {ws.root}")
    edited, fps = read_video(ws.abs(record.outputs["edited_path"]))
    with np.load(ws.abs(record.outputs["masks_b_path"])) as z:
        masks_b = np.unpackbits(z["masks"], axis=-1)[..., : int(z["shape"][-1])].astype(bool)
    masks_a = artifacts.masks(ws, record.item_id.split("__")[0]).data
    print(f"{record.item_id}: {edited.shape[0]} frames {edited.shape[2]}x{edited.shape[1]}")
    old, old_s, old_mb = measured(whole_clip_overlay, edited, masks_a, masks_b)
    new, new_s, new_mb = measured(pair_overlay, edited, masks_a, masks_b)
    print(f"overlay, whole clip in float: {old_s:.2f} s, peak {old_mb:.0f} MB")
    print(f"overlay, frame by frame:      {new_s:.2f} s, peak {new_mb:.0f} MB  ({new_s / old_s:.2f}x; "
          f"identical: {np.array_equal(old, new)})")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_mp4(Path(tmp) / "edited.mp4", edited, fps, crf=MediaSettings().crf)
        middle = time.perf_counter()
        write_mp4(Path(tmp) / "overlay.mp4", new, fps, crf=23)
        print(f"encode: edited {middle - start:.2f} s, overlay {time.perf_counter() - middle:.2f} s")


if __name__ == "__main__":
    main()
