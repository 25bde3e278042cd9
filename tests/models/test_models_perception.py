"""segment ``sam2`` and locate ``detector`` end to end on tiny random models."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tiny_models import tiny_clip, tiny_grounding_dino, tiny_owlv2, tiny_sam2_video, tiny_tokenizer  # noqa: E402

from pvtt.errors import RejectItem
from pvtt.locate.detector import DetectorLocator  # noqa: E402
from pvtt.models import ModelNotAvailable  # noqa: E402
from pvtt.segment.sam2 import Sam2Segmenter  # noqa: E402
from pvtt.types import Box, ProductImage  # noqa: E402


@pytest.mark.parametrize("chunk", [1, 2, 8])
def test_sam2_propagates_a_box_into_masks_for_every_frame(chunk):
    clip = tiny_clip(num_frames=5)
    segmenter = Sam2Segmenter(device="cpu", batch_size=chunk)
    segmenter.setup(model=tiny_sam2_video())
    masks = segmenter.segment(clip, Box(10, 5, 40, 30))
    assert masks.data.shape == (clip.num_frames, clip.height, clip.width) and masks.data.dtype == bool
    assert masks.confidence.shape == (clip.num_frames,)
    assert ((masks.confidence >= 0) & (masks.confidence <= 1)).all()


def test_sam2_chunked_encoder_gives_the_same_masks_as_one_frame_at_a_time():
    clip = tiny_clip(num_frames=5)
    model = tiny_sam2_video()
    one, many = Sam2Segmenter(device="cpu", batch_size=1), Sam2Segmenter(device="cpu", batch_size=4)
    one.setup(model=model)
    many.setup(model=model)
    a, b = one.segment(clip, Box(10, 5, 40, 30)), many.segment(clip, Box(10, 5, 40, 30))
    assert (a.data == b.data).mean() > 0.999
    np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-4)


def test_sam2_rejects_a_box_outside_the_frame_and_loads_from_a_directory(tmp_path):
    clip = tiny_clip(num_frames=3)
    tiny_sam2_video().save_pretrained(tmp_path / "sam2")
    # a threshold below any logit: random weights must still give a non-empty mask to check the shapes
    segmenter = Sam2Segmenter(model=str(tmp_path / "sam2"), device="cpu", mask_threshold=-1e4)
    segmenter.setup()
    with pytest.raises(RejectItem, match="outside the"):
        segmenter.segment(clip, Box(100, 100, 200, 200))
    assert segmenter.segment(clip, Box(0, 0, 20, 20)).data.shape == (3, clip.height, clip.width)
    assert pickle.loads(pickle.dumps(segmenter)).model is None


@pytest.mark.parametrize("family,build", [("owlv2", tiny_owlv2), ("grounding-dino", tiny_grounding_dino)])
def test_detector_returns_a_box_inside_the_frame(family, build):
    clip = tiny_clip()
    locator = DetectorLocator(device="cpu", family=family, threshold=0.0)
    locator.setup(model=build(), processor=tiny_tokenizer())
    box = locator.locate(clip, "mug", "a glazed ceramic mug")
    assert box is not None and box.source == f"detector:{family}" and 0 <= box.confidence <= 1
    assert 0 <= box.x0 <= box.x1 <= clip.width and 0 <= box.y0 <= box.y1 <= clip.height


def test_detector_threshold_and_prompts():
    clip = tiny_clip()
    # the tiny Grounding DINO's best score stays below 1 (the tiny OWLv2's saturates at exactly 1.0, which no
    # threshold can exceed): a threshold at that score keeps the box, one just above it finds nothing
    locator = DetectorLocator(device="cpu", family="grounding-dino", threshold=0.0)
    locator.setup(model=tiny_grounding_dino(), processor=tiny_tokenizer())
    best = locator.locate(clip, "mug")
    assert best is not None and 0 < best.confidence < 1
    locator.settings.threshold = best.confidence
    assert locator.locate(clip, "mug") == best
    locator.settings.threshold = float(np.nextafter(best.confidence, 1.0))
    assert locator.locate(clip, "mug") is None
    with pytest.raises(RejectItem, match="product not found"):
        locator.locate(clip, ProductImage("p", np.zeros((4, 4, 4), np.uint8), subcategory="mug"))


def test_detector_without_weights_names_the_default_model(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailable, match="IDEA-Research/grounding-dino-tiny"):
        DetectorLocator(device="cpu", family="grounding-dino").setup()


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_sam2_compiled_gives_the_masks_of_eager(monkeypatch, mode):
    import torch

    # dynamo's capture of the real modules, without inductor's C++ build (minutes on 2 CPUs; the eager backend
    # ignores the mode); inductor and CUDA graphs are checked on the GPU by benchmarks/bench_segment_stage.py
    # --compile (scores against eager)
    modes = {}
    real_compile = torch.compile

    def compile_eager(module, mode=None, **kwargs):
        modes[type(module).__name__] = mode
        return real_compile(module, backend="eager")

    monkeypatch.setattr(torch, "compile", compile_eager)
    clip = tiny_clip(num_frames=5)
    model = tiny_sam2_video()
    eager = Sam2Segmenter(device="cpu", batch_size=2)
    eager.setup(model=model)
    a = eager.segment(clip, Box(10, 5, 40, 30))
    compiled = Sam2Segmenter(device="cpu", batch_size=2, compile=True, compile_mode=mode)
    twin = tiny_sam2_video()  # compile replaces the model's modules: a model of its own, the same weights
    twin.load_state_dict(model.state_dict())
    compiled.setup(model=twin)
    b = compiled.segment(clip, Box(10, 5, 40, 30))
    assert type(compiled.model.memory_attention).__name__ == "OptimizedModule"
    # the setting reaches torch.compile; CUDA graphs only on the per-frame memory path, whose outputs are cloned
    # out of the graph pool
    memory_path = ("Sam2VideoMemoryAttention", "Sam2VideoMemoryEncoder", "Sam2VideoMaskDecoder")
    assert {name: modes[name] for name in memory_path} == dict.fromkeys(memory_path, mode)
    assert modes["Sam2VisionModel"] == "default"
    cloned = [bool(getattr(compiled.model, name)._forward_hooks)
              for name in ("vision_encoder", "memory_attention", "memory_encoder", "mask_decoder")]
    assert cloned == [False] + [mode == "reduce-overhead"] * 3
    assert (a.data == b.data).mean() > 0.999
    np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-4)


@pytest.mark.parametrize("setting,value,count", [("memory_attention_kernel", "flash", 2),
                                                 ("encoder_math_attention_tokens", 16, None)])
def test_sam2_attention_kernels_give_the_masks_of_sdpa(setting, value, count):
    import torch
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    clip = tiny_clip(num_frames=5)
    model = tiny_sam2_video()
    sdpa = {"memory_attention_kernel": "sdpa", "encoder_math_attention_tokens": 0}  # SDPA everywhere, as before
    default = Sam2Segmenter(device="cpu", batch_size=2, **sdpa)
    default.setup(model=model)
    assert default.attention_modules == {}
    a = default.segment(clip, Box(10, 5, 40, 30))
    twin = tiny_sam2_video()  # the setting switches the model's modules: a model of its own, the same weights
    twin.load_state_dict(model.state_dict())
    chosen = Sam2Segmenter(device="cpu", batch_size=2, **{**sdpa, setting: value})
    chosen.setup(model=twin)
    calls = []
    if setting == "encoder_math_attention_tokens":  # the windows it takes, and the longer ones left to SDPA
        windows = [m for m in twin.vision_encoder.modules() if type(m).__name__ == "Sam2MultiScaleAttention"]
        name = windows[0].config._attn_implementation
        function = ALL_ATTENTION_FUNCTIONS[name]

        def counting(module, query, key, *args, **kwargs):
            calls.append(key.shape[-2])
            return function(module, query, key, *args, **kwargs)

        ALL_ATTENTION_FUNCTIONS.register(name, counting)
        count = len(windows)
    try:
        b = chosen.segment(clip, Box(10, 5, 40, 30))
    finally:
        if setting == "encoder_math_attention_tokens":
            ALL_ATTENTION_FUNCTIONS.register(name, function)
    assert chosen.attention_modules == {setting: count}
    # only the switched modules' own configs name pvtt's function; the model's shared configs keep theirs
    assert twin.config._attn_implementation == model.config._attn_implementation
    assert twin.config.vision_config.backbone_config._attn_implementation == \
        model.config.vision_config.backbone_config._attn_implementation
    if calls:  # the tiny Hiera has windows of 16 keys (math) and of 64 (SDPA)
        assert min(calls) <= 16 < max(calls)
    assert (a.data == b.data).mean() > 0.999
    np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-4)


def test_sam2_cached_position_encodings_and_fused_gelu_give_the_masks_of_the_model():
    import torch
    import torch.nn.functional as F

    clip = tiny_clip(num_frames=5)
    model = tiny_sam2_video()
    plain = Sam2Segmenter(device="cpu", batch_size=2, cache_position_encodings=False, encoder_gelu="exact")
    plain.setup(model=model)
    assert type(model.vision_encoder.neck.position_encoding).__name__ == "Sam2SinePositionEmbedding"
    assert plain.fused_modules == {}
    a = plain.segment(clip, Box(10, 5, 40, 30))
    twin = tiny_sam2_video()  # the settings switch the model's modules: a model of its own, the same weights
    twin.load_state_dict(model.state_dict())
    fast = Sam2Segmenter(device="cpu", batch_size=2)  # the defaults: both on
    fast.setup(model=twin)
    cached = twin.vision_encoder.neck.position_encoding
    assert type(cached).__name__ == "CachedPositionEncoding"
    mlps = [m for m in twin.vision_encoder.modules() if type(m).__name__ == "Sam2FeedForward"]
    assert fast.fused_modules == {"encoder_gelu": len(mlps)} and len(mlps) > 0
    inner_calls = []
    compute = cached.inner.forward
    cached.inner.forward = lambda *args, **kwargs: inner_calls.append(args[0]) or compute(*args, **kwargs)
    b = fast.segment(clip, Box(10, 5, 40, 30))
    assert inner_calls == []  # every level's encoding came from the cache
    assert (a.data == b.data).mean() > 0.999
    np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-4)
    # the cache holds the computed values, handed out as a broadcast view; other shapes are computed
    channels = twin.config.vision_config.fpn_hidden_size
    for h, w in cached.names:
        got = cached((3, channels, h, w), "cpu", torch.float32)
        assert got.stride(0) == 0 and torch.equal(got, compute((3, channels, h, w), "cpu", torch.float32))
    cached((1, channels, 5, 7), "cpu", torch.float32)
    assert len(inner_calls) == 1
    # the fused MLP: the projection, GELU (the tanh approximation on a GPU, exact on the CPU), the output projection
    x = torch.randn(2, 3, mlps[0].proj_in.in_features)
    with torch.no_grad():
        torch.testing.assert_close(mlps[0](x), mlps[0].proj_out(F.gelu(mlps[0].proj_in(x))), atol=1e-3, rtol=1e-3)
    # a setup without them gives the model its own modules back
    Sam2Segmenter(device="cpu", cache_position_encodings=False, encoder_gelu="exact").setup(model=twin)
    assert type(twin.vision_encoder.neck.position_encoding).__name__ == "Sam2SinePositionEmbedding"
    assert not any("forward" in vars(m) for m in mlps)
