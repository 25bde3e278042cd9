"""propagate ``i2vedit`` (I2VEdit coarse + fine) on a tiny SVD: properties that hold with any weights."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from tiny_pipelines import render_template  # noqa: E402

from pvtt.propagate import I2VEditSettings  # noqa: E402
from pvtt.propagate.i2vedit import (Controller, I2VEditAttention, I2VEditPropagator, TensorStore,  # noqa: E402
                                    attention_difference, preservation_mask, smooth_area_perturbation)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def frames(count=4, size=32):
    return np.ascontiguousarray(render_template(0, 0, height=size, width=size, frames_per_shot=9)[:count])


def backend(svd, **kw):
    settings = dict(device="cpu", dtype="fp32", height=32, width=32, inference_steps=4, num_frames=4, rank=4,
                    train_steps=1, train_frames=3, lr=1e-2, sarp=False)
    b = I2VEditPropagator(**{**settings, **kw})
    b.setup(model=svd)
    return b


# --- SARP ------------------------------------------------------------------------------------------
def test_sarp_touches_only_flat_pixels_and_only_by_sigma():
    image = torch.zeros(1, 3, 64, 64)
    image[:, :, :, 32:] = torch.linspace(-1, 1, 32).view(1, 1, 1, 32).repeat(1, 3, 64, 1) * 0.9  # a ramp: textured
    image[:, :, :, :32] = 0.25  # flat
    out, smooth = smooth_area_perturbation(image, threshold=0.001, sigma=0.005,
                                           generator=torch.Generator().manual_seed(0))
    diff = (out - image)[0]
    smooth = smooth[0, 0]
    assert smooth[5:-5, 3:28].all()  # the flat half's interior
    assert not smooth[:, 33:-1].any()  # the ramp has gradient everywhere
    assert (diff[:, ~smooth] == 0).all()  # nothing else changes
    assert abs(float(diff[:, smooth].std()) - 0.005) < 0.0005 and abs(float(diff[:, smooth].mean())) < 0.0005


# --- adaptive spatial attention matching ---------------------------------------------------------------
def test_attention_difference_is_half_the_l1_distance_of_the_maps_mean_over_heads():
    g = torch.Generator().manual_seed(0)
    q_s, k_s, q_e, k_e = (torch.randn(2, 3, 10, 8, generator=g) for _ in range(4))
    a_s = (q_s @ k_s.transpose(-1, -2) / math.sqrt(8)).softmax(-1)
    a_e = (q_e @ k_e.transpose(-1, -2) / math.sqrt(8)).softmax(-1)
    expected = (a_s - a_e).abs().sum(-1).mean(1) / 2
    assert torch.allclose(attention_difference(q_s, k_s, q_e, k_e), expected, atol=1e-6)
    assert float(attention_difference(q_s, k_s, q_s, k_s).abs().max()) < 1e-6
    m = preservation_mask(q_s, k_s, q_e, k_e, 0.35)
    assert torch.equal(m, torch.where(expected >= 0.35, torch.ones_like(expected), expected).to(m.dtype)) or \
        torch.allclose(m, torch.where(expected >= 0.35, torch.ones_like(expected), expected), atol=1e-6)


_INTERPRETED_KERNEL = """
import json, math, sys, torch
from pvtt.propagate.i2vedit import attention_difference
g = torch.Generator().manual_seed(0)
errors = []
for frames, heads, tokens, dim in [(2, 3, 70, 8), (1, 2, 64, 64), (2, 1, 33, 20)]:
    q_s, k_s, k_e = (torch.randn(frames, heads, tokens, dim, generator=g) * 2 for _ in range(3))
    q_e = q_s + 0.3 * torch.randn(q_s.shape, generator=g)
    # the processors' layout: (batch, tokens, heads, dim) viewed as (batch, heads, tokens, dim)
    q_s = q_s.transpose(1, 2).contiguous().transpose(1, 2)
    a_s = (q_s @ k_s.transpose(-1, -2) / math.sqrt(dim)).softmax(-1)
    a_e = (q_e @ k_e.transpose(-1, -2) / math.sqrt(dim)).softmax(-1)
    expected = ((a_s - a_e).abs().sum(-1).mean(1) / 2).clamp(0, 1)
    got = attention_difference(q_s, k_s, q_e, k_e, kernel="triton")
    errors.append([float((got - expected).abs().max()), float(expected.mean()), list(got.shape)])
same = attention_difference(q_s, k_s, q_s, k_s, kernel="triton")
print(json.dumps({"errors": errors, "same": float(same.abs().max())}))
"""


def test_fused_triton_difference_equals_the_formula_under_the_interpreter(tmp_path):
    """The Triton kernel the GPU runs, executed by Triton's CPU interpreter: rows and keys that are not a
    multiple of its blocks, head sizes that are not a power of two, strided queries."""
    import json
    import os
    import subprocess
    import sys

    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    out = subprocess.run([sys.executable, "-c", _INTERPRETED_KERNEL], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for error, mean, shape in result["errors"]:
        assert error < 1e-5 and 0.3 < mean < 1
    assert [r[2] for r in result["errors"]] == [[2, 70], [1, 64], [2, 33]]
    assert result["same"] < 1e-6


def test_difference_kernel_auto_is_torch_off_cuda():
    from pvtt.propagate.i2vedit import difference_kernel

    assert difference_kernel("auto", torch.device("cpu")) == "torch"
    assert difference_kernel("torch", torch.device("cpu")) == "torch"


def attention_module(dim=16, heads=2):
    from diffusers.models.attention_processor import Attention

    torch.manual_seed(0)
    return Attention(query_dim=dim, heads=heads, dim_head=dim // heads)


def project(attn, x):
    b, heads = x.shape[0], attn.heads
    return [f(x).view(b, -1, heads, f.out_features // heads).transpose(1, 2) for f in (attn.to_q, attn.to_k, attn.to_v)]


def out_proj(attn, y):
    return attn.to_out[0](y.transpose(1, 2).reshape(y.shape[0], -1, y.shape[1] * y.shape[3]))


@pytest.mark.parametrize("mode", ["adaptive", "copy"])
def test_spatial_matching_mixes_source_and_edit_attention_in_the_conditional_branch(mode):
    attn = attention_module()
    g = torch.Generator().manual_seed(1)
    source, edit = torch.randn(3, 12, 16, generator=g), torch.randn(6, 12, 16, generator=g)  # 3 frames; [uncond, cond]
    settings = I2VEditSettings(attention_matching=mode, mask_threshold=0.35)
    ctrl = Controller(settings, TensorStore(0), mode="edit", step=2, guided=True)
    q_s, k_s, _ = project(attn, source)
    ctrl.store.put(("q", 2, "down.0"), q_s)
    ctrl.store.put(("k", 2, "down.0"), k_s)
    with torch.no_grad():
        out = I2VEditAttention(ctrl, "spatial", "down.0")(attn, edit)
        q, k, v = project(attn, edit)
        a_s = (q_s @ k_s.transpose(-1, -2) / math.sqrt(8)).softmax(-1)
        a_e = (q[3:] @ k[3:].transpose(-1, -2) / math.sqrt(8)).softmax(-1)
        d = ((a_s - a_e).abs().sum(-1).mean(1) / 2)
        m = torch.where(d >= 0.35, torch.ones_like(d), d)[:, None, :, None] if mode == "adaptive" else 0
        cond = out_proj(attn, ((1 - m) * a_s + m * a_e) @ v[3:])
        uncond = out_proj(attn, (q[:3] @ k[:3].transpose(-1, -2) / math.sqrt(8)).softmax(-1) @ v[:3])
    assert torch.allclose(out[3:], cond, atol=1e-5)
    assert torch.allclose(out[:3], uncond, atol=1e-5)
    if mode == "adaptive":
        assert 0 < float((m < 1).float().mean()) <= 1  # some tokens are preserved, some are not


# --- temporal attention selector and skip-interval ---------------------------------------------------------
def test_temporal_selector_schedule_follows_the_reference():
    ctrl = Controller(I2VEditSettings(), TensorStore(0), steps=25)
    taken = {}
    for step in range(25):
        ctrl.step = step
        taken[step] = {layer for layer in ("down.0", "down.4", "down.5", "mid.0", "up.0", "up.1", "up.5")
                       if ctrl.temporal_selected(layer)}
    assert all(len(taken[s]) == 7 for s in range(12))  # steps 0-11: every layer
    assert all(taken[s] == {"down.4", "down.5", "mid.0", "up.0", "up.1"} for s in range(12, 20))
    assert all(not taken[s] for s in range(20, 25))


def test_temporal_maps_replace_the_conditional_branch_and_later_chunks_see_the_first_chunks_keys():
    attn = attention_module()
    g = torch.Generator().manual_seed(2)
    settings = I2VEditSettings(temporal_steps=(1.0, 1.0), skip_interval_frames=None)
    ctrl = Controller(settings, TensorStore(1e9), mode="invert", step=0, first_kv=True)
    first = torch.randn(5, 4, 16, generator=g)  # 5 pixels x 4 frames of the first chunk
    layer = I2VEditAttention(ctrl, "temporal", "mid.0")
    with torch.no_grad():
        layer(attn, first)  # chunk 0's inversion: records keys/values and maps
        k0, v0 = project(attn, first)[1:]
        assert torch.equal(ctrl.store.get(("kv", "invert", 0, "mid.0"), "cpu")[0], k0)
        # chunk 1's inversion prepends chunk 0's keys/values
        ctrl.first_kv, ctrl.use_first_kv = False, True
        later = torch.randn(5, 3, 16, generator=g)
        out = layer(attn, later)
        q, k, v = project(attn, later)
        keys, values = torch.cat([k0, k], 2), torch.cat([v0, v], 2)
        maps = (q @ keys.transpose(-1, -2) / math.sqrt(8)).softmax(-1)
        assert maps.shape[-1] == 4 + 3
        assert torch.allclose(out, out_proj(attn, maps @ values), atol=1e-5)
        assert torch.allclose(ctrl.store.get(("t", 0, "mid.0"), "cpu"), maps, atol=1e-6)
        # chunk 1's guided edit: the conditional half takes the recorded source maps
        ctrl.store.put(("kv", "edit", 0, "mid.0"), torch.stack([torch.cat([k0] * 2), torch.cat([v0] * 2)]))
        ctrl.mode, ctrl.guided = "edit", True
        edit = torch.randn(10, 3, 16, generator=g)
        out = layer(attn, edit)
        q, k, v = project(attn, edit)
        keys, values = torch.cat([torch.cat([k0] * 2), k], 2), torch.cat([torch.cat([v0] * 2), v], 2)
        own = (q[:5] @ keys[:5].transpose(-1, -2) / math.sqrt(8)).softmax(-1)
        assert torch.allclose(out[:5], out_proj(attn, own @ values[:5]), atol=1e-5)
        assert torch.allclose(out[5:], out_proj(attn, maps @ values[5:]), atol=1e-5)


def test_skip_interval_keeps_evenly_spaced_frames_of_the_first_chunk():
    attn = attention_module()
    ctrl = Controller(I2VEditSettings(skip_interval_frames=3), TensorStore(1e9), mode="invert", step=1, first_kv=True)
    first = torch.randn(5, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        I2VEditAttention(ctrl, "temporal", "up.1")(attn, first)
        k, v = project(attn, first)[1:]
    kept = ctrl.store.get(("kv", "invert", 1, "up.1"), "cpu")
    assert torch.equal(kept[0], k[:, :, [0, 8, 15]]) and torch.equal(kept[1], v[:, :, [0, 8, 15]])


# --- inversion, reconstruction, the sampling loop ------------------------------------------------------------
def test_denoise_loop_equals_the_library_pipeline_call(svd):
    from PIL import Image

    b = backend(svd, max_guidance_scale=2.5, attention_matching="off")
    clip = frames()
    x = b.noise(len(clip), 0)
    svd.scheduler.set_timesteps(4)  # the pipeline scales given latents by init_noise_sigma after set_timesteps
    ours = b.denoise(x, clip[0], controlled=False)
    theirs = svd(Image.fromarray(clip[0]), height=32, width=32, num_frames=len(clip), num_inference_steps=4,
                 min_guidance_scale=1.0, max_guidance_scale=2.5, fps=7, motion_bucket_id=127, noise_aug_strength=0.02,
                 generator=torch.Generator("cpu").manual_seed(0), latents=x / svd.scheduler.init_noise_sigma,
                 output_type="latent").frames
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=1e-4)


def damped(svd):
    """The tiny SVD with its output layer scaled down: a smooth denoiser, so the sampler's discretisation
    error (not the random weights' stiffness) dominates the reconstruction error."""
    import copy

    pipe = copy.copy(svd)
    pipe.unet = copy.deepcopy(svd.unet)
    with torch.no_grad():
        pipe.unet.conv_out.weight.mul_(0.05)
        pipe.unet.conv_out.bias.mul_(0.05)
    return pipe


def test_inversion_then_reconstruction_gives_back_the_source_tighter_with_more_steps(svd):
    pipe, clip = damped(svd), frames()
    errors = {}
    for steps in (8, 32):  # measured: 0.63 -> 0.21 of the latents' mean magnitude (Euler: first order)
        b = backend(pipe, inference_steps=steps, max_guidance_scale=1.0, attention_matching="copy",
                    temporal_steps=(1.0, 1.0))
        source = b.encode(clip)
        rebuilt = b.denoise(b.invert(clip, source), clip[0])
        errors[steps] = float((rebuilt - source).abs().mean() / source.abs().mean())
    assert errors[32] < errors[8] / 2.5, errors
    assert errors[32] < 0.3, errors


def test_edit_path_with_full_source_attention_equals_the_reconstruction(svd):
    """M = 0 everywhere ('copy') and the selector always on, the source's first frame as the edit: the
    edit path (chunks, LoRA switched off, conditioning) is the inversion followed by the reconstruction."""
    clip = frames()
    b = backend(svd, max_guidance_scale=1.0, attention_matching="copy", temporal_steps=(1.0, 1.0))
    edited = b.edit_chunks(clip, clip[0], None)
    assert not b.controller.store.data  # the store is emptied after the clip
    rebuilt = b.decode(b.denoise(b.invert(clip), clip[0]))
    assert np.abs(edited.astype(int) - rebuilt.astype(int)).max() <= 1


def test_store_keeps_what_exceeds_its_budget_in_host_memory():
    store = TensorStore(budget=0)
    store.put("a", torch.ones(4))
    assert store.bytes == 16 and store.on_device == 0 and torch.equal(store.get("a", "cpu"), torch.ones(4))
    store.drop(lambda key: key == "a")
    assert store.bytes == 0 and not store.data


# --- the whole strategy --------------------------------------------------------------------------------
def test_propagate_edits_a_portrait_clip_chunk_by_chunk_with_each_chunks_lora(svd, tmp_path, monkeypatch):
    from tiny_pipelines import product_mask

    from pvtt.compose import box_of_mask, dilate
    from pvtt.propagate import PropagateSettings, make_propagator
    from pvtt.propagate.motion_lora import MotionLoraPropagator
    from pvtt.types import Clip, InsertResult

    svd.save_pretrained(tmp_path / "svd")
    clip_frames = np.ascontiguousarray(render_template(0, 0, height=40, width=24, frames_per_shot=9)[:7])
    clip = Clip("portrait", clip_frames, 10.0)
    masks = product_mask(clip_frames)
    settings = PropagateSettings(backend="i2vedit", i2vedit=dict(
        model=str(tmp_path / "svd"), device="cpu", dtype="fp32", height=32, width=32, inference_steps=2,
        num_frames=4, rank=4, train_steps=1, train_frames=3, lora_scope="chunk", mask_dilate=1, feather=1))
    b = make_propagator(settings)
    b.setup()
    used, fetched = [], []
    real_use, real_get = MotionLoraPropagator.use_lora, TensorStore.get
    monkeypatch.setattr(MotionLoraPropagator, "use_lora", lambda self, state: (used.append(id(state)),
                                                                               real_use(self, state))[1])
    monkeypatch.setattr(TensorStore, "get", lambda self, key, device: (fetched.append((b.controller.chunk, key)),
                                                                       real_get(self, key, device))[1])
    loras = b.train_loras(clip)
    frame0 = clip_frames[0].copy()
    frame0[masks[0]] = [200, 30, 30]
    inserted = InsertResult(frame=frame0, alpha=masks[0].astype(np.float32), box=box_of_mask(masks[0]))
    result = b.propagate(clip, clip_frames, masks, None, inserted, lora=loras)

    assert result.frames.shape == clip_frames.shape and (result.frames[0] == frame0).all()
    assert result.info["chunks"] == 2 and result.info["loras"] == 2 and len(loras) == 2
    assert used == [id(loras[0]), id(loras[1])]  # chunk k denoised with chunk k's LoRA
    keys = {(chunk, key[0], key[1]) for chunk, key in fetched if key[0] == "kv"}
    assert {(1, "kv", "invert"), (1, "kv", "edit")} <= keys  # the later chunk read the first chunk's keys/values
    assert not any(chunk == 0 and key[0] == "kv" for chunk, key in fetched)
    assert 0 <= result.info["preserved_share"] <= 1
    assert result.info["difference_kernel"] == "torch" and result.info["store_peak_gib"] > 0
    assert result.info["store_on_device_peak_gib"] == 0  # on the CPU the store is host memory
    far = ~np.stack([dilate(m, 6) for m in masks])  # well outside the product region: the source itself
    assert far[1:].any() and (result.frames[1:][far[1:]] == clip_frames[1:][far[1:]]).all()


def test_store_budget_is_the_setting_or_unbounded_off_cuda():
    from pvtt.propagate.i2vedit import store_budget

    assert store_budget(2.5, torch.device("cpu")) == 2.5 * 2 ** 30
    assert store_budget("auto", torch.device("cpu")) == float("inf")
    assert I2VEditSettings().store_gib == "auto" and I2VEditSettings(store_gib=48).store_gib == 48
    with pytest.raises(ValueError):
        I2VEditSettings(store_gib="most")
