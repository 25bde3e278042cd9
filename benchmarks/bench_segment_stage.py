"""The SAM2 segment stage on a real clip on the GPU: where its seconds go, and the backend against its earlier loop.

Random-weight SAM2.1-hiera-large at full size (``full_size.sam2_video_large``), bf16, on a normalized dev clip
(``--clip``, e.g. ELEC003's 78 frames at 720x784, read with the reader the stage uses) and the clip's reviewer box
(``--box``, fractions). ``mask_threshold`` is set far below any logit so random weights give non-empty masks
(the stage would reject an empty first mask); speed does not depend on the masks' values except the mask video's
encoding, which is timed on an ellipse moving through the clip instead.

Phases of ``SegmentStage.run`` timed one by one (median of ``--repeats`` after a warm-up):
read the clip, ``Sam2Segmenter.segment``, ``save_masks``, ``write_mp4`` of the mask video. The baseline of the
ratio is the backend's previous loop in the same run (``segment_per_frame_copy``: each frame's mask copied to the
host and its score read as it comes, which makes the host wait for the GPU every frame). ``--profile`` adds a
torch profiler summary of the current loop (CPU vs GPU time, synchronisations).

``--compile`` then times ``segment.sam2.compile`` for each of ``--compile-mode`` (the same model, recompiled
per mode) and checks it against eager on the clip: every frame's low-resolution mask logits (their largest
difference and the fraction of pixels on the same side of 0, i.e. the masks at threshold 0; random weights may
call the object absent, and then every logit is SAM2's -1024) and object score, and the memory features and
object pointers the session keeps (what CUDA graphs would corrupt if their outputs were kept uncopied).
Compiled, the backend copies transformers' per-frame ``torch.tensor(..., device=cuda)`` without a host wait
(eager, it keeps the waits): each compiled mode is also timed with the waits (``with_host_waits_s``, between two
timings without), and the eager loop without them (``eager_without_host_waits``).

    python3 benchmarks/bench_segment_stage.py --clip gpucat/ELEC003-s00-w00.mp4 --box 0.25 0.40 0.81 1.00 --out seg.json
    python3 benchmarks/bench_segment_stage.py --clip gpucat/ELEC003-s00-w00.mp4 --compile \
        --compile-mode reduce-overhead default
    python3 benchmarks/bench_segment_stage.py --clip gpucat/ELEC003-s00-w00.mp4 --compile \
        --compile-mode reduce-overhead --flops
    python3 benchmarks/bench_segment_stage.py --clip gpucat/ELEC003-s00-w00.mp4 --compile \
        --compile-mode reduce-overhead --skip-host-waits --profile --variants \
        memory_attention_kernel=sdpa,encoder_math_attention_tokens=0 \
        memory_attention_kernel=flash,encoder_math_attention_tokens=0 base

``--variants`` compiles and times each mode once per set of ``segment.sam2`` settings (``base``: the defaults; the
first variant is the baseline of ``vs_first_variant``, and each variant's logits, scores, memories and pointers are
also compared with the first's, ``vs_first_variant_check``), e.g. the attention kernels (``memory_attention_kernel``,
``encoder_math_attention_tokens``), ``cache_position_encodings``, ``encoder_gelu`` or ``batch_size`` (over
``--batch``); the stage's phases and ``--profile`` then use the last.

    python3 benchmarks/bench_segment_stage.py --clip gpucat/ELEC003-s00-w00.mp4 --box 0.25 0.40 0.81 1.00 --batch 8 \
        --compile --compile-mode reduce-overhead --skip-host-waits --gpu-time --profile --variants \
        cache_position_encodings=false,encoder_gelu=exact base batch_size=16

``--flops`` counts the eager call's FLOPs on the GPU, where ``FlopCounterMode`` sees the attention kernels (on the
CPU, ``benchmarks/sam2_flops.py``, it does not count PyTorch's CPU flash attention).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))
from bench_difference import timed  # noqa: E402  (median of repeats after a warm-up, synchronised)
from full_size import sam2_video_large  # noqa: E402

from pvtt.artifacts import save_masks, write_mp4  # noqa: E402
from pvtt.media.video import read_video  # noqa: E402
from pvtt.segment import sam2 as sam2_backend  # noqa: E402
from pvtt.segment.sam2 import Sam2Segmenter  # noqa: E402
from pvtt.stages.clip import mask_frames  # noqa: E402
from pvtt.types import Box, Clip, Masks  # noqa: E402


def segment_per_frame_copy(seg: Sam2Segmenter, clip: Clip, box: Box) -> Masks:
    """The backend's loop before 2026-12-02: per frame, the mask to the host and the score read at once."""
    import torch.nn.functional as F

    frames, height, width = clip.frames, clip.height, clip.width
    chunk, count = seg.settings.batch_size, clip.num_frames
    session = seg.session(clip, box)
    masks = np.zeros((count, height, width), bool)
    confidence = np.zeros(count, np.float32)
    with torch.inference_mode():
        seg._encode_chunk(session, frames[0:chunk], 0)
        for out in seg.model.propagate_in_video_iterator(inference_session=session, start_frame_idx=0):
            t = int(out.frame_idx)
            if (t + 1) % chunk == 0 and t + 1 < count:
                seg._encode_chunk(session, frames[t + 1:t + 1 + chunk], t + 1)
            logits = F.interpolate(out.pred_masks[:1].float(), size=(height, width), mode="bilinear",
                                   align_corners=False)[0, 0]
            masks[t] = (logits > seg.settings.mask_threshold).cpu().numpy()
            if out.object_score_logits is not None:
                confidence[t] = float(torch.sigmoid(out.object_score_logits.float()).reshape(-1)[0])
    return Masks(masks, confidence)


def segment_logits(seg: Sam2Segmenter, clip: Clip, box: Box) -> dict[str, torch.Tensor]:
    """Every frame's low-resolution mask logits and object score logit, and what the session kept of every
    tracked frame for the next ones — its memory features and object pointer (float32, on the device)."""
    chunk, count = seg.settings.batch_size, clip.num_frames
    session = seg.session(clip, box)
    logits, scores = [], []
    with torch.inference_mode():
        seg._encode_chunk(session, clip.frames[0:chunk], 0)
        for out in seg.model.propagate_in_video_iterator(inference_session=session, start_frame_idx=0):
            t = int(out.frame_idx)
            if (t + 1) % chunk == 0 and t + 1 < count:
                seg._encode_chunk(session, clip.frames[t + 1:t + 1 + chunk], t + 1)
            logits.append(out.pred_masks[:1].float().clone())
            scores.append(out.object_score_logits.float().reshape(-1)[:1].clone())
        kept = session.output_dict_per_obj[0]["non_cond_frame_outputs"]
        frames = sorted(kept)
        return {"logits": torch.cat(logits), "scores": torch.cat(scores),
                "memories": torch.stack([kept[t]["maskmem_features"].float() for t in frames]),
                "pointers": torch.stack([kept[t]["object_pointer"].float() for t in frames])}


def compare_logits(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict:
    """How far ``a`` is from ``b``: the largest differences, each beside the typical size of what differs."""
    la, lb = a["logits"], b["logits"]
    row = {"logit_max_diff": round(float((la - lb).abs().max()), 4),
           "mask_agreement_at_0": round(float(((la > 0) == (lb > 0)).float().mean()), 5),
           "mask_fraction_at_0": round(float((la > 0).float().mean()), 4),
           "score_logit_max_diff": round(float((a["scores"] - b["scores"]).abs().max()), 4),
           "score_logits_min_max": [round(float(a["scores"].min()), 3), round(float(a["scores"].max()), 3)]}
    for key in ("memories", "pointers"):
        row[f"{key}_max_diff"] = round(float((a[key] - b[key]).abs().max()), 4)
        row[f"{key}_mean_abs"] = round(float(b[key].abs().mean()), 4)
    return row


@contextlib.contextmanager
def host_waits(seg: Sam2Segmenter, waits: bool):
    """The backend's loop with (``waits``) or without transformers' and the preprocessing's copies that make the
    host wait (the backend leaves them out when compiled on a GPU)."""
    before = seg.model.__dict__.pop("_process_object_pointers", None)
    if not waits:
        seg.model._process_object_pointers = sam2_backend._without_host_wait(seg.model._process_object_pointers)
    try:
        yield
    finally:
        seg.model.__dict__.pop("_process_object_pointers", None)
        if before is not None:
            seg.model._process_object_pointers = before


def gpu_time_ms(call) -> dict:
    """Device time of one ``call()`` under the torch profiler: every kernel's and copy's time summed (ms), and the
    largest entries."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        call()
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.self_device_time_total > 0]
    top = sorted(events, key=lambda e: -e.self_device_time_total)[:8]
    return {"total": round(sum(e.self_device_time_total for e in events) / 1e3, 1),
            "top": [[e.key[:80], e.count, round(e.self_device_time_total / 1e3, 1)] for e in top]}


def ellipse_masks(count: int, height: int, width: int) -> Masks:
    yy, xx = np.mgrid[:height, :width]
    data = np.stack([((xx - width * (0.4 + 0.002 * t)) / (width * 0.2)) ** 2 + ((yy - height * 0.6) / (height * 0.25)) ** 2
                     <= 1 for t in range(count)])
    return Masks(data, np.ones(count, np.float32))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clip", required=True, help="a normalized clip (mp4)")
    parser.add_argument("--box", type=float, nargs=4, default=[0.25, 0.40, 0.81, 1.00], help="x0 y0 x1 y1, fractions")
    parser.add_argument("--batch", type=int, default=16, help="segment.sam2.batch_size (its default)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--compile", action="store_true", help="also time segment.sam2.compile: true (same model)")
    parser.add_argument("--compile-mode", nargs="+", default=["default"],
                        choices=["default", "reduce-overhead", "max-autotune-no-cudagraphs"],
                        help="segment.sam2.compile_mode values timed with --compile, in this order")
    parser.add_argument("--variants", nargs="+", default=["base"],
                        help="with --compile, each mode is timed once per variant: 'base' (the settings' defaults) or "
                             "comma-separated segment.sam2 settings, e.g. memory_attention_kernel=sdpa,"
                             "encoder_math_attention_tokens=0 (the same model, recompiled per variant)")
    parser.add_argument("--skip-host-waits", action="store_true",
                        help="with --compile, leave out the timings with the host waits (two more timings a variant)")
    parser.add_argument("--flops", action="store_true",
                        help="count the eager segment call's FLOPs on the GPU (FlopCounterMode; attention included)")
    parser.add_argument("--gpu-time", action="store_true",
                        help="with --compile, each variant's GPU time per clip: the device time of one segment call "
                             "under the torch profiler (the sum over its kernels and copies)")
    parser.add_argument("--out", default="segment_stage.json")
    args = parser.parse_args()

    t0 = time.perf_counter()
    frames, _ = read_video(args.clip)
    read_s = time.perf_counter() - t0
    clip = Clip("clip", frames, 20.0)
    h, w = clip.height, clip.width
    x0, y0, x1, y1 = args.box
    box = Box(x0 * w, y0 * h, x1 * w, y1 * h)
    seg = Sam2Segmenter(device="cuda", dtype="bf16", batch_size=args.batch, mask_threshold=-1e4)
    t0 = time.perf_counter()
    seg.setup(model=sam2_video_large().to("cuda"))
    load_s = time.perf_counter() - t0
    n = clip.num_frames
    results = {"device": torch.cuda.get_device_name(), "clip": args.clip, "frames": n, "size": [w, h],
               "read_s": round(read_s, 3), "model_to_gpu_s": round(load_s, 2)}
    base_s, _ = timed(lambda: segment_per_frame_copy(seg, clip, box), args.repeats)
    with host_waits(seg, waits=False):
        waitless_s, _ = timed(lambda: seg.segment(clip, box), args.repeats)
        waitless_logits = segment_logits(seg, clip, box)
    torch.cuda.reset_peak_memory_stats()
    now_s, masks = timed(lambda: seg.segment(clip, box), args.repeats)
    eager_logits = segment_logits(seg, clip, box)
    results["segment"] = {
        "per_frame_copy_s (baseline)": round(base_s, 3), "per_frame_copy_fps": round(n / base_s, 1),
        "device_masks_s": round(now_s, 3), "device_masks_fps": round(n / now_s, 1),
        "speedup": round(base_s / now_s, 2), "peak_gib": round(torch.cuda.max_memory_allocated() / 2 ** 30, 2),
        "eager_without_host_waits_s": round(waitless_s, 3), "without_host_waits_vs_eager": round(now_s / waitless_s, 2),
        "without_host_waits_check": compare_logits(waitless_logits, eager_logits)}
    print(json.dumps(results["segment"]), flush=True)
    if args.flops:
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            seg.segment(clip, box)
        flops = counter.get_total_flops()
        results["flops"] = {"tflop_per_clip": round(flops / 1e12, 2), "tflop_per_frame": round(flops / n / 1e12, 3),
                            "by_op": {str(k): round(v / 1e12, 2) for k, v in counter.get_flop_counts()["Global"].items()}}
        print(json.dumps(results["flops"]), flush=True)
    if args.compile:  # after the eager timings: compiling swaps the shared model's modules in place
        from torch._dynamo.utils import counters

        names = ("vision_encoder", "memory_attention", "memory_encoder", "mask_decoder")
        eager_modules = {name: getattr(seg.model, name) for name in names}
        configs = {m: m.config for m in seg.model.modules() if hasattr(m, "config")}  # attention settings swap them
        last, first_logits = None, None
        for mode, variant in [(m, v) for m in args.compile_mode for v in args.variants]:
            for name, module in eager_modules.items():  # the eager modules back, then compiled in this mode
                setattr(seg.model, name, module)
            for module, config in configs.items():
                module.config = config
            torch._dynamo.reset()
            counters.clear()
            sets = dict(kv.split("=", 1) for kv in variant.split(",")) if variant != "base" else {}
            compiled = Sam2Segmenter(device="cuda", dtype="bf16", mask_threshold=-1e4, compile=True,
                                     compile_mode=mode, **{"batch_size": args.batch, **sets})
            torch.cuda.reset_peak_memory_stats()
            try:
                t0 = time.perf_counter()
                compiled.setup(model=seg.model)
                compiled.segment(clip, box)
                torch.cuda.synchronize()
                first_s = time.perf_counter() - t0
                compiled_s, compiled_masks = timed(lambda: compiled.segment(clip, box), args.repeats)
                logits = segment_logits(compiled, clip, box)
                check = compare_logits(logits, eager_logits)
                first_logits = first_logits if first_logits is not None else logits
                check_first = compare_logits(logits, first_logits)  # against the first variant (its own baseline)
                waits_s = again_s = float("nan")
                if not args.skip_host_waits:
                    with host_waits(compiled, waits=True):  # the same compiled model with the copies that wait
                        waits_s, _ = timed(lambda: compiled.segment(clip, box), args.repeats)
                    again_s, _ = timed(lambda: compiled.segment(clip, box), args.repeats)
            except Exception as error:  # noqa: BLE001  (one mode failing leaves the others' numbers)
                traceback.print_exc()
                results["segment"].setdefault("compiled", []).append({"mode": mode, "variant": variant,
                                                                      "error": repr(error)[:500]})
                continue
            gpu_ms = gpu_time_ms(lambda: compiled.segment(clip, box)) if args.gpu_time else None
            base = next((r["s"] for r in results["segment"].get("compiled", []) if r.get("mode") == mode
                         and r.get("variant") == args.variants[0] and "s" in r), compiled_s)
            row = {"mode": mode, "variant": variant,
                   "switched_modules": {**compiled.attention_modules, **compiled.fused_modules},
                   "vs_first_variant": round(base / compiled_s, 3), "gpu_ms_per_clip": gpu_ms,
                   "first_clip_s": round(first_s, 1), "s": round(compiled_s, 3),
                   "fps": round(n / compiled_s, 1), "vs_eager": round(now_s / compiled_s, 2),
                   "with_host_waits_s": round(waits_s, 3), "again_without_s": round(again_s, 3),
                   "peak_gib": round(torch.cuda.max_memory_allocated() / 2 ** 30, 2),
                   "score_max_diff_vs_eager": round(float(np.abs(compiled_masks.confidence - masks.confidence).max()), 4),
                   "cudagraph_skips": counters["inductor"].get("cudagraph_skips", 0), **check,
                   "vs_first_variant_check": check_first}
            results["segment"].setdefault("compiled", []).append(row)
            print(json.dumps(row), flush=True)
            Path(args.out).write_text(json.dumps(results, indent=1))  # what is done so far, should the call end
            last = (compiled, compiled_s)
        if last is not None:  # the shared model holds the last variant's modules: the stage and profile use it
            seg, now_s = last
    real = ellipse_masks(n, h, w)
    out = Path("/tmp/segment_stage")
    out.mkdir(exist_ok=True)
    save_s, _ = timed(lambda: save_masks(out / "masks.npz", real), args.repeats)
    video_s, _ = timed(lambda: write_mp4(out / "masks.mp4", mask_frames(real.data), clip.fps, crf=0), args.repeats)
    results["write"] = {"save_masks_s": round(save_s, 3), "mask_video_s": round(video_s, 3)}
    total = read_s + now_s + save_s + video_s
    results["stage_s"] = round(total, 3)
    results["stage_fps"] = round(n / total, 1)
    print(json.dumps({k: results[k] for k in ("read_s", "write", "stage_s", "stage_fps")}), flush=True)
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            seg.segment(clip, box)
            torch.cuda.synchronize()
        events = prof.key_averages()
        table = events.table(sort_by="self_cpu_time_total", row_limit=15)
        print(table, flush=True)
        kernels = events.table(sort_by="self_device_time_total", row_limit=30, max_name_column_width=90)
        print(kernels, flush=True)
        Path(args.out).with_suffix(".kernels.txt").write_text(kernels)
        syncs = {e.key: e.count for e in events if "Synchronize" in e.key or "Memcpy" in e.key or "item" in e.key}
        results["profile"] = {"sync_and_copy_calls": syncs,
                              "cpu_total_ms": round(sum(e.self_cpu_time_total for e in events) / 1e3, 1),
                              "gpu_total_ms": round(sum(e.self_device_time_total for e in events) / 1e3, 1)}
        print(json.dumps(results["profile"]), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
