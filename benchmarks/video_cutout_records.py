"""The products a build cut from its template videos, as its `video_cutout` records say: a line per product and a
sheet of the cutouts. (``video_products.py`` runs the frame choice again on the curated clips; this reads what the
build made, including products from clips curate rejected, ``video_cutout.rejected_clips``.)

Usage: python benchmarks/video_cutout_records.py WORKSPACE [OUT.png]

Per product: done or rejected; the clip and frame the cut comes from, whether curate rejected that clip as a template,
how many sampled frames qualified of how many, the frame's product sharpness and the share of its mask trimmed as off
the salient object — or the reason it was rejected. A record made before video_cutout 13 has no product sharpness: it
is measured here on the record's frame and mask. With OUT.png, the cutouts and their extra views over a checkerboard,
a row per product, to look at: the judge cannot check a product image (it compares B in the edit with this image).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from video_products import _fit, _label, _on_checkerboard, _row, _sheet

from pvtt import artifacts
from pvtt.config import VideoCutoutSettings
from pvtt.items import collect_clips
from pvtt.media import load_image_rgba, write_png
from pvtt.stages.product import score_frame
from pvtt.store import Workspace
from pvtt.types import Status


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workspace", type=Path)
    ap.add_argument("out", type=Path, nargs="?")
    args = ap.parse_args()
    ws = Workspace(args.workspace)
    clips = {c.id: c for c in collect_clips(ws)}
    rows = []
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
              f"product sharpness {m['product_sharpness']:.1f}  "
              f"off-object trimmed {m.get('off_object_trimmed', 0.0):.3f}  views {len(out.get('view_paths', []))}")
        paths = [out["cutout_path"], *out.get("view_paths", [])]
        rows.append(_row([_label(_fit(_on_checkerboard(load_image_rgba(ws.abs(p)))),
                                 [record.item_id if n == 0 else f"view {n}"]) for n, p in enumerate(paths)]))
    if args.out and rows:
        write_png(args.out, _sheet(rows))
        print(f"sheet: {args.out}")


if __name__ == "__main__":
    main()
