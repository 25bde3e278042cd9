"""`pvtt build` on a GPU machine with a generative strategy at full architecture size, random weights.

Random-weight pipelines built from the published configs (SVD-img2vid-xt for ``motion-lora``, ``i2vedit`` and
``svd-points``; Wan2.1-VACE-1.3B and Depth Anything V2-L for ``auto`` / ``vace-depth`` / ``vace-points``) are
written with ``save_pretrained`` and named in the config as real weights would be, so the run goes through
pvtt's real loading code, the clip-level depth / motion-LoRA / point-registration stages and the pair stage.
Unless ``--catalog`` names one, the catalog is rendered here: one single-shot template of 101 frames
(normalized to 720x960 at 20 fps) and two product photos, so one clip and one pair.

    python benchmarks/gpu_build.py --strategy motion-lora --out /tmp/gpubuild [--set key=value ...]
    python benchmarks/gpu_build.py --preset gpu --catalog CATALOG --weights /tmp/w,/dev/shm/w [--set ...]
    python benchmarks/gpu_build.py --preset gpu --runner ray ...   # the same build through the Ray runner

With ``--runner ray`` every stage runs in Ray actors (the preset's ``actors_per_gpu``), so a stage's GPU peak is
the device's used memory sampled through NVML while the stage runs (every process on the GPU, the CUDA contexts
included), not ``torch.cuda.max_memory_allocated`` of this process.

With ``--preset``, every model the preset needs (``pvtt.weights.required.required_models``) is built at full size
by ``full_size.BUILDERS`` and saved into the first ``--weights`` folder with room (a folder saved by an earlier run
is reused); ``--tiny`` saves the test suite's tiny models instead, to check the plumbing on a CPU machine.

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
from full_size import depth_anything_v2_large  # noqa: E402


SVD_SECTIONS = {"motion-lora": "motion_lora", "i2vedit": "i2vedit", "svd-points": "svd_points"}  # settings sections


def save_weights(strategy: str, root: Path) -> dict[str, str]:
    """The random-weight pipelines the strategy needs, saved under ``root``; config overrides naming them."""
    t0 = time.perf_counter()
    if strategy in SVD_SECTIONS:
        bench_generative.svd_pipeline().save_pretrained(root / "svd")
        sets = {f"propagate.{SVD_SECTIONS[strategy]}.model": str(root / "svd")}
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


class _StopBuild(Exception):
    """Raised after the ``--stop-after`` stage."""


class _NvmlPeak:
    """The GPU's used memory (GiB, every process) sampled every 50 ms on a thread until :meth:`stop`."""

    def __init__(self, index: int = 0):
        import threading

        import pynvml

        pynvml.nvmlInit()
        self._nvml, self._handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(index)
        self.peak = self._used()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _used(self) -> float:
        return self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used / 2**30

    def _loop(self) -> None:
        while not self._done.wait(0.05):
            self.peak = max(self.peak, self._used())

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return self.peak


def model_backends() -> list[type]:
    """ModelBackend and every subclass (each model backend's module imported first)."""
    import importlib

    from pvtt.models import ModelBackend

    for module in ("cutout.grounded", "depth.depth_anything", "embed.dinov2", "insert.flux_fill", "locate.detector",
                   "propagate.vace", "propagate.motion_lora", "segment.sam2", "vlm.qwen"):
        importlib.import_module(f"pvtt.{module}")
    found, todo = [ModelBackend], [ModelBackend]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", default="motion-lora",
                        choices=["motion-lora", "i2vedit", "svd-points", "auto", "vace-depth", "vace-points"])
    parser.add_argument("--preset", default=None, help="a packaged preset (gpu): every model the preset needs is "
                        "built at full size, saved and named in the config; --strategy is then ignored")
    parser.add_argument("--catalog", default=None, help="a catalog to build (default: one rendered template)")
    parser.add_argument("--weights", default=None, help="comma-separated folders for the saved weights, first "
                        "with room first (default: OUT/weights)")
    parser.add_argument("--tiny", action="store_true", help="with --preset: tiny random models instead of full-size "
                        "ones (the test suite's stand-ins), to check the run's plumbing on a CPU machine")
    parser.add_argument("--runner", default="local", choices=["local", "ray"],
                        help="the runner of the build (ray: a local Ray instance on this machine)")
    parser.add_argument("--weights-only", action="store_true", help="with --preset: save the weights and stop (a "
                        "later call with the same --weights reuses them)")
    parser.add_argument("--stop-after", default=None, help="end the build after this stage (its records and the "
                        "earlier stages' are kept and printed)")
    parser.add_argument("--out", default="/tmp/gpubuild")
    parser.add_argument("--set", action="append", default=[], help="extra config overrides (key=value)")
    args = parser.parse_args()
    from pvtt.config import load_config
    from pvtt.pipeline import build
    from pvtt.runners.local import LocalRunner
    from pvtt.store import Workspace

    out = Path(args.out)
    cuda = torch.cuda.is_available()
    print(torch.__version__, torch.cuda.get_device_name() if cuda else "no GPU", flush=True)
    base = ["runner.workers=8", "runner.progress=false", "pairing.strategy=all", f"runner.kind={args.runner}",
            *(["runner.ray.object_store_mb=4000"] if args.runner == "ray" else []), *args.set]
    if args.preset:
        from full_size import save_required

        roots = [Path(p) for p in (args.weights or str(out / "weights")).split(",")]
        needs = load_config(None, base, preset=args.preset)
        if args.tiny:
            sys.path.insert(0, str(HERE.parent / "tests" / "models"))
            from test_model_build import TINY, _tiny

            from pvtt.weights.required import required_models

            keys = [r.key for r in required_models(needs)]
            folders = {name: str(_tiny(name, roots[0])) for name in {TINY[k] for k in keys}}
            sets = {k: folders[TINY[k]] for k in keys}
            # the tiny detector is a Grounding DINO (the suite has no tiny OWLv2 checkpoint)
            sets |= {"locate.detector.family": "grounding-dino", "cutout.grounded.detector.family": "grounding-dino"}
        else:
            sets = save_required(needs, roots)
        overrides = [*[f"{k}={v}" for k, v in sets.items()], *base]
        if args.weights_only:
            print(json.dumps(sets, indent=1))
            return
    else:
        sets = save_weights(args.strategy, out / "weights")
        overrides = [f"propagate.backend={args.strategy}", *[f"{k}={v}" for k, v in sets.items()], *base]
    config = load_config(None, overrides, preset=args.preset)
    catalog = Path(args.catalog) if args.catalog else make_catalog(out / "catalog")

    peaks: dict[str, float] = {}
    walls: dict[str, float] = {}
    loads: dict[str, float] = {}
    from pvtt.runners.ray import RayRunner

    runner_class = RayRunner if args.runner == "ray" else LocalRunner
    real_run = runner_class.run

    def run(self, stage, items, description=None):  # the wall seconds and GPU peak of each stage
        sampler = _NvmlPeak() if args.runner == "ray" and cuda else None
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        records = real_run(self, stage, items, description)
        walls[stage.name] = time.perf_counter() - t0
        if sampler is not None:
            peaks[stage.name] = sampler.stop()
        else:
            peaks[stage.name] = torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0
        print(f"[{stage.name}: {len(items)} item(s) in {walls[stage.name]:.1f}s, gpus {stage.resources.gpus:g}, "
              f"GPU peak {peaks[stage.name]:.1f} GiB]", flush=True)
        if stage.name == args.stop_after:
            raise _StopBuild(stage.name)
        return records

    def timed_setup(real_setup):
        def setup(self, *a, **kw):  # loading seconds of each model backend (counted in its stage's first item)
            t0 = time.perf_counter()
            real_setup(self, *a, **kw)
            name = f"{self.stage}:{type(self).__name__}"
            loads[name] = loads.get(name, 0.0) + time.perf_counter() - t0
            print(f"[load {name}: {time.perf_counter() - t0:.1f}s]", flush=True)

        return setup

    runner_class.run = run
    for cls in model_backends():
        if "setup" in cls.__dict__:
            cls.setup = timed_setup(cls.__dict__["setup"])
    t0 = time.perf_counter()
    try:
        summary = build(catalog, out / "dataset", config, workspace=out / "ws")
    except _StopBuild as stop:
        summary = None
        print(f"[stopped after {stop}]", flush=True)
    print(f"[build took {time.perf_counter() - t0:.0f}s]", flush=True)
    ws = Workspace(out / "ws")
    print("| stage | item | status | seconds | GPU peak GiB of the stage | reason |")
    print("| --- | --- | --- | --- | --- | --- |")
    from pvtt.stage import STAGE_NAMES

    for stage in STAGE_NAMES:
        for record in ws.records(stage):
            print(f"| {stage} | {record.item_id} | {record.status.value} | {record.seconds} | "
                  f"{peaks.get(stage, 0):.1f} | {record.reason[:160]} |")
    for record in ws.records("synthesize"):
        m = record.metrics
        print(json.dumps({"pair": record.item_id, "seconds": record.seconds, "phases": m.get("phase_seconds"),
                          "strategy": m.get("strategy"), "insert": m.get("insert"),
                          "scores": m.get("scores")}, default=str))
        print(json.dumps({"pair": record.item_id, "metrics": record.metrics}, default=str)[:2000])
    for stage in ("caption", "instruct", "points"):
        for record in ws.records(stage):
            print(json.dumps({"stage": stage, "item": record.item_id, "seconds": record.seconds,
                              "metrics": record.metrics}, default=str)[:600])
    print(json.dumps({"runner": args.runner, "stage_wall_s": {k: round(v, 1) for k, v in walls.items()},
                      "loads_s": {k: round(v, 1) for k, v in loads.items()},
                      "peaks_gib": {k: round(v, 1) for k, v in peaks.items()}}))
    if summary is not None:
        print({stage: dict(counts) for stage, counts in summary.counts.items()})


if __name__ == "__main__":
    main()
