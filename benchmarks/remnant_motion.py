"""What the judge's remnant check finds beside A's mask, and what `judge.remnant_motion_step` keeps of it, drawn.

    python benchmarks/remnant_motion.py WS OUT.png PAIR:FRAME [PAIR:FRAME ...] [--step 4]

``WS`` is a build workspace (a `pvtt bench run` case's ``workspace`` folder works too); each ``PAIR:FRAME`` names a
pair with an edited clip and a frame. Per frame, at the judge's working size: the source with A's mask (green), the
pixels A's extent adds beside the mask that the edit still shows (:func:`pvtt.judge.defects.beside_mask`, as the
remnant check counts them) in cyan where they move otherwise than A (:func:`pvtt.judge.defects.moves_with_a`,
compared with the frame ``--step`` later) and in magenta where they move with A or motion cannot tell; next to it the
edited frame. Prints both shares of A's mask area and A's motion.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from pvtt import artifacts
from pvtt.config import load_config
from pvtt.items import collect_clips
from pvtt.judge import defects
from pvtt.judge.metrics import _resize, motion_between, track_points
from pvtt.media import write_png
from pvtt.store import Workspace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workspace", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("frames", nargs="+", help="PAIR:FRAME")
    ap.add_argument("--step", type=int, default=4)
    args = ap.parse_args()
    s = load_config(None, []).judge
    ws = Workspace(args.workspace)
    pairs = {p["pair_id"]: p for p in json.loads((ws.root / "pairs.json").read_text())}
    clips = {c.id: c for c in collect_clips(ws)}
    rows = []
    for spec in args.frames:
        pair_id, t = spec.rsplit(":", 1)
        t = int(t)
        clip = clips[pairs[pair_id]["clip_id"]]
        src = clip.load(ws).frames
        edited = artifacts.edited(ws, pair_id)
        masks_a = np.asarray(artifacts.masks(ws, clip.id).data, bool)
        masks_b = np.asarray(artifacts.masks_b(ws, pair_id), bool)
        tracks = artifacts.tracks(ws, clip.id)
        h, w = src.shape[1:3]
        scale = min(1.0, s.work_short_side / min(h, w))
        size = (round(w * scale), round(h * scale))
        other = t + args.step if t + args.step < len(src) else t - args.step
        S, E, L = (_resize(np.asarray(x), size) for x in (src[t], edited[t], src[other]))
        A, B = _resize(masks_a[t], size, True), _resize(masks_b[t], size, True)
        motion = motion_between(*track_points(tracks, size, w, h), t, other, s.min_motion_points)
        beside = defects.beside_mask(S, E, A, B, s)
        kept = (defects.moves_with_a(S, L, A, beside, motion, s.remnant_motion_min) if motion is not None
                else beside)
        area = max(int(A.sum()), 1)
        print(f"{spec}: beside the mask {beside.sum() / area:.3f} of A's area, moving with A {kept.sum() / area:.3f}; "
              f"A's motion to frame {other}: {None if motion is None else motion.round(3).tolist()}")
        view = S.copy()
        view[beside & ~kept] = (0, 255, 255)
        view[kept] = (255, 0, 255)
        contours, _ = cv2.findContours(A.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(view, contours, -1, (0, 255, 0), 1)
        rows.append(np.hstack([view, E]))
    width = max(r.shape[1] for r in rows)
    write_png(args.out, np.vstack([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]))


if __name__ == "__main__":
    main()
