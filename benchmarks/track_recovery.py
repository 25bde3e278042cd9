"""Points lost under a hand or in a turn, with and without ``track.recover_from_mask``, on a built workspace.

Usage: python benchmarks/track_recovery.py WORKSPACE CLIP_ID[,CLIP_ID ...] [--set key=value ...]

Re-tracks each clip from the workspace's stored clip and masks, once with the mask-alignment fallback off and
once on, and prints for each: the mean share of visible points, the frames where fewer than 3 points are
visible together with frame 0 (what the warp propagation needs; ``propagate.min_points``), the longest run of
such frames (the warp bridges at most ``propagate.max_lost_frames``, default 3) and the seconds taken.
"""
from __future__ import annotations

import argparse
import time

from pvtt import artifacts
from pvtt.config import load_config
from pvtt.items import collect_clips
from pvtt.store import Workspace
from pvtt.track import make_tracker


def longest_run(flags) -> int:
    run = best = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workspace")
    ap.add_argument("clips", help="comma-separated clip ids")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    ws = Workspace(args.workspace)
    config = load_config(None, args.overrides)
    clips = {c.id: c for c in collect_clips(ws)}
    for clip_id in args.clips.split(","):
        clip, masks = clips[clip_id].load(ws), artifacts.masks(ws, clip_id)
        row = []
        for recover in (False, True):
            tracker = make_tracker(config.track.model_copy(update={"recover_from_mask": recover}))
            t0 = time.perf_counter()
            tracks = tracker.track(clip, masks)
            seconds = time.perf_counter() - t0
            lost = (tracks.visible[0] & tracks.visible).sum(axis=1) < 3
            row.append(f"{'on ' if recover else 'off'}: visible {tracks.visible.mean():.2f}, frames < 3 points "
                       f"{int(lost.sum())}, longest run {longest_run(lost)}, {seconds:.1f} s")
        print(f"{clip_id} ({clip.num_frames} frames) | " + " | ".join(row))


if __name__ == "__main__":
    main()
