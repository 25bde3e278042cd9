"""Full-architecture models with random weights, built from their published configs on the GPU (bf16).

Shared by the GPU benchmarks: ``bench_models_perception.py`` times them in isolation, ``gpu_build.py`` saves
them with ``save_pretrained`` (with a small word-level tokenizer where the model has a text side) and names the
folders in the config, so ``pvtt build`` loads them through its real loading code. Speed and memory do not
depend on weight values; outputs are meaningless.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DEV = torch.device("cuda")
DT = torch.bfloat16


def build(cls, *args, **kwargs):
    """``cls(*args, **kwargs)`` created on the GPU (fast random init), in bf16, eval mode."""
    torch.manual_seed(0)
    with torch.device(DEV):
        model = cls(*args, **kwargs)
    return model.to(device=DEV, dtype=DT).eval()  # some buffers are created on the CPU regardless


def word_tokenizer(vocab_size: int = 0):
    """A word-level tokenizer with Qwen's chat tokens; with ``vocab_size`` it names every id of the model's
    vocabulary, so whatever a random-weight model generates decodes to (filler) text."""
    sys.path.insert(0, str(ROOT / "tests" / "models"))
    from tiny_models import tiny_tokenizer

    return tiny_tokenizer(vocab_size)


SAM2_LARGE_BACKBONE = dict(
    model_type="sam2_hiera_det_model", hidden_size=144, num_attention_heads=2, image_size=[1024, 1024],
    blocks_per_stage=[2, 6, 36, 4], embed_dim_per_stage=[144, 288, 576, 1152],
    num_attention_heads_per_stage=[2, 4, 8, 16], window_size_per_stage=[8, 4, 16, 8],
    global_attention_blocks=[23, 33, 43], window_positional_embedding_background_size=[7, 7])


def sam2_video_large():
    """SAM2.1 hiera-large, video model (224 M)."""
    from transformers import Sam2VideoConfig, Sam2VideoModel

    return build(Sam2VideoModel, Sam2VideoConfig(vision_config=dict(
        model_type="sam2_vision_model", backbone_config=SAM2_LARGE_BACKBONE,
        backbone_channel_list=[1152, 576, 288, 144])))


def sam2_image_large():
    """SAM2.1 hiera-large, image model (the same image encoder and mask decoder, no memory)."""
    from transformers import Sam2Config, Sam2Model

    return build(Sam2Model, Sam2Config(vision_config=dict(
        model_type="sam2_vision_model", backbone_config=SAM2_LARGE_BACKBONE,
        backbone_channel_list=[1152, 576, 288, 144])))


def owlv2_base():
    """OWLv2 base patch16 ensemble (960 px input)."""
    from transformers import Owlv2Config, Owlv2ForObjectDetection

    return build(Owlv2ForObjectDetection, Owlv2Config(vision_config={"image_size": 960, "patch_size": 16}))


def dinov2_base():
    from transformers import Dinov2Config, Dinov2Model

    return build(Dinov2Model, Dinov2Config())  # the defaults are dinov2-base


def depth_anything_v2_large():
    """Depth Anything V2-Large (335 M)."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    backbone = Dinov2Config(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, image_size=518,
                            patch_size=14, out_indices=[5, 12, 18, 24], reshape_hidden_states=False,
                            apply_layernorm=True, layerscale_value=1.0)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=1024,
                                 neck_hidden_sizes=[256, 512, 1024, 1024], fusion_hidden_size=256)
    return build(DepthAnythingForDepthEstimation, config)


def qwen25_vl_7b():
    """Qwen2.5-VL-7B-Instruct (8.3 B); generation never stops early (random weights)."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                         num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=128000,
                         rms_norm_eps=1e-6, rope_parameters={"rope_type": "default", "rope_theta": 1e6,
                                                             "mrope_section": [16, 24, 24]},
                         bos_token_id=151643, eos_token_id=151645),
        vision_config=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                           fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2))
    model = build(Qwen2_5_VLForConditionalGeneration, config)
    model.generation_config.eos_token_id = 151645
    return model


# --- every model a configured run reads, saved where pvtt's loader finds it ---------------------------
def _generative(name: str):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_generative

    return getattr(bench_generative, name)()


def _with_tokenizer(model):
    return model, word_tokenizer()


# config key -> builder of (model, tokenizer or None) / a diffusers pipeline
BUILDERS = {
    "locate.detector.model": lambda: _with_tokenizer(owlv2_base()),
    "cutout.grounded.detector.model": lambda: _with_tokenizer(owlv2_base()),
    "segment.sam2.model": lambda: (sam2_video_large(), None),
    "cutout.grounded.model": lambda: (sam2_image_large(), None),
    "embed.model": lambda: (dinov2_base(), None),
    "depth.model": lambda: (depth_anything_v2_large(), None),
    "propagate.vace.depth_model": lambda: (depth_anything_v2_large(), None),
    "vlm.model": lambda: (qwen25_vl_7b(), word_tokenizer(152064)),
    "insert.flux_fill.model": lambda: (_generative("flux_fill_pipeline"), None),
    "insert.flux_fill.redux_model": lambda: (_generative("redux_pipeline"), None),
    "propagate.vace.model": lambda: (_generative("vace_pipeline"), None),
    "propagate.motion_lora.model": lambda: (_generative("svd_pipeline"), None),
}


def save_required(config, roots: list[Path], builders: dict | None = None) -> dict[str, str]:
    """Build and ``save_pretrained`` every model ``config`` needs (``pvtt.weights.required.required_models``);
    return ``{config key: folder}`` overrides. Keys naming the same weights share one folder; each folder goes to
    the first of ``roots`` with room for it (the GPU machine's disk is smaller than the sum of the big models).
    A needed key without a builder is an error, so the run never silently keeps a hub id it cannot load."""
    import shutil
    import time

    from pvtt.weights.required import required_models

    builders = builders or BUILDERS
    needed = required_models(config)
    missing = [r.key for r in needed if r.key not in builders]
    if missing:
        raise KeyError(f"no full-size builder for {missing}")
    folders: dict[str, Path] = {}  # weights id -> folder
    sets: dict[str, str] = {}
    for req in needed:
        saved = [r / req.model.replace("/", "--") for r in roots]
        saved = [f for f in saved if (f / "config.json").is_file() or (f / "model_index.json").is_file()]
        if req.model not in folders and saved:  # saved by an earlier run with the same roots
            folders[req.model] = saved[0]
        if req.model not in folders:
            t0 = time.perf_counter()
            model, tokenizer = builders[req.key]()
            size = sum(p.numel() * p.element_size() for p in _parameters(model))
            root = next((r for r in roots if shutil.disk_usage(_existing(r)).free > 1.2 * size + 2**30), None)
            if root is None:
                raise OSError(f"no room for {req.model} ({size / 2**30:.1f} GiB) in any of {roots}")
            folder = root / req.model.replace("/", "--")
            model.save_pretrained(folder)
            if tokenizer is not None:
                tokenizer.save_pretrained(folder)
            del model
            torch.cuda.empty_cache()
            folders[req.model] = folder
            print(f"[weights {req.model} ({size / 2**30:.1f} GiB) -> {folder} in {time.perf_counter() - t0:.0f}s]",
                  flush=True)
        sets[req.key] = str(folders[req.model])
    return sets


def _parameters(model):
    if isinstance(model, torch.nn.Module):
        return list(model.parameters())
    return [p for c in getattr(model, "components", {}).values() if isinstance(c, torch.nn.Module)
            for p in c.parameters()]


def _existing(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path
