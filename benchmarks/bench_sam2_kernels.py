"""Where SAM2's GPU time per clip could shrink: the image encoder compiled in several modes, and the attention
kernels of the encoder and of the memory attention, on an H200 (random-weight SAM2.1-hiera-large, bf16).

1. Facts: transformers' attention implementation, the encoder's parameter dtypes, whether Hiera's attention
   still computes an unused ``q @ k^T`` (dead in eager, removed by the compiler).
2. Attention kernels alone (CUDA-event medians) at the shapes the segment call runs: Hiera's windowed and global
   blocks for an 8-frame chunk (head dim 72) and the memory attention's self- and cross-attention (one head of
   256 over 4096 queries; 7 memories of 4096 tokens plus 64 object-pointer tokens), for each SDPA backend
   (flash, cuDNN, memory-efficient), and the cross-attention split over the keys (``--splits``: each part's
   output and log-sum-exp from flash or cuDNN, merged) — one head of 4096 queries fills few of the 132 SMs.
3. The image encoder (``get_image_features`` on a ``--batch``-frame chunk, as ``Sam2Segmenter._encode_chunk``
   calls it): eager, eager with each SDPA backend forced, and compiled in each of ``--modes`` (called on 8 and
   then 6 frames first, as a clip's chunks do), its median seconds per frame at ``--batch`` and 16 frames, its
   outputs against eager, FLOPs (``FlopCounterMode``) and where its kernels' time goes (matmul, attention,
   generated Triton, other).

    python3 benchmarks/bench_sam2_kernels.py --modes default max-autotune-no-cudagraphs --out $OUT/kernels.json

(2026-12-03, H200: ``max-autotune-no-cudagraphs`` autotunes each of the encoder's 24 matmul shapes for 6-28 s,
single-process, and did not finish inside a 540 s call; cuBLAS won 20 of the 22 ``addmm`` it had tuned.)
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))
from full_size import sam2_video_large  # noqa: E402

BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION}


def event_ms(fn, repeats: int = 20) -> float:
    """Median milliseconds of ``fn`` over ``repeats`` runs after three warm-ups, by CUDA events."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def split_kv_attention(q, k, v, parts: int, backend: str):
    """Attention of ``q`` over ``k, v`` computed on ``parts`` slices of the keys and merged by log-sum-exp."""
    outs, lses = [], []
    for ks, vs in zip(k.chunk(parts, dim=2), v.chunk(parts, dim=2)):
        if backend == "flash":
            out, lse = torch.ops.aten._scaled_dot_product_flash_attention(q, ks, vs)[:2]
        else:
            out, lse = torch.ops.aten._scaled_dot_product_cudnn_attention(q, ks, vs, None, True)[:2]
        outs.append(out)
        lses.append(lse.float().reshape(*q.shape[:3], 1))
    lse = torch.stack(lses)
    weights = torch.softmax(lse, dim=0)
    return sum(w * o.float() for w, o in zip(weights, outs)).to(q.dtype)


def attention_kernels(splits: list[int]) -> dict:
    g = torch.Generator(device="cuda").manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, device="cuda", dtype=torch.bfloat16, generator=g)

    shapes = {  # (q shape, kv length): an 8-frame chunk of Hiera, then the memory attention of one frame
        "hiera_stage1_win8": ((8192, 2, 64, 72), 64), "hiera_stage2_win4": ((8192, 4, 16, 72), 16),
        "hiera_stage3_win16": ((128, 8, 256, 72), 256), "hiera_stage3_global": ((8, 8, 4096, 72), 4096),
        "hiera_stage4_win8": ((128, 16, 64, 72), 64),
        "memory_self": ((1, 1, 4096, 256), 4096), "memory_cross": ((1, 1, 4096, 256), 7 * 4096 + 64)}
    rows = {}
    for name, (qs, lk) in shapes.items():
        q = rand(*qs)
        k, v = rand(*qs[:2], lk, qs[3]), rand(*qs[:2], lk, qs[3])
        ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
        flops = 4 * q.shape[0] * q.shape[1] * q.shape[2] * lk * q.shape[3]
        row = {"gflop": round(flops / 1e9, 2)}
        for label, backend in BACKENDS.items():
            try:
                with sdpa_kernel([backend]):
                    out = F.scaled_dot_product_attention(q, k, v)
                    ms = event_ms(lambda: F.scaled_dot_product_attention(q, k, v))
                row[label] = {"ms": round(ms, 4), "tflops": round(flops / ms / 1e9, 1),
                              "rel_err": round(float((out.float() - ref).norm() / ref.norm()), 5)}
            except RuntimeError as error:
                row[label] = repr(error)[:120]
        with torch.inference_mode():  # the default choice (no backend forced)
            row["default_ms"] = round(event_ms(lambda: F.scaled_dot_product_attention(q, k, v)), 4)
        if name == "memory_cross":
            for parts in splits:
                for backend in ("flash", "cudnn"):
                    try:
                        out = split_kv_attention(q, k, v, parts, backend)
                        ms = event_ms(lambda: split_kv_attention(q, k, v, parts, backend))
                        row[f"split{parts}_{backend}"] = {
                            "ms": round(ms, 4), "tflops": round(flops / ms / 1e9, 1),
                            "rel_err": round(float((out.float() - ref).norm() / ref.norm()), 5)}
                    except RuntimeError as error:
                        row[f"split{parts}_{backend}"] = repr(error)[:120]
        rows[name] = row
        print(name, json.dumps(row), flush=True)
    return rows


def kernel_split(fn) -> dict:
    """One call of ``fn`` under the profiler: GPU milliseconds by kind of kernel, and the top kernels."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    kinds: dict[str, float] = {}
    top = []
    for e in prof.key_averages():
        t = e.self_device_time_total / 1e3
        if t <= 0:
            continue
        name = e.key.lower()
        kind = ("attention" if any(s in name for s in ("flash", "fmha", "cudnn", "attention", "sdpa")) else
                "matmul" if any(s in name for s in ("gemm", "xmma", "cutlass", "nvjet", "mm_", "matmul", "sm90"))
                else "triton" if name.startswith("triton") else "other")
        kinds[kind] = kinds.get(kind, 0.0) + t
        top.append((round(t, 3), kind, e.key[:90], e.count))
    top.sort(reverse=True)
    return {"ms_by_kind": {k: round(v, 2) for k, v in kinds.items()}, "top": top[:12]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--modes", nargs="*", default=["default"], help="torch.compile modes of the encoder")
    parser.add_argument("--splits", type=int, nargs="*", default=[2, 4, 8])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default="sam2_kernels.json")
    args = parser.parse_args()
    import transformers
    from transformers.models.sam2 import modeling_sam2

    results: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                     "transformers": transformers.__version__}
    out = Path(args.out)

    def save():
        out.write_text(json.dumps(results, indent=1))

    model = sam2_video_large().to("cuda")
    encoder = model.vision_encoder
    results["facts"] = {
        "attn_implementation": model.config._attn_implementation,
        "encoder_attn_implementation": encoder.config._attn_implementation,
        "encoder_param_dtypes": sorted({str(p.dtype) for p in encoder.parameters()}),
        "encoder_buffer_dtypes": sorted({str(b.dtype) for b in encoder.buffers()}),
        "hiera_unused_qk": "attn_weights = (query * self.scale)" in inspect.getsource(
            modeling_sam2.Sam2MultiScaleAttention.forward),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32}
    print(json.dumps(results), flush=True)
    save()
    results["attention"] = attention_kernels(args.splits)
    save()

    g = torch.Generator(device="cuda").manual_seed(1)
    pixels = {b: torch.randn(b, 3, 1024, 1024, device="cuda", dtype=torch.bfloat16, generator=g)
              for b in (args.batch, 6, 16)}

    def features(fn, b):
        with torch.inference_mode():
            o = fn(pixels[b])
            return [t.float().clone() for t in o.fpn_hidden_states]

    def timed_per_frame(fn, b):
        with torch.inference_mode():
            for _ in range(2):
                fn(pixels[b])
            torch.cuda.synchronize()
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                fn(pixels[b])
                torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
        return sorted(times)[len(times) // 2] / b

    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model.get_image_features(pixels[1 if 1 in pixels else args.batch][:1])
    flops = counter.get_total_flops()
    results["encoder_flops_per_frame"] = {"total_tflop": round(flops / 1e12, 4), "by_op": {
        str(k): round(v / 1e12, 4) for k, v in counter.get_flop_counts()["Global"].items()}}
    print(json.dumps(results["encoder_flops_per_frame"]), flush=True)
    eager = model.get_image_features
    ref = features(eager, args.batch)
    rows = []
    for label, backends in [("eager", None)] + [(f"eager_{k}", [v]) for k, v in BACKENDS.items()]:
        try:
            with sdpa_kernel(backends) if backends else torch.inference_mode():
                s = timed_per_frame(eager, args.batch)
            rows.append({"variant": label, "ms_per_frame": round(s * 1e3, 3),
                         "tflops": round(flops / s / 1e12, 1)})
        except RuntimeError as error:
            rows.append({"variant": label, "error": repr(error)[:200]})
        print(json.dumps(rows[-1]), flush=True)
    results["encoder"] = rows
    with torch.inference_mode():
        rows[0]["kernels"] = kernel_split(lambda: eager(pixels[args.batch]))
    print(json.dumps(rows[0]["kernels"]), flush=True)
    save()
    for mode in args.modes:
        torch._dynamo.reset()
        model.vision_encoder = torch.compile(encoder, mode=mode)
        try:
            t0 = time.perf_counter()
            with torch.inference_mode():
                for b in (args.batch, 6):  # a clip's full chunks, then its shorter last one
                    model.get_image_features(pixels[b])
            torch.cuda.synchronize()
            first = time.perf_counter() - t0
            s = timed_per_frame(eager, args.batch)
            s16 = timed_per_frame(eager, 16)
            got = features(eager, args.batch)
            errors = [float((a - b).norm() / b.norm()) for a, b in zip(got, ref)]
            row = {"variant": f"compiled_{mode}", "compile_s": round(first, 1), "ms_per_frame": round(s * 1e3, 3),
                   "tflops": round(flops / s / 1e12, 1), "ms_per_frame_b16": round(s16 * 1e3, 3),
                   "rel_err_vs_eager": [round(e, 5) for e in errors]}
            with torch.inference_mode():
                row["kernels"] = kernel_split(lambda: eager(pixels[args.batch]))
        except Exception as error:  # noqa: BLE001
            row = {"variant": f"compiled_{mode}", "error": repr(error)[:300]}
        rows.append(row)
        print(json.dumps(row), flush=True)
        save()
    model.vision_encoder = encoder
    for r in rows:
        print(f"{r['variant']:40s} {r.get('ms_per_frame', '-'):>8} ms/frame  b16 {r.get('ms_per_frame_b16', '-'):>8}"
              f"  {r.get('tflops', '-'):>6} TFLOP/s  compile {r.get('compile_s', '-')}", flush=True)


if __name__ == "__main__":
    main()
