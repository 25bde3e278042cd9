"""The products a build cut from its template videos: one line per `video_cutout` record and a sheet of the cutouts.

Usage: python benchmarks/video_products.py WORKSPACE [OUT.png]

Per product: done or rejected; the clip and frame the cut comes from, whether curate rejected that clip as a template
(``video_cutout.rejected_clips``), how many sampled frames qualified of how many, the frame's product sharpness and
the share of its mask trimmed as off the salient object — or the reason it was rejected. A record made before
video_cutout 13 has no product sharpness: it is measured here on the record's frame and mask. With OUT.png, the cutouts
and their extra views over grey, in a row per product, to look at: a video product the judge cannot check (it
compares B in the edit with this very image).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from pvtt import artifacts
from pvtt.config import VideoCutoutSettings
from pvtt.items import collect_clips
from pvtt.media import load_image_rgba, write_png
from pvtt.stages.product import score_frame
from pvtt.store import Workspace
from pvtt.types import Status

HEIGHT = 220


def _tile(rgba: np.ndarray, label: str) -> np.ndarray:
    alpha = rgba[..., 3:].astype(np.float32) / 255.0
    grey = (rgba[..., :3] * alpha + 128 * (1 - alpha)).astype(np.uint8)
    tile = cv2.resize(grey, (max(1, round(grey.shape[1] * HEIGHT / grey.shape[0])), HEIGHT))
    cv2.putText(tile, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 0, 0), 1)
    return tile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workspace", type=Path)
    ap.add_argument("out", type=Path, nargs="?")
    args = ap.parse_args()
    ws = Workspace(args.workspace)
    rows = []
    clips = {c.id: c for c in collect_clips(ws)}
    for path in sorted((ws.root / "records" / "video_cutout").glob("*.json")):
        record = ws.read_record("video_cutout", path.stem)
        if record is None:
            continue
        m, out = record.metrics, record.outputs
        if record.status is not Status.DONE:
            print(f"{record.item_id:10s} {record.status.value:8s} {record.reason}")
            continue
        if "product_sharpness" not in m:  # an older record: measure it on its frame
            t = out["frame_index"]
            frame = clips[out["clip_id"]].load(ws).frames[t]
            m["product_sharpness"] = score_frame(frame, artifacts.masks(ws, out["clip_id"]).data[t],
                                                 VideoCutoutSettings())[0].get("product_sharpness", float("nan"))
        print(f"{record.item_id:10s} done     {out['clip_id']} frame {out['frame_index']:3d}  "
              f"{'rejected clip' if m.get('from_rejected_clip') else 'curated clip '}  "
              f"qualifying {m.get('qualifying')}/{m.get('candidates')}  "
              f"product sharpness {m.get('product_sharpness', float('nan')):.1f}  "
              f"off-object trimmed {m.get('off_object_trimmed', 0.0):.3f}  views {len(out.get('view_paths', []))}")
        paths = [out["cutout_path"], *out.get("view_paths", [])]
        rows.append([_tile(load_image_rgba(ws.abs(p)), record.item_id if n == 0 else f"view {n}")
                     for n, p in enumerate(paths)])
    if args.out and rows:
        width = max(sum(t.shape[1] for t in row) for row in rows)
        sheet = np.vstack([np.hstack(row + [np.zeros((HEIGHT, width - sum(t.shape[1] for t in row), 3), np.uint8)])
                           for row in rows])
        write_png(args.out, sheet)
        print(f"sheet: {args.out}")


if __name__ == "__main__":
    main()
