"""The real segment stage (``SegmentStage``, SAM2 backend) through the Ray runner on one GPU, against the local runner.

Random-weight SAM2.1-hiera-large (``full_size.sam2_video_large``) is saved with ``save_pretrained`` and named as
``segment.sam2.model``, so each worker loads it through pvtt's own loading code. A workspace holds ``--clips``
copies of one normalized clip (``--clip``), each with a locate record giving the reviewer box (``--box``,
fractions), so the stage does its whole work per item: read the clip, ``Sam2Segmenter.segment``, save the masks,
encode the mask video, write the record. ``segment.sam2.mask_threshold`` is far below any logit, so random weights
give non-empty masks.

1. ``LocalRunner`` (the GPU stage in this process, one worker) over ``--local-clips`` of the items;
2. ``RayRunner`` with ``runner.ray.actors_per_gpu: --actors`` over all ``--clips`` items, in a second workspace.

Each item's start and end time and worker pid are added to its record's metrics (a subclass of the stage), so
the steady state can be told from the first items of each worker, which pay the compile and, with CUDA graphs,
their recording: ``steady_fps`` counts the items after each worker's first ``--warmup`` (frames over the span
from the first of them starting to the last ending); ``wall_fps`` is every item's frames over the whole run,
Ray's start and the workers' setup and compile included.

    python3 benchmarks/bench_segment_ray.py --clip gpucat/ELEC003-s00-w00.mp4 --box 0.25 0.40 0.81 1.00 \
        --clips 32 --local-clips 6 --actors 4 --set segment.sam2.compile=true \
        segment.sam2.compile_mode=reduce-overhead
    python3 benchmarks/bench_segment_ray.py --clip gpucat/ELEC003-s00-w00.mp4 --box 0.25 0.40 0.81 1.00 \
        --clips 32 --local-clips 6 --actors 4 --mps --set segment.sam2.compile=true \
        segment.sam2.compile_mode=reduce-overhead
    # before / after a change in the same call: the same command from two checkouts, each its own --root, then
    # benchmarks/compare_masks.py /tmp/sr_old/ray /tmp/sr_new/ray (masks and object scores item by item)
    PYTHONPATH=OLD/src python3 OLD/benchmarks/bench_segment_ray.py --clip gpucat/ELEC003-s00-w00.mp4 --clips 48 \
        --local-clips 0 --actors 4 --root /tmp/sr_old --set segment.sam2.compile=true \
        segment.sam2.compile_mode=reduce-overhead
    # the gpu preset as it is (compile, reduce-overhead, 4 segment actors per GPU), nothing else set
    python3 benchmarks/bench_segment_ray.py --clip gpucat/ELEC003-s00-w00.mp4 --clips 48 --local-clips 5 --preset gpu
    python3 benchmarks/bench_segment_ray.py --clip CLIP --tiny --clips 3 --local-clips 2 --actors 1 \
        --weights /tmp/sam2_tiny   # the plumbing, on the CPU
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

from pvtt.stages.clip import SegmentStage  # noqa: E402


class TimedSegmentStage(SegmentStage):
    """The segment stage, each item's start, end and worker pid added to its metrics (pickled by value: defined in
    ``__main__``, so Ray's workers need not import this file)."""

    def run(self, clip, key):
        import os

        start = time.time()
        outputs, metrics = super().run(clip, key)
        return outputs, {**metrics, "t_start": start, "t_end": time.time(), "pid": os.getpid()}


def make_workspace(root: Path, clip_path: Path, count: int, box: list[float]):
    """A workspace with ``count`` items that are the same clip, each with a done locate record (the box)."""
    from pvtt.items import ClipItem
    from pvtt.media.video import read_video
    from pvtt.store import Workspace
    from pvtt.types import ItemRecord, Status

    shutil.rmtree(root, ignore_errors=True)
    (root / "clips").mkdir(parents=True)
    shutil.copy(clip_path, root / "clips" / "clip.mp4")
    ws = Workspace(root)
    frames, fps = read_video(clip_path)
    n, h, w = frames.shape[:3]
    x0, y0, x1, y1 = box
    items = []
    for i in range(count):
        item = ClipItem(id=f"clip{i:03d}", template_id="t", path="clips/clip.mp4", key=f"k{i}", fps=fps, width=w,
                        height=h, num_frames=n, shot_index=0, window_index=i, start_time=0.0)
        ws.write_record(ItemRecord("locate", item.id, f"locate{i}", Status.DONE,
                                   outputs={"box": [x0 * w, y0 * h, x1 * w, y1 * h], "confidence": 1.0,
                                            "source": "reviewer"}))
        items.append(item)
    return ws, items


def summarize(records, frames: int, wall: float, warmup: int) -> dict:
    done = [r for r in records if r.status.value == "done"]
    by_pid: dict[int, list] = {}
    for r in sorted(done, key=lambda r: r.metrics["t_start"]):
        by_pid.setdefault(r.metrics["pid"], []).append(r)
    steady = [r for rs in by_pid.values() for r in rs[warmup:]]
    row = {"items": len(records), "done": len(done), "workers": len(by_pid), "wall_s": round(wall, 1),
           "wall_fps": round(len(done) * frames / wall, 1),
           "items_per_worker": [len(rs) for rs in by_pid.values()],
           "first_item_s": [round(rs[0].seconds, 1) for rs in by_pid.values()]}
    if steady:
        span = max(r.metrics["t_end"] for r in steady) - min(r.metrics["t_start"] for r in steady)
        row.update(steady_items=len(steady), steady_s=round(span, 2), steady_fps=round(len(steady) * frames / span, 1),
                   steady_item_s_median=round(sorted(r.seconds for r in steady)[len(steady) // 2], 3))
    failed = [r.reason for r in records if r.status.value != "done"]
    if failed:
        row["not_done"] = failed[:3]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", required=True, help="a normalized clip (mp4)")
    parser.add_argument("--box", type=float, nargs=4, default=[0.25, 0.40, 0.81, 1.00], help="x0 y0 x1 y1, fractions")
    parser.add_argument("--clips", type=int, default=32, help="items (copies of the clip) through the Ray runner")
    parser.add_argument("--local-clips", type=int, default=6, help="items through the local runner (0: skip it)")
    parser.add_argument("--actors", type=int, default=None,
                        help="runner.ray.actors_per_gpu (default: the config's, so --preset gpu gives its {segment: 4})")
    parser.add_argument("--preset", default=None, help="a packaged preset under the overrides (e.g. gpu: its SAM2 "
                        "compile settings and runner.ray.actors_per_gpu)")
    parser.add_argument("--warmup", type=int, default=2, help="first items of each worker left out of steady_fps")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides, key=value")
    parser.add_argument("--weights", default="/tmp/sam2_random", help="where the random weights are saved")
    parser.add_argument("--root", default="/tmp/segment_ray")
    parser.add_argument("--mps", action="store_true",
                        help="run everything as clients of a CUDA MPS control daemon started here first (stopped at "
                             "the end): the actors' kernels can then share the GPU at once instead of taking turns")
    parser.add_argument("--tiny", action="store_true", help="the test suite's tiny SAM2 on the CPU (plumbing check)")
    parser.add_argument("--out", default="segment_ray.json")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.mps:  # before this process or any worker touches the GPU: all of them become its clients
            from bench_segment_share import mps

            stack.enter_context(mps())
        measure(args)


def measure(args: argparse.Namespace) -> None:
    import torch
    from full_size import sam2_video_large

    from pvtt.config import load_config
    from pvtt.runners.local import LocalRunner
    from pvtt.runners.ray import RayRunner

    weights = Path(args.weights)
    if not (weights / "config.json").is_file():
        t0 = time.perf_counter()
        if args.tiny:
            sys.path.insert(0, str(HERE.parent / "tests" / "models"))
            from tiny_models import tiny_sam2_video

            tiny_sam2_video().save_pretrained(weights)
        else:
            sam2_video_large().save_pretrained(weights)
        print(f"[weights saved in {time.perf_counter() - t0:.0f}s]", flush=True)
    config = load_config(None, ["segment.backend=sam2", f"segment.sam2.model={weights}", "segment.sam2.dtype=bf16",
                                "segment.sam2.mask_threshold=-10000", *args.set]
                         + (["segment.sam2.device=cpu", "segment.sam2.dtype=fp32"] if args.tiny else []),
                         preset=args.preset)
    actors = args.actors if args.actors is not None else config.runner.ray.actors_per_gpu
    gpus = torch.cuda.device_count()
    results = {"device": torch.cuda.get_device_name() if gpus else "cpu", "clip": args.clip, "settings": config.segment.sam2.model_dump(),
               "actors_per_gpu": actors, "preset": args.preset, "mps": args.mps}
    root = Path(args.root)
    frames = None
    if args.local_clips:
        ws, items = make_workspace(root / "local", Path(args.clip), args.local_clips, args.box)
        frames = items[0].num_frames
        stage = TimedSegmentStage(ws, config.segment)
        t0 = time.perf_counter()
        records = LocalRunner(workers=1, progress=False).run(stage, items)
        results["local"] = summarize(records, frames, time.perf_counter() - t0, args.warmup)
        print(json.dumps({"local": results["local"]}), flush=True)
        del stage
        torch.cuda.empty_cache()
    ws, items = make_workspace(root / "ray", Path(args.clip), args.clips, args.box)
    frames = items[0].num_frames
    stage = TimedSegmentStage(ws, config.segment)
    settings = config.runner.ray.model_copy(update={"actors_per_gpu": actors, "num_gpus": gpus, "object_store_mb": 300})
    t0 = time.perf_counter()
    with RayRunner(settings, progress=False) as runner:
        records = runner.run(stage, items)
        stats = runner.stats.get(stage.name)
    results["ray"] = {**summarize(records, frames, time.perf_counter() - t0, args.warmup), "runner_stats": stats}
    if "local" in results and "steady_fps" in results["local"] and "steady_fps" in results["ray"]:
        results["ray"]["steady_vs_local"] = round(results["ray"]["steady_fps"] / results["local"]["steady_fps"], 2)
    print(json.dumps({"ray": results["ray"]}), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
