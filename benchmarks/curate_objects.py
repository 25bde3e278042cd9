"""Curate's object and grip checks on every segmented clip of a built workspace: how much of the salient object under
A's mask the mask leaves out (``object_missed``), how much of the mask lies off it (``mask_off_object``), and how many
hands grip something and which share of them hold the mask (``grip_hands``, ``grip_on_mask``), with the workspace's
own curate verdict beside them.

Usage:
  python benchmarks/curate_objects.py WORKSPACE [--set curate.salient.reach=0.3 ...] [--json F]

The measures are :func:`pvtt.curate.hand_and_object_share` as the curate stage computes them (U²-Net-p's map,
hands found by the configured detector taken out, ``curate.hand_frames`` frames), whatever the workspace was
built with; ``--set`` tries other settings without rebuilding. Printed per clip: both medians, the grip counts, the
would-be verdict of the three checks at the configured thresholds (the ``salient`` preset's unless ``--set`` says
otherwise), and the status and reason the workspace's curate record holds. Needs the weights (``pvtt models download
--preset salient``).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from pvtt import artifacts
from pvtt.config import load_config
from pvtt.curate import hand_and_object_share
from pvtt.curate.objects import SalientObjects
from pvtt.hands import make_hand_detector
from pvtt.items import collect_clips
from pvtt.store import Workspace
from pvtt.types import Status


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workspace", type=Path)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    ws = Workspace(args.workspace)
    config = load_config(None, args.overrides, preset="salient")
    s = config.curate
    objects = SalientObjects(s.salient)
    objects.setup()
    hands = make_hand_detector(config.hands) if s.hand_checks() else None
    if hands is not None:
        hands.setup()
    rows = []
    for clip in collect_clips(ws):
        segmented = ws.read_record("segment", clip.id)
        if segmented is None or segmented.status is not Status.DONE:
            continue
        record = ws.read_record("curate", clip.id)
        measures = hand_and_object_share(clip.load(ws), artifacts.masks(ws, clip.id), hands, objects, s)
        missed, off = measures.get("object_missed", 0.0), measures.get("mask_off_object", 0.0)
        fails = [name for name, value, limit in (("missed", missed, s.max_object_missed),
                                                 ("off", off, s.max_mask_off_object)) if value > limit]
        gripping, held = int(measures.get("grip_hands", 0)), measures.get("grip_on_mask", 1.0)
        if gripping >= s.min_grip_hands and held < s.min_grip_on_mask:
            fails.append("grip")
        rows.append({"clip_id": clip.id, **{k: round(v, 4) for k, v in measures.items()}, "fails": fails,
                     "status": record.status.value if record else None, "reason": record.reason if record else None})
        print(f"{clip.id:18s} missed {missed:.3f}  off {off:.3f}  hand {measures.get('hand_fraction', 0.0):.2f}  "
              f"grip {gripping:2d}/{held:.2f}  {'/'.join(fails) or 'pass':11s} | "
              f"workspace: {rows[-1]['status']} {(rows[-1]['reason'] or '')[:70]}",
              flush=True)
    print(f"\n{len(rows)} clips; the object checks (missed > {s.max_object_missed}, off > {s.max_mask_off_object}, "
          f"reach {s.salient.reach}) and the grip check (< {s.min_grip_on_mask} of >= {s.min_grip_hands} gripping "
          f"hands on the mask) reject {sum(bool(r['fails']) for r in rows)}, of them "
          f"{sum(bool(r['fails']) and r['status'] == 'done' for r in rows)} the workspace curated")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
