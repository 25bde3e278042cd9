"""Where the time goes in the generative backends (GPU, random weights): attention kernels, SVD training, Wan VACE.

    python benchmarks/probe_generative.py --only attn,svd,vace [--svd-full-compile] [--vace-compile]

- ``attn``: PyTorch SDPA kernels (flash, cuDNN, memory-efficient) at the shapes that dominate Wan VACE
  (one 81-frame 480x832 clip with a reference: 34 320 tokens, 12 heads of 128) and SVD training
  (spatial attention at the UNet's first level: 14 frames x 9 216 tokens, 5 heads of 64, forward and
  backward), and SageAttention 1 (INT8 QK, Triton) when it is importable.
- ``svd``: motion-LoRA training steps (rank 32, no checkpointing) eager; with ``--svd-full-compile``
  the whole UNet compiled instead (and nothing else); otherwise two steps under the torch profiler,
  grouped by kernel, then the steps with cuDNN autotuning. (Channels-last weights cannot be tried
  this way: the UNet's Conv3d weights are 5-D.)
- ``vace``: one forward of the VACE transformer at the clip's shape: eager with each attention
  backend, and regionally compiled.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_generative as bg  # noqa: E402  (also puts src/ on the path and stubs PyAV)

DEV, DT = bg.DEV, bg.DT


def timed(fn, repeat: int = 5, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = bg.sync_time()
        fn()
        times.append(bg.sync_time() - t0)
    return float(np.median(times))


def probe_attn(args) -> None:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    try:
        from sageattention import sageattn
    except Exception as exc:  # noqa: BLE001
        print(f"sageattention not importable: {exc}")
        sageattn = None
    kernels = {"default": None, "flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
               "efficient": SDPBackend.EFFICIENT_ATTENTION}
    for label, (b, h, n, d), backward in [("wan self-attn", (1, 12, 34320, 128), False),
                                          ("wan self-attn, CFG batch", (2, 12, 34320, 128), False),
                                          ("svd spatial lvl0 fwd+bwd", (14, 5, 9216, 64), True)]:
        q, k, v = (torch.randn(b, h, n, d, device=DEV, dtype=DT, requires_grad=backward) for _ in range(3))
        flops = 4 * b * h * n * n * d * (3.5 if backward else 1.0)
        ref = F.scaled_dot_product_attention(q, k, v).detach()
        for name, kernel in kernels.items():
            def run():
                with sdpa_kernel([kernel]) if kernel is not None else torch.enable_grad():
                    out = F.scaled_dot_product_attention(q, k, v)
                    if backward:
                        out.sum().backward()
            try:
                s = timed(run)
                print(f"ATTN {label} {name}: {s * 1e3:.2f} ms, {flops / s / 1e12:.0f} TFLOP/s", flush=True)
            except Exception as exc:  # noqa: BLE001
                print(f"ATTN {label} {name}: failed {type(exc).__name__}: {str(exc)[:120]}", flush=True)
        if sageattn is not None and not backward:
            try:
                s = timed(lambda: sageattn(q, k, v, tensor_layout="HND"))
                out = sageattn(q, k, v, tensor_layout="HND")
                err = (out.float() - ref.float()).abs()
                print(f"ATTN {label} sage1: {s * 1e3:.2f} ms, {flops / s / 1e12:.0f} TFLOP/s, "
                      f"|diff| mean {err.mean():.2e} max {err.max():.2e} (ref |out| mean {ref.float().abs().mean():.2e})",
                      flush=True)
            except Exception as exc:  # noqa: BLE001
                print(f"ATTN {label} sage1: failed {type(exc).__name__}: {str(exc)[:300]}", flush=True)
        del q, k, v, ref
        torch.cuda.empty_cache()


def probe_svd(args) -> None:
    from pvtt.propagate.motion_lora import MotionLoraPropagator

    pipe = bg.svd_pipeline()
    clip = bg.clip_of(14, 576, 1024)

    def steps(backend, n):
        times = []
        t0 = [bg.sync_time()]

        def on_step(i, loss):
            now = bg.sync_time()
            times.append(now - t0[0])
            t0[0] = now

        backend.settings.train_steps = n
        backend.train_lora(clip, on_step=on_step)
        return times

    backend = MotionLoraPropagator(device="cuda", dtype="bf16", rank=32)
    backend.setup(model=pipe)
    base = steps(backend, 6)
    print(f"SVD eager: steps {[round(t, 3) for t in base]}, median of last 4 {np.median(base[2:]):.3f} s", flush=True)
    if args.svd_full_compile:  # the whole UNet as one compiled graph (vs pvtt's regional compilation)
        pipe.unet.compile()
        t0 = time.perf_counter()
        t = steps(backend, 8)
        print(f"SVD full compile: first steps {[round(x, 2) for x in t[:3]]}, median of last 5 "
              f"{np.median(t[3:]):.3f} s, total {time.perf_counter() - t0:.0f} s, peak {bg.peak():.1f} GiB", flush=True)
        return
    # profile two steps
    from torch.profiler import ProfilerActivity, profile

    plain_step = backend.train_step
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        steps(backend, 2)
    table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=30, max_name_column_width=70)
    print(table, flush=True)
    backend.train_step = plain_step
    torch.backends.cudnn.benchmark = True
    t = steps(backend, 6)
    print(f"SVD eager + cudnn.benchmark: steps {[round(x, 3) for x in t]}, median {np.median(t[2:]):.3f} s", flush=True)
    torch.backends.cudnn.benchmark = False


def probe_vace(args) -> None:
    from diffusers import WanVACETransformer3DModel

    model = bg.build(WanVACETransformer3DModel, patch_size=(1, 2, 2), num_attention_heads=12,
                     attention_head_dim=128, in_channels=16, out_channels=16, text_dim=4096, freq_dim=256,
                     ffn_dim=8960, num_layers=30, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                     eps=1e-6, vace_layers=list(range(0, 30, 2)), vace_in_channels=96)
    kw = dict(hidden_states=torch.randn(1, 16, 22, 60, 104, device=DEV, dtype=DT),
              timestep=torch.full((1,), 500.0, device=DEV),
              encoder_hidden_states=torch.randn(1, 512, 4096, device=DEV, dtype=DT),
              control_hidden_states=torch.randn(1, 96, 22, 60, 104, device=DEV, dtype=DT),
              control_hidden_states_scale=torch.ones(15, device=DEV, dtype=DT), return_dict=False)
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode():
        counter = FlopCounterMode(display=False)
        with counter:
            ref = model(**kw)[0]
        flops = counter.get_total_flops()
        for backend in ("native", "_native_cudnn", "_native_flash", "_native_efficient"):
            try:
                model.set_attention_backend(backend)
                s = timed(lambda: model(**kw), repeat=3, warmup=1)
                out = model(**kw)[0]
                print(f"VACE forward {backend}: {s:.3f} s, {flops / s / 1e12:.0f} TFLOP/s, "
                      f"|diff| vs native {(out.float() - ref.float()).abs().mean():.2e}", flush=True)
            except Exception as exc:  # noqa: BLE001
                print(f"VACE forward {backend}: failed {type(exc).__name__}: {str(exc)[:200]}", flush=True)
        model.set_attention_backend("native")
        if args.vace_compile:
            t0 = time.perf_counter()
            model.compile_repeated_blocks()
            model(**kw)
            print(f"VACE regional compile + first forward: {time.perf_counter() - t0:.0f} s", flush=True)
            s = timed(lambda: model(**kw), repeat=3, warmup=1)
            print(f"VACE forward regional compile (native attention): {s:.3f} s, {flops / s / 1e12:.0f} TFLOP/s",
                  flush=True)
            try:
                model.set_attention_backend("_native_cudnn")
                t0 = time.perf_counter()
                model(**kw)
                print(f"VACE cudnn recompile: {time.perf_counter() - t0:.0f} s", flush=True)
                s = timed(lambda: model(**kw), repeat=3, warmup=1)
                print(f"VACE forward regional compile + cudnn: {s:.3f} s, {flops / s / 1e12:.0f} TFLOP/s", flush=True)
            except Exception as exc:  # noqa: BLE001
                print(f"VACE compile + cudnn: failed {type(exc).__name__}: {str(exc)[:200]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="attn,svd,vace")
    parser.add_argument("--vace-compile", action="store_true")
    parser.add_argument("--svd-full-compile", action="store_true")
    args = parser.parse_args()
    print(torch.__version__, torch.cuda.get_device_name(), flush=True)
    for part in args.only.split(","):
        t0 = time.perf_counter()
        try:
            {"attn": probe_attn, "svd": probe_svd, "vace": probe_vace}[part](args)
        except Exception as exc:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            print(f"{part} FAILED: {exc}", flush=True)
        torch.cuda.empty_cache()
        print(f"[{part} took {time.perf_counter() - t0:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
