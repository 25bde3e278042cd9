"""curate's mask-drift and given-box checks measured on every segmented clip of a built workspace.

    python benchmarks/curate_mask_checks.py WORKSPACE

Prints, per clip: its curate status in that workspace, ``mask_drift`` (mask growth over what the tracked
points' spread explains) with the frames it was measured on, the IoU of the first mask's box with the located
box and the box's source, and which of today's checks (``curate.max_mask_drift``, ``curate.min_box_iou`` for
reviewer / catalog boxes) would reject it. Reads the workspace only.
"""
from __future__ import annotations

import sys
from pathlib import Path

from pvtt import artifacts
from pvtt.curate import GIVEN_BOX_SOURCES, CurateSettings
from pvtt.curate.metrics import box_cover, mask_drift
from pvtt.store import Workspace


def main() -> None:
    ws = Workspace(Path(sys.argv[1]))
    s = CurateSettings()
    for path in sorted((ws.root / "records" / "curate").glob("*.json")):
        clip_id = path.stem
        try:
            masks, tracks, box = (artifacts.masks(ws, clip_id), artifacts.tracks(ws, clip_id),
                                  artifacts.box(ws, clip_id))
        except Exception:  # not segmented or tracked: nothing to measure
            continue
        status = artifacts.record(ws, "curate", clip_id, required=False)
        drift, cover = mask_drift(masks, tracks, s.min_drift_points), box_cover(masks, box)
        flags = (["drift"] if drift["mask_drift"] > s.max_mask_drift else []) + \
                (["box"] if box.source in GIVEN_BOX_SOURCES and cover["box_iou"] < s.min_box_iou else [])
        print(f"{clip_id:18s} {status.status.value if status else '-':8s} drift={drift['mask_drift']:.2f} "
              f"({int(drift['drift_frames'])} frames) box_iou={cover['box_iou']:.2f} ({box.source}) "
              f"rejects: {','.join(flags) or '-'}")


if __name__ == "__main__":
    main()
