"""The classical erase of a build's clips with and without the wide crop for what no frame shows.

Usage: python benchmarks/erase_wide_context.py WORKSPACE CLIP_ID [CLIP_ID ...]

`erase.inpaint_wide_context` fills the never-visible part a second time, from a crop grown by 1.0 instead of 0.25,
and keeps the fill whose texture row by row is nearer the frame beside it. For each clip (its cached masks in
WORKSPACE, e.g. a `pvtt build --workspace` of the dev data) this prints the erase's wall time with it off (0) and on
(the default), one after the other, and the share of pixels in which the two backgrounds differ by more than 8 levels
(0 where the narrow fill was kept). Run it on an otherwise idle machine: the times are wall seconds.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from pvtt import artifacts
from pvtt.erase import EraseSettings, make_eraser
from pvtt.items import collect_clips
from pvtt.store import Workspace


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    ws = Workspace(sys.argv[1])
    clips = {c.id: c for c in collect_clips(ws)}
    wide = EraseSettings().inpaint_wide_context
    print(f"{'clip':18} {'off s':>7} {'on s':>7} {'ratio':>6} {'changed':>8}")
    for clip_id in sys.argv[2:]:
        if clip_id not in clips:
            sys.exit(f"{clip_id}: no such clip in {ws.root} (clips: {', '.join(sorted(clips))})")
        clip, masks = clips[clip_id].load(ws), artifacts.masks(ws, clip_id)
        seconds, frames = [], []
        for context in (0.0, wide):
            started = time.perf_counter()
            frames.append(make_eraser(inpaint_wide_context=context).erase(clip, masks).frames)
            seconds.append(time.perf_counter() - started)
        changed = float((np.abs(frames[0].astype(np.int16) - frames[1]).max(axis=-1) > 8).mean())
        print(f"{clip_id:18} {seconds[0]:7.1f} {seconds[1]:7.1f} {seconds[1] / seconds[0]:6.2f} {changed:8.4f}")


if __name__ == "__main__":
    main()
