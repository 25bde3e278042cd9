"""`pvtt build` on a GPU machine with a generative strategy at full architecture size, random weights.

Random-weight pipelines built from the published configs (SVD-img2vid-xt for ``motion-lora``; Wan2.1-VACE-1.3B
and Depth Anything V2-L for ``auto`` / ``vace-depth`` / ``vace-points``) are written with ``save_pretrained``
and named in the config as real weights would be, so the run goes through pvtt's real loading code, the
clip-level depth / motion-LoRA stages and the pair stage. The catalog is rendered here: one single-shot
template of 101 frames (normalized to 720x960 at 20 fps) and two product photos, so one clip and one pair.

    python benchmarks/gpu_build.py --strategy motion-lora --out /tmp/gpubuild [--set key=value ...]

Prints, per stage, the seconds of each item (the record's ``seconds``: setup, i.e. loading the weights, is
counted in the first item) and the peak GPU memory of the stage, then the pair's record. Speed and memory do
not depend on weight values; the pixels are meaningless.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))
import bench_generative  # noqa: E402  (the full-size builders; it imports diffusers first)
from bench_models_perception import depth_anything_v2_large  # noqa: E402


def save_weights(strategy: str, root: Path) -> dict[str, str]:
    """The random-weight pipelines the strategy needs, saved under ``root``; config overrides naming them."""
    t0 = time.perf_counter()
    if strategy == "motion-lora":
        bench_generative.svd_pipeline().save_pretrained(root / "svd")
        sets = {"propagate.motion_lora.model": str(root / "svd")}
    else:
        bench_generative.vace_pipeline().save_pretrained(root / "vace")
        depth_anything_v2_large().save_pretrained(root / "depth")
        sets = {"propagate.vace.model": str(root / "vace"), "depth.model": str(root / "depth")}
    torch.cuda.empty_cache()
    print(f"[weights saved in {time.perf_counter() - t0:.0f}s: {sorted(sets.values())}]", flush=True)
    return sets


def make_catalog(root: Path) -> Path:
    """A manifest: one 101-frame single-shot template with its product, and a second product photo."""
    from PIL import Image

    from pvtt.demo import product_photo, render_template
    from pvtt.media.video import write_video

    root.mkdir(parents=True, exist_ok=True)
    write_video(root / "template.mp4", render_template(0, 0, frames_per_shot=101)[:101], fps=20)
    Image.fromarray(product_photo(0, 0)).save(root / "own.jpg", quality=92)
    Image.fromarray(product_photo(2, 1)).save(root / "other.jpg", quality=92)  # a gift box: fits the mug's slot
    rows = [{"id": "T0", "video": "template.mp4", "image": "own.jpg", "category": "kitchen", "subcategory": "mug",
             "description": "a ceramic mug"},
            {"id": "P1", "image": "other.jpg", "category": "toys", "subcategory": "gift box",
             "description": "a square red gift box with a gold ribbon"}]
    (root / "catalog.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / "catalog.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", default="motion-lora", choices=["motion-lora", "auto", "vace-depth", "vace-points"])
    parser.add_argument("--out", default="/tmp/gpubuild")
    parser.add_argument("--set", action="append", default=[], help="extra config overrides (key=value)")
    args = parser.parse_args()
    from pvtt.config import load_config
    from pvtt.pipeline import build
    from pvtt.runners.local import LocalRunner
    from pvtt.store import Workspace

    out = Path(args.out)
    print(torch.__version__, torch.cuda.get_device_name(), flush=True)
    sets = save_weights(args.strategy, out / "weights")
    catalog = make_catalog(out / "catalog")
    overrides = [f"propagate.backend={args.strategy}", "runner.workers=8", "runner.progress=false",
                 "pairing.strategy=all", *[f"{k}={v}" for k, v in sets.items()], *args.set]
    config = load_config(None, overrides)

    peaks: dict[str, float] = {}
    real_run = LocalRunner.run

    def run(self, stage, items, description=None):  # the GPU peak of each stage
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        records = real_run(self, stage, items, description)
        peaks[stage.name] = torch.cuda.max_memory_allocated() / 2**30
        print(f"[{stage.name}: {len(items)} item(s) in {time.perf_counter() - t0:.1f}s, gpus {stage.resources.gpus:g}, "
              f"GPU peak {peaks[stage.name]:.1f} GiB]", flush=True)
        return records

    LocalRunner.run = run
    t0 = time.perf_counter()
    summary = build(catalog, out / "dataset", config, workspace=out / "ws")
    print(f"[build took {time.perf_counter() - t0:.0f}s]", flush=True)
    ws = Workspace(out / "ws")
    print("| stage | item | status | seconds | GPU peak GiB of the stage | reason |")
    print("| --- | --- | --- | --- | --- | --- |")
    for stage in ("normalize", "locate", "segment", "track", "curate", "erase", "depth", "motion_lora", "cutout",
                  "synthesize"):
        for record in ws.records(stage):
            print(f"| {stage} | {record.item_id} | {record.status.value} | {record.seconds} | "
                  f"{peaks.get(stage, 0):.1f} | {record.reason[:160]} |")
    for record in ws.records("synthesize"):
        print(json.dumps({"pair": record.item_id, "metrics": record.metrics}, default=str)[:2000])
    print({stage: dict(counts) for stage, counts in summary.counts.items()})


if __name__ == "__main__":
    main()
