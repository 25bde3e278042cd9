"""I2VEdit's attention difference D on the GPU: the fused Triton kernel against the torch path, same run.

D is computed in every spatial self-attention layer of every guided edit step (conditional branch: 16 frames).
Shapes are SVD's at 576x1024 (latents 72x128): per level the tokens and heads of its spatial attention, head
size 64, and how many such layers the UNet has (down + up transformer blocks; the mid block once).

For each shape: seconds (median of ``--repeats`` after a warm-up, synchronised), the largest difference from
the torch path, and TFLOP/s counting the kernel's four ``Q Kᵀ`` products (two passes x source and edit:
``4 x 2 x frames x heads x tokens² x 64``) against the card's ~790 bf16. The torch path is
``i2vedit.attention_difference(kernel='torch')``: float32 probabilities in row blocks, torch.compile'd
(the implementation before the kernel) — the baseline of the ratio. Per guided step the layers are summed.

    python3 benchmarks/bench_difference.py --out difference.json [--sweep]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from pvtt.propagate import difference_kernel as fused  # noqa: E402
from pvtt.propagate.i2vedit import attention_difference  # noqa: E402

# (level, tokens, heads, spatial attention layers per UNet call) of SVD-img2vid at 576x1024
LEVELS = [("64x / top", 9216, 5, 5), ("2", 2304, 10, 5), ("3", 576, 20, 5), ("mid", 144, 20, 1)]
CONFIGS = [(64, 64, 4, 2), (128, 64, 8, 2), (64, 128, 4, 2), (128, 128, 8, 2), (128, 64, 4, 3), (64, 64, 4, 3)]


def timed(fn, repeats: int) -> tuple[float, object]:
    out = fn()  # warm-up: compilation, autotuning of cuBLAS
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sweep", action="store_true", help="also time every block configuration in CONFIGS")
    parser.add_argument("--out", default="difference.json")
    args = parser.parse_args()
    results = {"device": torch.cuda.get_device_name(), "frames": args.frames, "levels": []}
    g = torch.Generator(device="cuda").manual_seed(0)
    step = {"torch": 0.0, "triton": 0.0}
    for name, tokens, heads, layers in LEVELS:
        shape = (args.frames, heads, tokens, 64)
        q_s, k_s, k_e = (torch.randn(shape, generator=g, device="cuda").to(torch.bfloat16) for _ in range(3))
        q_e = (q_s.float() + 0.5 * torch.randn(shape, generator=g, device="cuda")).to(torch.bfloat16)
        flops = 4 * 2 * args.frames * heads * tokens * tokens * 64
        t_torch, d_torch = timed(lambda: attention_difference(q_s, k_s, q_e, k_e, kernel="torch"), args.repeats)
        t_triton, d_triton = timed(lambda: attention_difference(q_s, k_s, q_e, k_e, kernel="triton"), args.repeats)
        level = {"level": name, "shape": list(shape), "layers": layers,
                 "torch_s": round(t_torch, 5), "triton_s": round(t_triton, 5),
                 "speedup": round(t_torch / t_triton, 2),
                 "triton_tflops": round(flops / t_triton / 1e12, 1),
                 "max_abs_diff": float((d_torch - d_triton).abs().max()), "mean_d": float(d_torch.mean())}
        if args.sweep:
            level["sweep"] = []
            for bm, bn, warps, stages in CONFIGS:
                try:
                    t, _ = timed(lambda: fused.attention_difference(q_s, k_s, q_e, k_e, bm, bn, warps, stages),
                                 args.repeats)
                    level["sweep"].append({"config": [bm, bn, warps, stages], "s": round(t, 5),
                                           "tflops": round(flops / t / 1e12, 1)})
                except Exception as exc:  # noqa: BLE001 - a configuration the compiler rejects
                    level["sweep"].append({"config": [bm, bn, warps, stages], "error": repr(exc)[:200]})
        step["torch"] += layers * t_torch
        step["triton"] += layers * t_triton
        results["levels"].append(level)
        print(json.dumps(level), flush=True)
    results["per_guided_step_s"] = {k: round(v, 4) for k, v in step.items()}
    results["per_guided_step_speedup"] = round(step["torch"] / step["triton"], 2)
    print(json.dumps({k: results[k] for k in ("per_guided_step_s", "per_guided_step_speedup")}), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
