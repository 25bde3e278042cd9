"""flux-fill, motion-lora, vace-depth/points and auto end to end on tiny random pipelines (CPU, seconds)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")

from tiny_pipelines import (moving_tracks, product_mask, tiny_flux_depth_inpaint, tiny_flux_fill,  # noqa: E402
                      tiny_wan_vace)

from pvtt.compose import box_of_mask  # noqa: E402
from pvtt.demo import draw_product  # noqa: E402
from pvtt.insert.flux_fill import FluxFillInserter  # noqa: E402
from pvtt.propagate import PropagateResult  # noqa: E402
from pvtt.propagate.auto import AutoPropagator  # noqa: E402
from pvtt.propagate.motion_lora import MotionLoraPropagator, load_loras, save_loras  # noqa: E402
from pvtt.propagate.vace import VaceDepthPropagator, VacePointsPropagator  # noqa: E402
from pvtt.types import InsertResult  # noqa: E402


@pytest.fixture(scope="module")
def wan():
    pytest.importorskip("ftfy")
    return tiny_wan_vace()


def rgba_of(alpha):
    rgba = np.full(alpha.shape + (4,), 200, np.uint8)
    rgba[..., 3] = (alpha * 255).astype(np.uint8)
    return rgba


def edited_first_frame(clip):
    frame = clip.frames[0].copy()
    frame[8:24, 12:20] = (200, 30, 30)
    return frame


# --- insert flux-fill ----------------------------------------------------------------------------------
@pytest.mark.parametrize("control,build", [("none", tiny_flux_fill), ("depth", tiny_flux_depth_inpaint)])
def test_flux_fill_repaints_only_the_region(small_clip, control, build):
    inserter = FluxFillInserter(device="cpu", steps=2, max_area=32 * 32, max_sequence_length=16, control=control,
                                mask_dilate=2, feather=0)
    inserter.setup(model=build())
    mask_a = product_mask(small_clip.frames)[0]
    depth = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    frame = small_clip.frames[0]
    out = inserter.insert(frame, frame, mask_a, box_of_mask(mask_a), draw_product(1, 24, 0),
                          instruction="replace the mug", depth=depth)
    assert isinstance(out, InsertResult) and out.frame.shape == (32, 32, 3) and out.frame.dtype == np.uint8
    assert out.box.height > 0 and out.alpha.max() > 0.5 and out.info["backend"] == "flux-fill"
    region = inserter.last_region
    assert out.info["region_pixels"] == region.sum() and not region.all()
    assert (out.frame[~region] == frame[~region]).all()
    assert (out.frame[region] != frame[region]).any()


# --- propagate motion-lora -----------------------------------------------------------------------------
def motion_lora(svd, **kw):
    settings = dict(device="cpu", height=32, width=32, train_steps=3, train_frames=4, num_frames=4,
                    inference_steps=2, rank=4, lr=1e-2)
    backend = MotionLoraPropagator(**{**settings, **kw})
    backend.setup(model=svd)
    return backend


def test_motion_lora_trains_only_temporal_self_attention(svd):
    backend = motion_lora(svd)
    backend._add_adapter()
    names = list(backend.trainable_parameters())
    assert names and all(".temporal_transformer_blocks." in n and ".attn1." in n and ".lora_" in n for n in names)
    assert {n.split(".attn1.")[1].split(".lora_")[0] for n in names} == {"to_q", "to_k", "to_v", "to_out.0"}
    backend._disable_adapter()
    assert not backend.trainable_parameters()


def test_motion_lora_changes_the_lora_not_the_base(svd, small_clip, tmp_path):
    backend = motion_lora(svd)
    base = {k.replace(".base_layer", ""): v.clone() for k, v in svd.unet.state_dict().items() if "lora_" not in k}
    state = backend.train_lora(small_clip)
    after = {k.replace(".base_layer", ""): v for k, v in svd.unet.state_dict().items() if "lora_" not in k}
    assert base.keys() == after.keys() and all(torch.equal(base[k], after[k]) for k in base)
    assert any(k.endswith("lora_B.weight") and v.abs().sum() > 0 for k, v in state.items())  # B starts at 0
    assert all("temporal_transformer_blocks" in k and ".attn1." in k for k in state)
    path = save_loras([state], tmp_path / "loras" / f"{small_clip.id}.safetensors")
    [loaded] = load_loras(path)
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    first = edited_first_frame(small_clip)
    with_lora = backend.generate(first, path, num_frames=9)  # 3 chunks: 4 + 3 + 2 new frames
    without = backend.generate(first, None, num_frames=9)
    assert with_lora.shape == (9, 32, 32, 3) and with_lora.dtype == np.uint8
    assert not np.array_equal(with_lora, without)


def test_motion_lora_propagate_trains_when_no_lora_is_given(svd, small_clip):
    backend = motion_lora(svd, train_steps=1, mask_dilate=2, feather=1)
    masks = product_mask(small_clip.frames)
    result = backend.propagate(small_clip, None, masks, None, edited_first_frame(small_clip))
    assert result.frames.shape == small_clip.frames.shape
    assert (result.frames[0] == edited_first_frame(small_clip)).all()
    # SVD regenerated every pixel; outside the (dilated, feathered) product region the source is back
    from pvtt.compose import dilate

    outside = ~dilate(masks, backend.settings.mask_dilate + 2 * backend.settings.feather)
    assert outside[1:].any() and (result.frames[1:][outside[1:]] == small_clip.frames[1:][outside[1:]]).all()
    inside = masks[1:]
    assert not np.array_equal(result.frames[1:][inside], small_clip.frames[1:][inside])


# --- propagate vace-depth / vace-points ---------------------------------------------------------------
def vace(cls, wan, **kw):
    backend = cls(device="cpu", steps=2, max_sequence_length=16, max_area=32 * 32, **kw)
    backend.setup(model=wan)
    return backend


def test_vace_loop_matches_the_plain_pipeline_call(wan, small_clip):
    from PIL import Image

    backend = vace(VacePointsPropagator, wan, batch_cfg=False)
    video, mask = small_clip.frames, product_mask(small_clip.frames)
    ours = backend.generate(video, mask, None, "a red mug")
    plain = wan(video=[Image.fromarray(f) for f in video], mask=[Image.fromarray(m.astype(np.uint8) * 255) for m in mask],
                prompt="a red mug", negative_prompt=backend.settings.negative_prompt, height=32, width=32, num_frames=9,
                num_inference_steps=2, guidance_scale=5.0, generator=torch.Generator().manual_seed(0),
                max_sequence_length=16, output_type="np").frames[0]
    assert np.abs(ours.astype(int) - np.clip(plain * 255 + 0.5, 0, 255).astype(int)).max() <= 1
    backend.settings.batch_cfg = True
    assert np.abs(backend.generate(video, mask, None, "a red mug").astype(int) - ours).max() <= 2


@pytest.mark.parametrize("cls", [VaceDepthPropagator, VacePointsPropagator])
def test_vace_keeps_the_source_outside_the_region(wan, small_clip, cls):
    backend = vace(cls, wan, feather=0, mask_dilate=1, max_frames=5)  # 9 frames: two chunks of 5
    masks = product_mask(small_clip.frames)
    depth = np.tile(np.linspace(0, 1, 32, dtype=np.float32), (9, 32, 1))
    first = edited_first_frame(small_clip)
    result = backend.propagate(small_clip, None, masks, moving_tracks(masks), first, instruction="a red bottle",
                               product=draw_product(1, 24, 0), depth=depth)
    assert isinstance(result, PropagateResult) and result.frames.shape == small_clip.frames.shape
    assert result.strategy == cls.name and result.info["strategy"] == cls.name
    assert (result.frames[0] == first).all()
    region = backend.last_region[1:]
    assert not region.all()
    assert (result.frames[1:][~region] == small_clip.frames[1:][~region]).all()
    assert (result.frames[1:][region] != small_clip.frames[1:][region]).any()


def test_vace_points_needs_tracks(wan, small_clip):
    backend = vace(VacePointsPropagator, wan)
    with pytest.raises(ValueError, match="tracked points"):
        backend.propagate(small_clip, None, product_mask(small_clip.frames), None, small_clip.frames[0])


def test_auto_delegates_and_records_its_choice(wan, small_clip):
    auto = AutoPropagator(vace=dict(device="cpu", steps=1, max_sequence_length=16, max_area=32 * 32))
    auto.setup(model=wan)
    masks = product_mask(small_clip.frames)
    depth = np.zeros((9, 32, 32), np.float32)
    same = np.zeros((32, 32), np.float32)
    same[8:24, 11:21] = 1  # A's box shape
    result = auto.propagate(small_clip, None, masks, moving_tracks(masks), small_clip.frames[0], product=rgba_of(same),
                            depth=depth)
    assert result.strategy == "vace-depth" and "IoU" in result.reason and result.info["auto"]["iou"] > 0.75
    thin = np.zeros((32, 32), np.float32)
    thin[14:18, 2:30] = 1
    result = auto.propagate(small_clip, None, masks, moving_tracks(masks), small_clip.frames[0], product=rgba_of(thin))
    assert result.strategy == "vace-points" and "shapes differ" in result.reason


def test_short_key_attention_matches_sdpa():
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0

    from pvtt.propagate.motion_lora import ShortKeyAttention

    torch.manual_seed(0)
    attn = Attention(query_dim=32, cross_attention_dim=16, heads=4, dim_head=8)
    x = torch.randn(3, 50, 32)
    for context, short in [(torch.randn(3, 1, 16), True), (torch.randn(3, 14, 16), True), (torch.randn(3, 40, 16), False)]:
        ref = AttnProcessor2_0()(attn, x, context)
        processor = ShortKeyAttention(max_keys=32)
        calls = []
        processor.fallback = lambda *a, **k: calls.append(1) or AttnProcessor2_0()(*a, **k)
        out = processor(attn, x, context)
        assert torch.allclose(out, ref, atol=1e-5), (context.shape, (out - ref).abs().max())
        assert (not calls) == short  # written out for few keys, SDPA for many
    self_attn = Attention(query_dim=32, heads=4, dim_head=8)
    frames = torch.randn(6, 14, 32)  # temporal self-attention: 14 keys
    assert torch.allclose(ShortKeyAttention()(self_attn, frames), AttnProcessor2_0()(self_attn, frames), atol=1e-5)
