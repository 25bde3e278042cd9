"""The classical erase of a build's clips with one setting off and on (the default), one after the other.

Usage: python benchmarks/erase_off_on.py WORKSPACE CLIP_ID [CLIP_ID ...] [--off inpaint_wide_context=0]

For each clip (its cached masks in WORKSPACE, e.g. a `pvtt build --workspace` of the dev data) this prints the erase's
wall time with the erase setting given by ``--off`` set to that value, and with the defaults, and the share of pixels
in which the two backgrounds differ by more than 8 levels. Run it on an otherwise idle machine: the times are wall
seconds. Settings measured with it:

- ``inpaint_wide_context=0`` (the default ``--off``): the never-visible part filled a second time from a crop grown
  by 1.0 instead of 0.25, the fill whose texture row by row is nearer the frame beside it kept (0: the narrow
  crop's fill only);
- ``inpaint_detail=false``: the work-resolution fill upsampled instead of copied at full resolution along shift-map's
  offsets.
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
    args = sys.argv[1:]
    off = "inpaint_wide_context=0"
    if "--off" in args:
        at = args.index("--off")
        off = args[at + 1]
        del args[at:at + 2]
    if len(args) < 2 or "=" not in off:
        sys.exit(__doc__)
    name, value = off.split("=", 1)
    if name not in EraseSettings.model_fields:
        sys.exit(f"--off {off}: no erase setting {name!r}")
    ws = Workspace(args[0])
    clips = {c.id: c for c in collect_clips(ws)}
    print(f"{'clip':18} {'off s':>7} {'on s':>7} {'ratio':>6} {'changed':>8}")
    for clip_id in args[1:]:
        if clip_id not in clips:
            sys.exit(f"{clip_id}: no such clip in {ws.root} (clips: {', '.join(sorted(clips))})")
        clip, masks = clips[clip_id].load(ws), artifacts.masks(ws, clip_id)
        seconds, frames = [], []
        for settings in ({name: value}, {}):
            started = time.perf_counter()
            frames.append(make_eraser(**settings).erase(clip, masks).frames)
            seconds.append(time.perf_counter() - started)
        changed = float((np.abs(frames[0].astype(np.int16) - frames[1]).max(axis=-1) > 8).mean())
        print(f"{clip_id:18} {seconds[0]:7.1f} {seconds[1]:7.1f} {seconds[1] / seconds[0]:6.2f} {changed:8.4f}")


if __name__ == "__main__":
    main()
