"""I2VEdit coarse + fine (``propagate.backend: i2vedit``) at full size on the GPU, random weights.

One 101-frame clip (720x960 portrait by default, letterboxed to SVD's 576x1024) in 16-frame chunks:

1. motion LoRA training: s/step from two runs of 5 and 15 steps on one chunk (t15 - t5) / 10, the fixed part
   (VAE/CLIP encoding, LoRA to the host) from the 5-step run; per clip (one LoRA) and per chunk (one per chunk)
   extrapolated to ``train_steps`` (250);
2. the fine stage for the whole clip with the chunk LoRAs: seconds per phase (VAE encode with SARP, inversion,
   edit, decode) per chunk, the attention store's size, GPU peak;
3. the coarse stage alone (``inversion: false``: the same chunks denoised from noise, no attention control)
   in the same run, the baseline of the ratio;
4. FLOPs of one inversion step and one guided edit step (``FlopCounterMode`` over a 1-step chunk), for the
   achieved TFLOP/s against the card's ~790 bf16.

Speed and memory do not depend on weight values; the frames are meaningless.

    python3 benchmarks/bench_i2vedit.py --out results.json [--frames 101] [--store-gib 96]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_generative import clip_of, svd_pipeline  # noqa: E402  (sets up paths and the PyAV stub)

from pvtt.propagate import i2vedit  # noqa: E402
from pvtt.propagate.i2vedit import I2VEditPropagator  # noqa: E402
from pvtt.types import Box, Clip, InsertResult  # noqa: E402


def sync_time() -> float:
    torch.cuda.synchronize()
    return time.perf_counter()


def gib(n: float) -> float:
    return round(n / 2 ** 30, 2)


def timed(backend, phases, name):
    """Wrap ``backend.<name>`` so every call adds its synchronised seconds to ``phases[name]``."""
    real = getattr(backend, name)

    def wrapper(*args, **kwargs):
        start = sync_time()
        out = real(*args, **kwargs)
        phases[name].append(sync_time() - start)
        return out

    setattr(backend, name, wrapper)


def insert_of(clip: Clip):
    h, w = clip.height, clip.width
    mask = np.zeros((h, w), bool)
    mask[h // 3: 2 * h // 3, w // 4: 3 * w // 4] = True
    frame0 = clip.frames[0].copy()
    frame0[mask] = (frame0[mask] * 0.3 + np.array([200, 40, 40]) * 0.7).astype(np.uint8)
    box = Box(w // 4, h // 3, 3 * w // 4, 2 * h // 3)
    return InsertResult(frame=frame0, alpha=mask.astype(np.float32), box=box), np.repeat(mask[None], clip.num_frames, 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=101)
    parser.add_argument("--height", type=int, default=960)
    parser.add_argument("--width", type=int, default=720)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--train-steps", type=int, default=250, help="LoRA steps the per-clip figure is for")
    parser.add_argument("--store-gib", type=lambda v: v if v == "auto" else float(v), default="auto",
                        help="i2vedit.store_gib (default auto, the setting's default)")
    parser.add_argument("--skip-lora", action="store_true", help="no LoRA timing; the edit runs without LoRAs")
    parser.add_argument("--videoswap", action="store_true", help="time svd-points (VideoSwap-style) instead")
    parser.add_argument("--spill", type=float, nargs="*", default=None,
                        help="only the fine stage, once per store_gib given (the store's host spill vs none)")
    parser.add_argument("--difference-kernel", default="auto", choices=["auto", "triton", "torch"],
                        help="how adaptive preservation computes D (i2vedit.difference_kernel)")
    parser.add_argument("--out", default="bench_i2vedit.json")
    args = parser.parse_args()
    if args.videoswap:
        return bench_videoswap(args)
    if args.spill:
        return bench_spill(args)

    results: dict = {"device": torch.cuda.get_device_name(), "frames": args.frames,
                     "clip": f"{args.width}x{args.height}", "steps": args.steps,
                     "difference_kernel": args.difference_kernel}
    pipe = svd_pipeline()
    clip = clip_of(args.frames, args.height, args.width)
    settings = dict(device="cuda", dtype="bf16", inference_steps=args.steps, store_gib=args.store_gib,
                    difference_kernel=args.difference_kernel)
    backend = I2VEditPropagator(**settings)
    backend.setup(model=pipe)
    spans = backend.chunks(clip.num_frames)
    results["chunks"] = len(spans)
    results["store_budget_gib"] = gib(backend.controller.store.budget)
    print(f"{len(spans)} chunks: {spans}", flush=True)

    # 1. LoRA training
    loras = None
    if not args.skip_lora:
        chunk = Clip("chunk", clip.frames[: spans[0][1]], clip.fps)
        runs = {}
        for steps in (2, 5, 15):  # the first run warms up (cuDNN plans, allocator)
            backend.settings.train_steps = steps
            start = sync_time()
            state = backend.train_lora(chunk)
            runs[steps] = sync_time() - start
        per_step = (runs[15] - runs[5]) / 10
        fixed = runs[5] - 5 * per_step
        results["lora"] = {"s_per_step": round(per_step, 4), "fixed_s": round(fixed, 2),
                           "per_clip_s": round(fixed + args.train_steps * per_step, 1),
                           "per_chunk_scope_s": round(len(spans) * (fixed + args.train_steps * per_step), 1),
                           "peak_gib": gib(torch.cuda.max_memory_allocated())}
        print(json.dumps(results["lora"]), flush=True)
        loras = [state] * len(spans)  # one trained state per chunk (timing does not depend on its values)

    # 2. the fine stage for the whole clip
    insert, masks = insert_of(clip)
    phases = defaultdict(list)
    for name in ("encode", "invert", "denoise", "decode"):
        timed(backend, phases, name)
    store_peak = {"bytes": 0, "on_device": 0}
    real_drop = backend.controller.store.drop

    def drop(match):  # the store is largest right before a chunk's records are dropped
        store = backend.controller.store
        store_peak["bytes"] = max(store_peak["bytes"], store.bytes)
        store_peak["on_device"] = max(store_peak["on_device"], store.on_device)
        real_drop(match)

    backend.controller.store.drop = drop
    torch.cuda.reset_peak_memory_stats()
    start = sync_time()
    result = backend.propagate(clip, clip.frames, masks, None, insert, lora=loras)
    fine = sync_time() - start
    results["fine"] = {"seconds": round(fine, 1), "peak_gib": gib(torch.cuda.max_memory_allocated()),
                       "store_peak_gib": gib(store_peak["bytes"]), "store_on_device_gib": gib(store_peak["on_device"]),
                       "phases_s": {k: [round(x, 2) for x in v] for k, v in phases.items()},
                       "phase_totals_s": {k: round(sum(v), 1) for k, v in phases.items()},
                       "preserved_share": result.info.get("preserved_share"), "shape": list(result.frames.shape)}
    print(json.dumps(results["fine"]), flush=True)

    # 3. the coarse stage alone, same chunks (the baseline of the ratio)
    coarse = I2VEditPropagator(**settings, inversion=False)
    coarse.setup(model=pipe)
    torch.cuda.reset_peak_memory_stats()
    start = sync_time()
    coarse.propagate(clip, clip.frames, masks, None, insert, lora=loras)
    base = sync_time() - start
    results["coarse"] = {"seconds": round(base, 1), "peak_gib": gib(torch.cuda.max_memory_allocated())}
    results["fine_over_coarse"] = round(fine / base, 2)
    print(json.dumps(results["coarse"]), flush=True)

    # 4. FLOPs of one inversion step and one guided edit step (16 frames), and the achieved rate; the attention
    #    difference runs eager here (the counter sees neither compiled code nor the Triton kernel); the fused
    #    kernel computes each Q Kᵀ product twice (two passes), the eager path once: counted once here
    i2vedit._rows_kernel = lambda device: i2vedit._difference_rows
    backend.controller.kernel = "torch"
    backend.settings.inference_steps = 2  # the inversion schedule needs two steps; counted per step below
    frames16 = backend.letterbox(clip.height, clip.width).to_model(clip.frames[:spans[0][1]])
    with FlopCounterMode(display=False) as counter:
        latents = backend.encode(frames16)
    encode_flops = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        inverted = backend.invert(frames16, latents)
    invert_flops = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        backend.denoise(inverted, frames16[0])
    edit_flops = counter.get_total_flops()
    backend.controller.store.drop(lambda key: True)
    invert_flops, edit_flops = invert_flops / 2, edit_flops / 2
    results["flops"] = {"invert_step_tflop": round(invert_flops / 1e12, 2), "edit_step_tflop": round(edit_flops / 1e12, 2),
                        "encode_chunk_tflop": round(encode_flops / 1e12, 2)}
    chunks16 = sum(stop - start for start, stop in spans) / (spans[0][1] - spans[0][0])  # the last chunk is shorter
    results["tflops"] = {
        "invert": round(invert_flops * args.steps * chunks16 / sum(phases["invert"]) / 1e12, 1),
        "edit": round(edit_flops * args.steps * chunks16 / sum(phases["denoise"]) / 1e12, 1),
    }
    print(json.dumps({"flops": results["flops"], "tflops": results["tflops"]}), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))


def bench_spill(args) -> None:
    """The fine stage without LoRAs at each ``store_gib`` of ``--spill``: what keeping the excess of the
    stored source attention in pinned host memory costs, against keeping it all on the GPU (same run)."""
    results: dict = {"device": torch.cuda.get_device_name(), "frames": args.frames, "runs": []}
    pipe = svd_pipeline()
    clip = clip_of(args.frames, args.height, args.width)
    insert, masks = insert_of(clip)
    for store_gib in args.spill:
        backend = I2VEditPropagator(device="cuda", dtype="bf16", inference_steps=args.steps, store_gib=store_gib)
        backend.setup(model=pipe)
        phases = defaultdict(list)
        for name in ("invert", "denoise"):
            timed(backend, phases, name)
        torch.cuda.reset_peak_memory_stats()
        start = sync_time()
        backend.propagate(clip, clip.frames, masks, None, insert, lora=[])
        run = {"store_gib": store_gib, "seconds": round(sync_time() - start, 1),
               "peak_gib": gib(torch.cuda.max_memory_allocated()),
               "phases_s": {k: [round(x, 2) for x in v] for k, v in phases.items()}}
        results["runs"].append(run)
        print(json.dumps(run), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))


def bench_videoswap(args) -> None:
    """``svd-points`` on the same clip: seconds per phase (DIFT-style point features, MLP training, A->B point
    matching, generation), GPU peak; the coarse stage's generation in the same run is the ratio's baseline."""
    from pvtt.propagate.videoswap import SvdPointsPropagator
    from pvtt.types import Tracks

    results: dict = {"device": torch.cuda.get_device_name(), "frames": args.frames, "clip": f"{args.width}x{args.height}"}
    pipe = svd_pipeline()
    clip = clip_of(args.frames, args.height, args.width)
    insert, masks = insert_of(clip)
    box = insert.box
    xs, ys = np.meshgrid(np.linspace(box.x0 + 10, box.x1 - 10, 4), np.linspace(box.y0 + 10, box.y1 - 10, 3))
    start_points = np.stack([xs.ravel(), ys.ravel()], -1).astype(np.float32)
    points = np.stack([start_points + [t * 0.8, t * 0.3] for t in range(clip.num_frames)])
    tracks = Tracks(points, np.ones(points.shape[:2], bool))
    backend = SvdPointsPropagator(device="cuda", dtype="bf16", inference_steps=args.steps)
    backend.setup(model=pipe)
    phases = defaultdict(list)
    for name in ("point_embeddings", "train_points", "match_points", "generate_points"):
        timed(backend, phases, name)
    torch.cuda.reset_peak_memory_stats()
    start = sync_time()
    result = backend.propagate(clip, clip.frames, masks, tracks, insert)
    total = sync_time() - start
    results["svd_points"] = {"seconds": round(total, 1), "peak_gib": gib(torch.cuda.max_memory_allocated()),
                             "phase_totals_s": {k: round(sum(v), 1) for k, v in phases.items()},
                             "train_steps": backend.settings.train_steps,
                             "matched": result.info.get("matched"), "shape": list(result.frames.shape)}
    print(json.dumps(results["svd_points"]), flush=True)
    base = I2VEditPropagator(device="cuda", dtype="bf16", inference_steps=args.steps, inversion=False,
                             num_frames=backend.settings.num_frames)
    base.setup(model=pipe)
    start = sync_time()
    base.propagate(clip, clip.frames, masks, None, insert, lora=[])
    results["coarse_same_chunks_s"] = round(sync_time() - start, 1)
    results["svd_points_over_coarse"] = round(total / results["coarse_same_chunks_s"], 2)
    print(json.dumps({k: results[k] for k in ("coarse_same_chunks_s", "svd_points_over_coarse")}), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
