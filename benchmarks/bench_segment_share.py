"""The SAM2 segment stage's throughput on one GPU shared by several workers (processes), against one worker.

One worker leaves the GPU idle much of the time: the per-frame memory path is launch-bound (the host issues
~37,500 small kernels per 78-frame clip) and reading the clip and encoding the mask video run on the CPU. So
N workers on one GPU (``runner.ray.actors_per_gpu: N`` in a Ray build) can clear more frames per second
together than one alone. This measures it: N processes, each with its own random-weight SAM2.1-hiera-large
(``full_size.sam2_video_large``, bf16; ``--compile-workers`` runs those counts again with
``segment.sam2.compile`` in ``--compile-mode``), each with its share of the host's cores for threads, each doing
the stage's whole work per clip — read the clip (the stage's reader), ``Sam2Segmenter.segment``, ``save_masks``, the mask
video (``write_mp4``) — for ``--clips`` clips after one warm-up clip (two with CUDA graphs: the first clip
compiles and warms up, the second records the graphs); all start together (a barrier).
Aggregate frames/s = N x clips x frames / (last end - first start). The baseline is N = 1 in the same run.

    python3 benchmarks/bench_segment_share.py --clip gpucat/ELEC003-s00-w00.mp4 --workers 1 2 4 6 --clips 6 \
        --compile-workers 4
    python3 benchmarks/bench_segment_share.py --clip gpucat/ELEC003-s00-w00.mp4 --workers 1 --clips 5 \
        --compile-workers 4 --compile-mode reduce-overhead
    python3 benchmarks/bench_segment_share.py --clip gpucat/ELEC003-s00-w00.mp4 --workers 1 --clips 5 \
        --compile-workers 4 --compile-mode reduce-overhead --sets memory_attention_kernel=flash --mps-workers 4

``--sets`` gives the compiled workers other ``segment.sam2`` settings; ``--mps-workers`` runs compiled workers once
more under CUDA MPS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path
from queue import Empty

HERE = Path(__file__).resolve().parent


def worker(rank: int, n: int, args: argparse.Namespace, barrier, queue) -> None:
    sys.path.insert(0, str(HERE.parent / "src"))
    sys.path.insert(0, str(HERE))
    import os

    import cv2
    import torch

    # the host's cores split between the workers (as Ray's num_cpus would): N workers each with every core's
    # worth of threads fight over them
    threads = max(1, (os.cpu_count() or 1) // n)
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    from full_size import sam2_video_large

    from pvtt.artifacts import save_masks, write_mp4
    from pvtt.media.video import read_video
    from pvtt.segment.sam2 import Sam2Segmenter
    from pvtt.stages.clip import mask_frames
    from pvtt.types import Box, Clip

    torch.manual_seed(rank)
    sets = dict(kv.split("=", 1) for kv in args.sets) if args.compile else {}
    seg = Sam2Segmenter(device="cuda", dtype="bf16", batch_size=args.batch, mask_threshold=-1e4,
                        compile=args.compile, compile_mode=args.compile_mode, **sets)
    seg.setup(model=sam2_video_large().to("cuda"))
    out = Path(f"/tmp/segment_share/{rank}")
    out.mkdir(parents=True, exist_ok=True)
    x0, y0, x1, y1 = args.box

    def one_clip() -> int:
        frames, fps = read_video(args.clip)
        clip = Clip("clip", frames, fps)
        box = Box(x0 * clip.width, y0 * clip.height, x1 * clip.width, y1 * clip.height)
        masks = seg.segment(clip, box)
        save_masks(out / "masks.npz", masks)
        write_mp4(out / "masks.mp4", mask_frames(masks.data), clip.fps, crf=0)
        return clip.num_frames

    for _ in range(2 if args.compile and args.compile_mode == "reduce-overhead" else 1):
        one_clip()  # warm-up (and, with --compile, the compilation; with CUDA graphs, their recording)
    torch.cuda.synchronize()
    barrier.wait()
    start = time.perf_counter()
    frames = sum(one_clip() for _ in range(args.clips))
    end = time.perf_counter()
    queue.put({"rank": rank, "start": start, "end": end, "frames": frames,
               "peak_gib": round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)})


def run(n: int, args: argparse.Namespace) -> dict:
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, n, args, barrier, queue)) for r in range(n)]
    for p in procs:
        p.start()
    rows = []
    while len(rows) < n:  # a worker that dies would leave the others at the barrier: stop them all
        try:
            rows.append(queue.get(timeout=10))
        except Empty:
            if any(p.exitcode not in (None, 0) for p in procs):
                for p in procs:
                    p.terminate()
                raise RuntimeError(f"a worker of {n} failed (exit codes {[p.exitcode for p in procs]})") from None
    for p in procs:
        p.join()
    wall = max(r["end"] for r in rows) - min(r["start"] for r in rows)
    frames = sum(r["frames"] for r in rows)
    return {"workers": n, "clips_each": args.clips, "frames": frames, "wall_s": round(wall, 2),
            "aggregate_fps": round(frames / wall, 1),
            "per_worker_fps": [round(r["frames"] / (r["end"] - r["start"]), 1) for r in rows],
            "peak_gib_each": max(r["peak_gib"] for r in rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", required=True, help="a normalized clip (mp4)")
    parser.add_argument("--box", type=float, nargs=4, default=[0.25, 0.40, 0.81, 1.00], help="x0 y0 x1 y1, fractions")
    parser.add_argument("--batch", type=int, default=8, help="segment.sam2.batch_size")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--clips", type=int, default=6, help="timed clips per worker (after one warm-up clip)")
    parser.add_argument("--compile-workers", type=int, nargs="*", default=[],
                        help="after the eager runs, these worker counts again with segment.sam2.compile: true "
                             "(each worker compiles its own model first, ~3 min)")
    parser.add_argument("--compile-mode", default="default",
                        choices=["default", "reduce-overhead", "max-autotune-no-cudagraphs"],
                        help="segment.sam2.compile_mode of the --compile-workers runs")
    parser.add_argument("--sets", nargs="*", default=[],
                        help="segment.sam2 settings of the compiled workers, key=value (e.g. "
                             "memory_attention_kernel=flash encoder_math_attention_tokens=16)")
    parser.add_argument("--mps-workers", type=int, nargs="*", default=[],
                        help="last, these counts of compiled workers again under CUDA MPS (a control daemon started "
                             "here for the run and stopped after it), whose clients' kernels can share the GPU at "
                             "once instead of taking turns")
    parser.add_argument("--out", default="segment_share.json")
    args = parser.parse_args()
    args.compile = False
    results = []
    for n in sorted(set(args.workers) | {1}):
        row = run(n, args)
        base = results[0]["aggregate_fps"] if results else row["aggregate_fps"]
        row["vs_one_worker"] = round(row["aggregate_fps"] / base, 2)
        results.append(row)
        print(json.dumps(row), flush=True)
    base = results[0]["aggregate_fps"]
    for n in args.compile_workers:
        args.compile = True
        row = run(n, args)
        row.update(compiled=args.compile_mode, vs_one_worker=round(row["aggregate_fps"] / base, 2))
        results.append(row)
        print(json.dumps(row), flush=True)
    for n in args.mps_workers:
        args.compile = True
        with mps():
            row = run(n, args)
        row.update(compiled=args.compile_mode, mps=True, vs_one_worker=round(row["aggregate_fps"] / base, 2))
        results.append(row)
        print(json.dumps(row), flush=True)
    Path(args.out).write_text(json.dumps({"clip": args.clip, "sets": args.sets, "runs": results}, indent=1))


@contextlib.contextmanager
def mps():
    """A CUDA MPS control daemon for the duration (the workers, spawned after it starts, become its clients)."""
    env = {"CUDA_MPS_PIPE_DIRECTORY": "/tmp/mps_pipe", "CUDA_MPS_LOG_DIRECTORY": "/tmp/mps_log"}
    for path in env.values():
        Path(path).mkdir(parents=True, exist_ok=True)
    os.environ.update(env)
    subprocess.run(["nvidia-cuda-mps-control", "-d"], check=True)
    try:
        yield
    finally:  # the servers it started (one while clients were connected: proof that they went through MPS)
        servers = subprocess.run(["nvidia-cuda-mps-control"], input="get_server_list\n", text=True,
                                 capture_output=True, check=False).stdout.split()
        print(json.dumps({"mps_servers": servers}), flush=True)
        # quit waits for the clients to go: a process that is one itself (bench_segment_ray.py --mps) must not
        # wait for it (it hung there until killed); the daemon then quits once that process has exited
        quit_ = subprocess.Popen(["nvidia-cuda-mps-control"], stdin=subprocess.PIPE, text=True)
        try:
            quit_.communicate("quit\n", timeout=10)
        except subprocess.TimeoutExpired:
            pass
        time.sleep(2)
        for key in env:
            os.environ.pop(key, None)


if __name__ == "__main__":
    main()
