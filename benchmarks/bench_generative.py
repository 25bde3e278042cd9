"""Speed and memory of the generative backends at full architecture size, random weights.

Run on a GPU machine (no weights needed: every component is built from its published config with
random weights; speed and memory do not depend on weight values, the pixels are meaningless):

    python benchmarks/bench_generative.py --out results.json [--only svd,vace,flux]

- ``svd``: motion-LoRA training on SVD-img2vid-xt (UNet 1.5 B) at 14 frames 576x1024. The plain loop
  (gradient checkpointing, rank 16, PyTorch's default attention) is timed in the same run as the
  pvtt variants; a few steps each after warm-up, extrapolated to 250 steps. TFLOP/s from
  ``FlopCounterMode`` over one training step.
- ``vace``: Wan2.1-VACE-1.3B, 81 frames 480x832 with CFG. The plain ``WanVACEPipeline.__call__``
  against the pvtt loop with its options; ``--vace-steps`` steps of each, per-step times from a step
  callback, extrapolated to 50 steps; the output difference to the plain call at the same steps.
- ``flux``: FLUX.1-Fill-dev (12 B) at 1024x1024, 28 steps, the whole call (CLIP + T5-XXL + VAE).
  ``--reference`` picks how the insert sees B's photo (``insert.flux_fill.reference``): ``none`` (the
  frame alone, default here), ``in-context`` (B's panel beside the frame: a wider canvas), ``redux``
  / ``in-context+redux`` (adds FLUX.1-Redux: SigLIP so400m + the Redux projector, random weights).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "generative"))
import diffusers  # noqa: E402,F401  # before the PyAV stub below: diffusers probes for av with find_spec

try:  # the GPU image has no PyAV; rendering frames does not need it
    import av  # noqa: F401
except ImportError:
    import types

    sys.modules["av"] = types.ModuleType("av")

sys.path.insert(0, str(ROOT / "benchmarks"))
from full_size import DEV, DT, build  # noqa: E402

from pvtt.demo import draw_product, render_template  # noqa: E402
from pvtt.types import Clip  # noqa: E402

ROWS: list[dict] = []


def clip_of(frames: int, height: int, width: int) -> Clip:
    small = render_template(0, 0, height=180, width=320, frames_per_shot=frames)[:frames]
    big = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_CUBIC) for f in small])
    return Clip("bench", big, 20.0)


def sync_time() -> float:
    torch.cuda.synchronize()
    return time.perf_counter()


def peak() -> float:
    return torch.cuda.max_memory_allocated() / 2**30


def row(model, variant, seconds, peak_gib, tflops=None, note=""):
    r = {"model": model, "variant": variant, "seconds": round(seconds, 2), "peak_gib": round(peak_gib, 1),
         "tflops": None if tflops is None else round(tflops, 1), "note": note}
    ROWS.append(r)
    print(json.dumps(r), flush=True)


def tokenizer(max_length):
    from tiny_pipelines import tiny_tokenizer

    return tiny_tokenizer(max_length)


# --- SVD motion LoRA ---------------------------------------------------------------------------------
def svd_pipeline():
    from diffusers import (AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, StableVideoDiffusionPipeline,
                           UNetSpatioTemporalConditionModel)
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    unet = build(UNetSpatioTemporalConditionModel)  # the defaults are SVD-img2vid(-xt)'s UNet
    vae = build(AutoencoderKLTemporalDecoder, block_out_channels=[128, 256, 512, 512], latent_channels=4,
                down_block_types=["DownEncoderBlock2D"] * 4, layers_per_block=2)
    clip = build(CLIPVisionModelWithProjection, CLIPVisionConfig(
        hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16, patch_size=14,
        image_size=224, projection_dim=1024, hidden_act="gelu"))
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       interpolation_type="linear", num_train_timesteps=1000,
                                       prediction_type="v_prediction", sigma_max=700.0, sigma_min=0.002,
                                       steps_offset=1, timestep_spacing="leading", timestep_type="continuous",
                                       use_karras_sigmas=True)
    return StableVideoDiffusionPipeline(unet=unet, image_encoder=clip, scheduler=scheduler, vae=vae,
                                        feature_extractor=CLIPImageProcessor(crop_size=224, size=224))


def bench_svd(args) -> None:
    from pvtt.propagate.motion_lora import MotionLoraPropagator

    pipe = svd_pipeline()
    print(f"SVD UNet params: {sum(p.numel() for p in pipe.unet.parameters()) / 1e9:.2f} B", flush=True)
    clip = clip_of(14, 576, 1024)
    variants = [
        ("plain loop: grad checkpointing, rank 16, diffusers' SDPA attention",
         dict(rank=16, gradient_checkpointing=True, plain=True)),
        ("pvtt: no checkpointing, rank 32 (I2VEdit), diffusers' SDPA attention", dict(rank=32, plain=True)),
        ("pvtt: no checkpointing, rank 32 (I2VEdit)", dict(rank=32)),
    ]
    if args.compile:
        variants.append(("pvtt: no checkpointing, rank 32, torch.compile", dict(rank=32, compile=True)))
    flops = None
    for name, kw in variants:
        try:
            plain = kw.pop("plain", False)
            backend = MotionLoraPropagator(device="cuda", dtype="bf16", **kw)
            backend.setup(model=pipe)
            if plain:  # the stock processors instead of pvtt's short-key attention
                from diffusers.models.attention_processor import AttnProcessor2_0

                pipe.unet.set_attn_processor(AttnProcessor2_0())

            def run(steps: int) -> float:  # one whole train_lora call: encode, steps, LoRA state to the host
                backend.settings.train_steps = steps
                start = sync_time()
                backend.train_lora(clip)
                return sync_time() - start

            warmup = run(args.svd_warmup)  # cuDNN plans, allocator, and the compile where asked
            torch.cuda.reset_peak_memory_stats()
            # per-step cost from two runs of different length: no synchronisation inside the loop
            short, long = run(args.svd_steps), run(3 * args.svd_steps)
            step = (long - short) / (2 * args.svd_steps)
            fixed = short - args.svd_steps * step
            if flops is None:  # one training step (forward + backward), counted once
                counter = FlopCounterMode(display=False)
                plain_step = backend.train_step

                def counted(*a):
                    with counter:
                        return plain_step(*a)

                backend.train_step = counted
                run(1)
                backend.train_step = plain_step
                flops = float(counter.get_total_flops())
                print(f"SVD training step: {flops / 1e12:.1f} TFLOP", flush=True)
            row("SVD-xt motion LoRA (14x576x1024)", name, fixed + 250 * step, peak(), flops / step / 1e12,
                note=f"{step:.3f} s/step (runs of {args.svd_steps} and {3 * args.svd_steps} steps: "
                     f"{short:.2f} s, {long:.2f} s), encode etc. {fixed:.2f} s, first run of {args.svd_warmup} "
                     f"steps {warmup:.1f} s; seconds = fixed + 250 x s/step (extrapolated)")
        except Exception as exc:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            print(f"svd variant {name!r} FAILED: {type(exc).__name__}: {exc}", flush=True)
        finally:  # compilation stays on the UNet: the compiled variant comes last
            torch.cuda.empty_cache()
    del pipe
    torch.cuda.empty_cache()


# --- Wan VACE 1.3B -----------------------------------------------------------------------------------
def vace_pipeline():
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanVACEPipeline, WanVACETransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    transformer = build(WanVACETransformer3DModel, patch_size=(1, 2, 2), num_attention_heads=12,
                        attention_head_dim=128, in_channels=16, out_channels=16, text_dim=4096, freq_dim=256,
                        ffn_dim=8960, num_layers=30, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                        eps=1e-6, vace_layers=list(range(0, 30, 2)), vace_in_channels=96)
    vae = build(AutoencoderKLWan)  # the defaults are Wan 2.1's VAE
    text = build(UMT5EncoderModel, UMT5Config(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24,
                                              num_heads=64, feed_forward_proj="gated-gelu",
                                              relative_attention_num_buckets=32))
    return WanVACEPipeline(transformer=transformer, vae=vae, text_encoder=text, tokenizer=tokenizer(512),
                           scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0))


def bench_vace(args) -> None:
    from PIL import Image

    from pvtt.propagate import controls
    from pvtt.propagate.vace import VacePropagator

    pipe = vace_pipeline()
    print(f"VACE transformer params: {sum(p.numel() for p in pipe.transformer.parameters()) / 1e9:.2f} B", flush=True)
    clip = clip_of(81, 480, 832)
    mask = np.zeros((81, 480, 832), bool)
    mask[:, 120:400, 300:560] = True
    mask[0] = False
    control = np.repeat(np.linspace(0, 255, 832, dtype=np.uint8)[None, None, :, None], 480, 1).repeat(81, 0)
    video = controls.compose_condition(clip.frames, np.broadcast_to(control, clip.frames.shape[:3] + (3,)), mask)
    reference = controls.on_white(cv2.resize(draw_product(1, 400, 0), (240, 400)))
    prompt = "a red bottle on a table, the camera moves slowly to the left"
    k = args.vace_steps

    # plain pipeline call, per-step times from its callback
    steps: list[float] = []

    def callback(p, i, t, kw):
        steps.append(sync_time())
        return {}

    def plain(n):
        steps.clear()
        return pipe(video=[Image.fromarray(f) for f in video], mask=[Image.fromarray(m.astype(np.uint8) * 255) for m in mask],
                    reference_images=Image.fromarray(reference), prompt=prompt, negative_prompt="low quality",
                    height=480, width=832, num_frames=81, num_inference_steps=n, guidance_scale=5.0,
                    generator=torch.Generator("cpu").manual_seed(0), output_type="np", max_sequence_length=512,
                    callback_on_step_end=callback).frames[0]

    plain(1)  # warm-up
    torch.cuda.reset_peak_memory_stats()
    t0 = sync_time()
    ref = plain(k)
    total = sync_time() - t0
    step = float(np.median(np.diff([t0] + steps)[1:]))
    ref_u8 = np.clip(ref * 255 + 0.5, 0, 255).astype(np.uint8)
    row("Wan2.1-VACE-1.3B (81x480x832, CFG)", "plain WanVACEPipeline call", total + (50 - k) * step, peak(),
        note=f"{step:.3f} s/step (2 forwards), {k}-step call {total:.1f} s; seconds = call + {50 - k} x s/step")
    base_step = step

    variants = []
    if "exact" in args.vace_variants:
        variants.append(("pvtt loop, exact CFG (= plain)", dict(batch_cfg=False)))
    if "compile" in args.vace_variants:
        variants.append(("pvtt loop, exact CFG, regional torch.compile", dict(compile=True)))
    if "uncond" in args.vace_variants:
        variants += [(f"pvtt loop, regional torch.compile, unconditional branch every {n} steps",
                      dict(compile=True, uncond_every=n)) for n in args.uncond_every]
    for name, kw in variants:
        try:
            backend = VacePropagator(device="cuda", dtype="bf16", steps=k, negative_prompt="low quality", **kw)
            backend.setup(model=pipe)
            every = kw.get("uncond_every", 1)
            times: list[float] = []
            backend.settings.steps = 2 if every > 1 else 1
            t0 = sync_time()
            backend.generate(video, mask, reference, prompt)  # warm-up (and compile)
            warmup = sync_time() - t0
            backend.settings.steps = k
            torch.cuda.reset_peak_memory_stats()
            t0 = sync_time()
            out = backend.generate(video, mask, reference, prompt, on_step=lambda i: times.append(sync_time()))
            total = sync_time() - t0
            per = np.diff([t0] + times)  # per[i]: step i (step 0's time also holds the encoding)
            full = [p for i, p in enumerate(per) if i % every == 0 and i > 0]
            light = [p for i, p in enumerate(per) if i % every]
            full_s = float(np.median(full))
            light_s = float(np.median(light)) if light else full_s
            n_full = len(range(0, 50, every))  # steps that run both branches in a 50-step call
            fixed = total - sum(per[1:]) - full_s  # prompt + VAE encoding (in step 0's time) and decoding
            seconds = fixed + n_full * full_s + (50 - n_full) * light_s
            step = (seconds - fixed) / 50
            diff = np.abs(out.astype(np.int16) - ref_u8.astype(np.int16))
            mse = float((diff.astype(np.float64) ** 2).mean())
            psnr = 10 * np.log10(255 ** 2 / mse) if mse > 0 else float("inf")
            row("Wan2.1-VACE-1.3B (81x480x832, CFG)", name, seconds, peak(),
                note=f"{k}-step call {total:.1f} s; {step:.3f} s/step averaged over 50 ({base_step / step:.2f}x plain; both branches "
                     f"{full_s:.3f} s, conditional only {light_s:.3f} s), first call with compile {warmup:.0f} s; "
                     f"vs plain at {k} steps: mean |diff| {diff.mean():.2f}/255, max {diff.max()}, PSNR {psnr:.1f} dB")
        except Exception as exc:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            print(f"vace variant {name!r} FAILED: {type(exc).__name__}: {exc}", flush=True)
        finally:  # regional compilation stays on the blocks: the compiled variants come last
            torch.cuda.empty_cache()
    del pipe
    torch.cuda.empty_cache()


# --- FLUX.1 Fill -------------------------------------------------------------------------------------
def redux_pipeline():
    """FLUX.1-Redux-dev at full size: SigLIP so400m-patch14-384 (729 tokens of 1152) and ReduxImageEncoder's
    default dims (1152 -> 3 x 4096 -> 4096); no text encoders (the insert shares the Fill pipeline's)."""
    from diffusers import FluxPriorReduxPipeline
    from diffusers.pipelines.flux.modeling_flux import ReduxImageEncoder
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    siglip = build(SiglipVisionModel, SiglipVisionConfig(
        hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16, patch_size=14,
        image_size=384, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6))
    embedder = build(ReduxImageEncoder)
    processor = SiglipImageProcessor(size={"height": 384, "width": 384}, image_mean=[0.5] * 3, image_std=[0.5] * 3,
                                     resample=3)
    return FluxPriorReduxPipeline(image_encoder=siglip, feature_extractor=processor, image_embedder=embedder)


def flux_fill_pipeline():
    """FLUX.1-Fill-dev at full size: the 12 B transformer, CLIP-L, T5-XXL and the 16-channel VAE."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxFillPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    transformer = build(FluxTransformer2DModel, patch_size=1, in_channels=384, out_channels=64, num_layers=19,
                        num_single_layers=38, attention_head_dim=128, num_attention_heads=24, joint_attention_dim=4096,
                        pooled_projection_dim=768, guidance_embeds=True, axes_dims_rope=[16, 56, 56])
    clip_text = build(CLIPTextModel, CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072,
                                                    num_hidden_layers=12, num_attention_heads=12, projection_dim=768,
                                                    max_position_embeddings=77, hidden_act="quick_gelu"))
    t5 = build(T5EncoderModel, T5Config(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24,
                                        num_heads=64, feed_forward_proj="gated-gelu"))
    vae = build(AutoencoderKL, in_channels=3, out_channels=3, block_out_channels=[128, 256, 512, 512],
                down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                latent_channels=16, layers_per_block=2, use_quant_conv=False, use_post_quant_conv=False,
                shift_factor=0.1159, scaling_factor=0.3611, sample_size=1024)
    sched = FlowMatchEulerDiscreteScheduler(base_image_seq_len=256, base_shift=0.5, max_image_seq_len=4096,
                                            max_shift=1.15, use_dynamic_shifting=True, shift=3.0)
    return FluxFillPipeline(transformer=transformer, text_encoder=clip_text, text_encoder_2=t5, tokenizer=tokenizer(77),
                            tokenizer_2=tokenizer(512), vae=vae, scheduler=sched)


def bench_flux(args) -> None:
    from pvtt.compose import box_of_mask
    from pvtt.insert.flux_fill import FluxFillInserter

    pipe = flux_fill_pipeline()
    transformer = pipe.transformer
    print(f"FLUX transformer params: {sum(p.numel() for p in transformer.parameters()) / 1e9:.2f} B", flush=True)
    frame = clip_of(1, 1024, 1024).frames[0]
    mask = np.zeros((1024, 1024), bool)
    mask[300:800, 350:700] = True
    rgba = draw_product(1, 500, 0)
    # insert(frame, background, mask_a, box_a, product): the frame stands in for the erased background (the cost
    # does not depend on its pixels)
    inputs = (frame, frame, mask, box_of_mask(mask), rgba)
    reference = args.reference
    redux = redux_pipeline() if "redux" in reference else None
    for i, strength in enumerate((1.0, 0.6)):
        inserter = FluxFillInserter(device="cuda", dtype="bf16", steps=28, strength=strength,
                                    in_context_strength=strength, reference=reference)
        inserter.setup(model=pipe, redux=redux)
        if i == 0:
            inserter.insert(*inputs, instruction="replace the mug with a red bottle")  # warm-up
        torch.cuda.reset_peak_memory_stats()
        t0 = sync_time()
        out = inserter.insert(*inputs, instruction="replace the mug with a red bottle")
        total = sync_time() - t0
        canvas = "x".join(str(v) for v in out.info["canvas"])
        row("FLUX.1-Fill-dev (1024x1024)", f"pvtt flux-fill insert, 28 steps, strength {strength}, reference "
            f"{reference}", total, peak(),
            note=f"{int(28 * strength)} denoising steps run on a {canvas} canvas; whole call: paste, CLIP + T5-XXL"
                 f"{', SigLIP + Redux' if redux is not None else ''}, VAE encode/decode")
    t = torch.randn(1, 4096, 384, device=DEV, dtype=DT)
    kw = dict(hidden_states=t, timestep=torch.ones(1, device=DEV, dtype=DT), guidance=torch.full((1,), 30.0, device=DEV),
              pooled_projections=torch.randn(1, 768, device=DEV, dtype=DT),
              encoder_hidden_states=torch.randn(1, 512, 4096, device=DEV, dtype=DT),
              txt_ids=torch.zeros(512, 3, device=DEV, dtype=DT), img_ids=torch.zeros(4096, 3, device=DEV, dtype=DT),
              return_dict=False)
    with torch.inference_mode():
        counter = FlopCounterMode(display=False)
        with counter:
            transformer(**kw)
        transformer(**kw)
        t0 = sync_time()
        for _ in range(3):
            transformer(**kw)
        step = (sync_time() - t0) / 3
    row("FLUX.1-Fill-dev (1024x1024)", "one transformer forward", step, peak(), counter.get_total_flops() / step / 1e12)
    del pipe, transformer, redux
    torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="svd,vace,flux")
    parser.add_argument("--svd-steps", type=int, default=5, help="svd: steps of the short timed run (long: 3x)")
    parser.add_argument("--svd-warmup", type=int, default=2, help="svd: steps of the untimed first run")
    parser.add_argument("--vace-steps", type=int, default=5)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--uncond-every", type=lambda v: [int(x) for x in v.split(",")], default=[2, 3, 4, 5],
                        help="vace: the unconditional-branch refresh periods to time (with compile)")
    parser.add_argument("--vace-variants", default="exact,compile,uncond",
                        help="vace: which pvtt variants to time after the plain call (exact, compile, uncond)")
    parser.add_argument("--reference", default="none", choices=["none", "in-context", "redux", "in-context+redux"],
                        help="flux: how the insert sees B's photo (insert.flux_fill.reference)")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    print(torch.__version__, torch.cuda.get_device_name(), flush=True)
    for name in args.only.split(","):
        t0 = time.perf_counter()
        try:
            {"svd": bench_svd, "vace": bench_vace, "flux": bench_flux}[name](args)
        except Exception as exc:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            print(f"{name} FAILED: {type(exc).__name__}: {exc}", flush=True)
        print(f"[{name} took {time.perf_counter() - t0:.0f}s]", flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                                                  "rows": ROWS}, indent=1))
    print("| model | variant | seconds | peak GiB | TFLOP/s | note |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in ROWS:
        print(f"| {r['model']} | {r['variant']} | {r['seconds']} | {r['peak_gib']} | {r['tflops']} | {r['note']} |")


if __name__ == "__main__":
    main()
