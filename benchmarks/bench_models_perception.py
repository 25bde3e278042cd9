"""Speed and memory of the perception/language model backends at full architecture size, random weights.

Run on a GPU machine (no weights needed: every model is built from its published config with random
weights; speed and memory do not depend on weight values):

    python benchmarks/bench_models_perception.py --out results.json [--only sam2,depth,...]

The clip is a 101-frame 720p product showcase rendered by ``pvtt.demo.render_template`` and upscaled.
Each model is timed through the pvtt backend and, where the backend changes how the model is driven,
against the plain transformers call (the baseline) in the same run. Prints a Markdown table last.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
try:  # the GPU image has no PyAV; rendering the clip does not need it
    import av  # noqa: F401
except ImportError:
    import types

    sys.modules["av"] = types.ModuleType("av")

from full_size import DEV, DT, build, depth_anything_v2_large, dinov2_base, qwen25_vl_7b, sam2_video_large  # noqa: E402

from pvtt.demo import render_template  # noqa: E402
from pvtt.types import Box, Clip  # noqa: E402

ROWS: list[dict] = []


def clip_720p(frames: int = 101) -> Clip:
    small = render_template(0, 0, height=180, width=320, frames_per_shot=frames)[:frames]
    big = np.stack([cv2.resize(f, (1280, 720), interpolation=cv2.INTER_CUBIC) for f in small])
    return Clip("bench", big, 20.0)


def timed(fn, repeats: int = 3):
    """Median seconds of ``fn`` after one warm-up, and peak allocated GiB of the last run."""
    fn()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        out = fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), torch.cuda.max_memory_allocated() / 2**30, out


def flops_of(fn) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return float(counter.get_total_flops())


def row(model, variant, seconds, frames, peak, flops=None, note=""):
    r = {"model": model, "variant": variant, "s_per_clip": round(seconds, 3),
         "fps": round(frames / seconds, 2) if frames else None, "peak_gib": round(peak, 2),
         "tflops": round(flops / seconds / 1e12, 1) if flops else None, "note": note}
    ROWS.append(r)
    print(json.dumps(r), flush=True)


# --- SAM2.1 hiera-large ---------------------------------------------------------------------------
def bench_sam2(clip: Clip, args) -> None:
    from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession

    from pvtt.segment.sam2 import Sam2Segmenter

    model = sam2_video_large()
    box = Box(500, 250, 800, 650)
    n = clip.num_frames

    seg = Sam2Segmenter(device="cuda", dtype="bf16", batch_size=args.sam2_batch)
    seg.setup(model=model)

    def plain():  # the plain transformers way: whole video preprocessed, batch-1 encoder inside propagation
        video = torch.cat([seg._pixels(clip.frames[i:i + 16]) for i in range(0, n, 16)])
        session = Sam2VideoInferenceSession(video=video, video_height=clip.height, video_width=clip.width,
                                            inference_device=DEV, inference_state_device=DEV,
                                            video_storage_device=DEV, dtype=DT)
        obj = session.obj_id_to_idx(1)
        s = 1024
        pts = torch.tensor([[[[box.x0 * s / 1280, box.y0 * s / 720], [box.x1 * s / 1280, box.y1 * s / 720]]]])
        session.add_point_inputs(obj, 0, {"point_coords": pts, "point_labels": torch.tensor([[[2, 3]]], dtype=torch.int32)})
        session.obj_with_new_inputs = [1]
        with torch.inference_mode():
            for out in model.propagate_in_video_iterator(inference_session=session, start_frame_idx=0):
                out.pred_masks.float().cpu()

    sec, peak, _ = timed(plain, args.repeats)
    row("SAM2.1-hiera-large", "plain transformers (batch-1 encoder)", sec, n, peak)
    short = Clip("s", clip.frames[:16], 20.0)
    flops16 = flops_of(lambda: seg.segment(short, box))
    sec, peak, masks = timed(lambda: seg.segment(clip, box), args.repeats)
    row("SAM2.1-hiera-large", f"pvtt backend (encoder batch {args.sam2_batch})", sec, n, peak, flops16 / 16 * n,
        note=f"masks {masks.data.shape}")
    with torch.inference_mode():
        enc_flops = flops_of(lambda: model.get_image_features(seg._pixels(clip.frames[:8])))
        sec, peak, _ = timed(lambda: model.get_image_features(seg._pixels(clip.frames[:8])), args.repeats)
    row("SAM2.1-hiera-large", "image encoder only, batch 8", sec, 8, peak, enc_flops)
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            seg.segment(Clip("p", clip.frames[:24], 20.0), box)
            torch.cuda.synchronize()
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=18), flush=True)
    del model, seg
    torch.cuda.empty_cache()


# --- Depth Anything V2 Large -------------------------------------------------------------------------
def bench_depth(clip: Clip, args) -> None:
    from pvtt.depth.depth_anything import DepthAnythingEstimator

    model = depth_anything_v2_large()
    est = DepthAnythingEstimator(device="cuda", dtype="bf16", batch_size=16)
    est.setup(model=model)
    n = clip.num_frames
    x = torch.randn(16, 3, 518, 924, device=DEV, dtype=DT)
    with torch.inference_mode():
        f16 = flops_of(lambda: model(pixel_values=x))
        sec, peak, _ = timed(lambda: model(pixel_values=x).predicted_depth.float().cpu(), args.repeats)
    row("Depth-Anything-V2-L", "plain model call, batch 16 at 518x924", sec, 16, peak, f16)
    sec, peak, depth = timed(lambda: est.predict(clip.frames), args.repeats)
    row("Depth-Anything-V2-L", "pvtt predict (GPU resize, batch 16, 720p out)", sec, n, peak, f16 / 16 * n)
    sec, peak, depth = timed(lambda: est.estimate(clip), args.repeats)
    row("Depth-Anything-V2-L", "pvtt estimate (alignment + EMA on the GPU at network size, then 720p out)", sec, n,
        peak, f16 / 16 * n)
    del model, est
    torch.cuda.empty_cache()


# --- DINOv2 base -------------------------------------------------------------------------------------
def bench_dino(clip: Clip, args) -> None:
    from pvtt.embed.dinov2 import Dinov2Embedder

    model = dinov2_base()
    emb = Dinov2Embedder(device="cuda", dtype="bf16", batch_size=32)
    emb.setup(model=model)
    images = list(clip.frames)
    x = torch.randn(32, 3, 224, 224, device=DEV, dtype=DT)
    with torch.inference_mode():
        f32 = flops_of(lambda: model(pixel_values=x))
    sec, peak, vec = timed(lambda: emb.embed_images(images), args.repeats)
    row("DINOv2-base", "pvtt embed_images, batch 32 at 224", sec, len(images), peak, f32 / 32 * len(images),
        note=f"vectors {vec.shape}")
    del model, emb
    torch.cuda.empty_cache()


# --- OWLv2 base / Grounding DINO tiny -----------------------------------------------------------------
def bench_detectors(clip: Clip, args) -> None:
    from transformers import GroundingDinoConfig, GroundingDinoForObjectDetection, Owlv2Config, Owlv2ForObjectDetection

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "models"))
    from conftest import tiny_tokenizer

    from pvtt.locate.detector import DetectorLocator

    frame = clip.frames[0]
    for family, cls, config in [
        ("owlv2", Owlv2ForObjectDetection, Owlv2Config(vision_config={"image_size": 960, "patch_size": 16})),
        ("grounding-dino", GroundingDinoForObjectDetection, GroundingDinoConfig()),
    ]:
        model = build(cls, config)
        det = DetectorLocator(device="cuda", dtype="bf16", family=family, threshold=0.0)
        det.setup(model=model, processor=tiny_tokenizer())
        queries = ["a photo of mug", "a glazed ceramic mug with a blue stripe"]
        with torch.inference_mode():
            try:
                f = flops_of(lambda: det.detect(frame, queries))
            except Exception as exc:
                print(f"{family}: flop count failed: {exc}", flush=True)
                f = None
        sec, peak, box = timed(lambda: det.detect(frame, queries), max(args.repeats, 5))
        name = "OWLv2-base-p16 (960 px)" if family == "owlv2" else "GroundingDINO-tiny (800x1333)"
        row(name, "pvtt detect on one 720p frame, 2 queries", sec, 1, peak, f)
        del model, det
        torch.cuda.empty_cache()


# --- Qwen2.5-VL-7B ----------------------------------------------------------------------------------
def bench_qwen(clip: Clip, args) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "models"))
    from conftest import tiny_tokenizer

    from pvtt.vlm import VlmSettings
    from pvtt.vlm.qwen import QwenVLM

    model = qwen25_vl_7b()
    model.generation_config.min_new_tokens = 128  # random weights: never stop early
    frames = np.stack([cv2.resize(f, (448, 448)) for f in clip.frames])
    clips = [Clip(f"c{i}", np.roll(frames, i * 7, axis=0), 20.0) for i in range(args.qwen_batch)]
    for batch, static in [(1, False), (args.qwen_batch, False), (args.qwen_batch, True)]:
        vlm = QwenVLM(VlmSettings(device="cuda", dtype="bf16", batch_size=batch, num_frames=16, frame_size=448,
                                  caption_tokens=128, static_cache=static))
        vlm.setup(model=model, processor=tiny_tokenizer())
        enc = vlm._encode([("video", (frames[:16], 20.0)), ("text", "describe the video " * 20)])
        try:
            sec, peak, out = timed(lambda: vlm.caption(clips[:batch]), 1 if batch > 1 else args.repeats)
        except Exception as exc:  # static cache support varies by transformers version
            print(f"qwen batch {batch} static={static}: {type(exc).__name__}: {exc}", flush=True)
            continue
        tokens = len(enc["ids"])
        prefill = 2 * 7.6e9 * tokens * batch
        row("Qwen2.5-VL-7B", f"caption: {batch} clip(s)/generate, 16x448x448, 128 new tokens"
            + (", static cache" if static else ""), sec / batch, None, peak, prefill / batch,
            note=f"{tokens} prompt tokens/clip; s_per_clip amortised; tflops = prefill only")
    del model
    torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="sam2,depth,dino,detectors,qwen")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sam2-batch", type=int, default=8)
    parser.add_argument("--qwen-batch", type=int, default=4)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    print(torch.__version__, torch.cuda.get_device_name(), flush=True)
    clip = clip_720p()
    benches = {"sam2": bench_sam2, "depth": bench_depth, "dino": bench_dino, "detectors": bench_detectors,
               "qwen": bench_qwen}
    for name in args.only.split(","):
        t0 = time.perf_counter()
        try:
            benches[name](clip, args)
        except Exception as exc:
            import traceback

            traceback.print_exc()
            print(f"{name} FAILED: {type(exc).__name__}: {exc}", flush=True)
        print(f"[{name} took {time.perf_counter() - t0:.0f}s]", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                                              "rows": ROWS}, indent=1))
    print("| model | variant | s/clip | frames/s | peak GiB | TFLOP/s | note |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in ROWS:
        print(f"| {r['model']} | {r['variant']} | {r['s_per_clip']} | {r['fps']} | {r['peak_gib']} | {r['tflops']} | {r['note']} |")


if __name__ == "__main__":
    main()
