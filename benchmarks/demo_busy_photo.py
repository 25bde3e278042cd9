"""`pvtt demo` with one template's product photo replaced by a lifestyle shot: the product on a busy table.

Usage: python benchmarks/demo_busy_photo.py OUT [--template 3] [--set key=value ...]   (3-5 min on 2 CPUs)

Renders the demo catalog into OUT/catalog (as ``pvtt demo``), replaces DEMO00<template>'s studio photo by the same
product on a busy textured table, and builds OUT/dataset with the workspace OUT/workspace (the demo's default config,
``--set`` overrides). The cutout rejects that photo (busy background), so the product must come from its own template
video (``video_cutout``), and the photo must not lead locate astray on its own template. Prints the locate box of the
template's clips, what each stage rejected, and every kept pair with where its target image came from.
Look at the pairs: ``python benchmarks/pair_sheets.py OUT/dataset SHEETS``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image

from pvtt.config import load_config
from pvtt.demo import composite, draw_product, make_demo_catalog
from pvtt.pipeline import build
from pvtt.store import Workspace
from pvtt.testmedia import textured_background
from pvtt.types import Status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--template", type=int, default=3, help="which demo template's photo is made busy (1-3)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    catalog = args.out / "catalog"
    if not (catalog / "annotations" / "metadata.json").is_file():
        make_demo_catalog(catalog, count=3)
        meta = json.loads((catalog / "annotations" / "metadata.json").read_text())
        n = args.template - 1
        busy = composite(textured_background(400, 400, 50 + n, detail=10.0), draw_product(n, 320, n), 200, 360, 1)
        Image.fromarray(busy).save(catalog / meta["samples"][n]["source_product"]["image_path"], quality=92)
    config = load_config(None, ["runner.progress=false", *args.overrides])
    summary = build(catalog, args.out / "dataset", config, workspace=args.out / "workspace")
    ws = Workspace(args.out / "workspace")
    template = f"DEMO{args.template:03d}"
    for record in ws.records("locate"):
        if record.item_id.startswith(template):
            box = record.outputs.get("box") if record.outputs else None
            print(f"locate {record.item_id}: {record.status.value} {record.outputs.get('source') if box else ''} "
                  f"box {box} ({record.metrics.get('box_area_fraction')} of the frame) {record.reason}")
    for stage in ("curate", "cutout", "video_cutout", "synthesize"):
        for record in ws.records(stage):
            if record.status is not Status.DONE:
                print(f"{stage} {record.item_id}: {record.status.value}: {record.reason}")
    rows = [json.loads(line) for line in (args.out / "dataset/annotations/pairs.jsonl").read_text().splitlines()]
    for row in rows:
        print(f"{row['verdict']} {row['pair_id']}: target from {row['target_source']}")
    print(f"pairs kept: {summary.dataset['kept']} of {summary.dataset['pairs']}; "
          f"{sum(r['target_source'] == 'video' for r in rows)} with a product from a video")


if __name__ == "__main__":
    main()
