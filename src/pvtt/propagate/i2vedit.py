"""propagate ``i2vedit``: I2VEdit's coarse and fine stages on Stable Video Diffusion, chunk by chunk.

Follows the paper (Ouyang et al., 2024) and its reference code (github Vicky0522/I2VEdit):

- **coarse** — the clip's motion LoRA (trained by :class:`~pvtt.propagate.motion_lora.MotionLoraPropagator`,
  one per clip or one per chunk, ``lora_scope``), loaded for the edit only;
- **EDM inversion** of each source chunk with plain SVD (no LoRA): Euler steps without guidance from the
  clean latents up to ``sigma_max``, conditioned on the chunk's first frame, the reference's schedule (its
  last sigma 0 replaced by ``s[-2]² / s[-3]``). **SARP** first: pixels whose Sobel gradient
  ``|Gx| + |Gy|`` (mean over RGB, ``[-1, 1]`` range) is at most ``sarp_threshold`` get Gaussian noise
  of ``sarp_noise``, for the inversion only. Each inversion step stores, per layer, the spatial
  self-attention's queries/keys and the temporal self-attention's maps, under the edit step that uses
  them (the reference reads its inversion store backwards);
- **fine** — the edit denoises from the inverted latents with the chunk's LoRA, conditioned on the edited
  first frame (chunk 0) or the previous chunk's edited last frame, with classifier-free guidance. In the
  conditional branch only:

  - *spatial attention matching* (``attention_matching: adaptive``): ``A_s = softmax(Q_s K_sᵀ/√d)`` from
    the matching inversion step, ``D = ½ Σ_keys |A_s − A_e|`` (mean over heads), ``M = 1`` where
    ``D ≥ mask_threshold`` else ``D``, output ``((1 − M) A_s + M A_e) V``. Only D needs the attention
    matrices (on CUDA one fused Triton kernel that never writes them, :mod:`pvtt.propagate.difference_kernel`;
    else in row blocks); the output is ``(1 − M)·SDPA(Q_s, K_s, V) + M·SDPA(Q_e, K_e, V)``;
  - *temporal attention selector*: the source's temporal maps replace every layer's before
    ``temporal_steps[0]`` of the steps, only ``temporal_layers``' until ``temporal_steps[1]``, none after;
- **skip-interval attention** (``skip_interval``) for long clips: every later chunk's temporal
  self-attention prepends the first chunk's keys/values of the same layer and step (inversion to
  inversion, edit to edit); chunks overlap by ``overlap`` frames.

Frames reach the model letterboxed (padded to SVD's aspect, cropped back), never stretched.

Memory: the reference writes ~3 GB per step to disk. Here the stores live in GPU memory up to
``store_gib`` (by default what the card has free less a reserve) and in host memory beyond (:class:`TensorStore`); a chunk's store is dropped once the chunk
is edited, the first chunk's keys/values are kept until the clip is done — of ``skip_interval_frames`` of
its frames (4 by default; the reference keeps all 16, ~125 GB at 576x1024, see the setting).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pvtt import compose
from pvtt.propagate import I2VEditSettings, controls
from pvtt.propagate.motion_lora import MotionLoraPropagator, load_loras
from pvtt.types import Clip, Tracks

log = logging.getLogger("pvtt")

# bytes of float32 attention probabilities one block of the adaptive-preservation difference may hold
_D_BLOCK_BYTES = 2 << 30


class TensorStore:
    """Tensors by key, on the device up to ``budget`` bytes and in host memory beyond (pinned on CUDA)."""

    def __init__(self, budget: float):
        self.budget = budget
        self.on_device = 0
        self.data: dict[Any, Any] = {}
        self.bytes = 0
        self.peak = self.peak_on_device = 0  # the most held at once: in all, and on the device

    def put(self, key: Any, tensor: Any) -> None:
        size = tensor.numel() * tensor.element_size()
        tensor = tensor.detach()
        if self.on_device + size <= self.budget or tensor.device.type == "cpu":
            tensor = tensor.clone()
            self.on_device += size if tensor.device.type != "cpu" else 0
        else:
            host = tensor.to("cpu", copy=True)
            tensor = host.pin_memory() if tensor.device.type == "cuda" else host
        self.data[key] = tensor
        self.bytes += size
        self.peak, self.peak_on_device = max(self.peak, self.bytes), max(self.peak_on_device, self.on_device)

    def get(self, key: Any, device: Any) -> Any:
        return self.data[key].to(device, non_blocking=True)

    def drop(self, match: Any) -> None:
        """Forget every key for which ``match(key)`` is true."""
        for key in [k for k in self.data if match(k)]:
            tensor = self.data.pop(key)
            size = tensor.numel() * tensor.element_size()
            self.bytes -= size
            if tensor.device.type != "cpu":
                self.on_device -= size


@dataclass
class Controller:
    """What the attention processors do at the current UNet call (set by the sampling loops)."""

    settings: I2VEditSettings
    store: TensorStore
    mode: str = "off"  # "off" (plain attention), "invert" (record), "edit" (use the records)
    step: int = 0  # the edit step the call belongs to (inversion step i records for edit step n-1-i)
    steps: int = 25
    chunk: int = 0
    guided: bool = False  # the batch is [unconditional, conditional]
    first_kv: bool = False  # skip-interval: this chunk's temporal keys/values are the first chunk's (record them)
    use_first_kv: bool = False  # skip-interval: prepend the first chunk's
    stats: dict = field(default_factory=lambda: {"preserved": []})  # per matched layer and step: share with M < 1
    kernel: str = "torch"  # the attention difference's implementation (difference_kernel, resolved at setup)

    def temporal_selected(self, layer: str) -> bool:
        """The temporal attention selector: does ``layer`` take the source's maps at this step?"""
        first, second = self.settings.temporal_steps
        if self.step < int(first * self.steps):
            return True
        if self.step < int(second * self.steps):
            return layer in self.settings.temporal_layers
        return False


def layer_names(unet: Any) -> dict[str, tuple[str, str]]:
    """Module name → (kind, position) of every self-attention the fine stage controls: ``kind`` is
    'spatial' or 'temporal', ``position`` 'down.i' / 'mid.i' / 'up.i' (i-th of that kind in that part of
    the UNet, in forward order — the reference's attention position counters)."""
    counters: dict[tuple[str, str], int] = {}
    names = {}
    for name, _ in unet.named_modules():
        if not name.endswith(".attn1"):
            continue
        if ".temporal_transformer_blocks." in name:
            kind = "temporal"
        elif ".transformer_blocks." in name:
            kind = "spatial"
        else:
            continue
        part = "down" if name.startswith("down_blocks") else "mid" if name.startswith("mid_block") else "up"
        index = counters.get((kind, part), 0)
        counters[(kind, part)] = index + 1
        names[name] = (kind, f"{part}.{index}")
    return names


class I2VEditAttention:
    """diffusers processor of one self-attention layer (``attn1``) under the fine stage's control."""

    def __init__(self, controller: Controller, kind: str, position: str):
        self.ctrl, self.kind, self.position = controller, kind, position

    def __call__(self, attn: Any, hidden_states: Any, encoder_hidden_states: Any = None, attention_mask: Any = None,
                 temb: Any = None, *args: Any, **kwargs: Any) -> Any:
        import torch.nn.functional as F

        if encoder_hidden_states is not None or attention_mask is not None or hidden_states.ndim != 3:
            raise ValueError(f"i2vedit controls plain self-attention only ({self.kind} {self.position})")
        batch, heads = hidden_states.shape[0], attn.heads
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        dim = k.shape[-1] // heads
        q, k, v = (x.view(batch, -1, heads, dim).transpose(1, 2) for x in (q, k, v))
        c = self.ctrl
        if self.kind == "temporal":
            out = self.temporal(q, k, v)
        elif c.mode == "invert" and c.settings.attention_matching != "off":
            c.store.put(("q", c.step, self.position), q)
            c.store.put(("k", c.step, self.position), k)
            out = F.scaled_dot_product_attention(q, k, v)
        elif c.mode == "edit" and c.settings.attention_matching != "off":
            out = self.spatial_matching(q, k, v)
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(batch, -1, heads * dim).to(q.dtype)
        return attn.to_out[1](attn.to_out[0](out))

    # --- temporal: skip-interval keys/values, recorded maps, the selector ------------------------------
    def temporal(self, q: Any, k: Any, v: Any) -> Any:
        import torch

        c = self.ctrl
        phase = "invert" if c.mode == "invert" else "edit"
        if c.mode != "off" and c.settings.skip_interval:
            if c.first_kv:
                keep = first_frames(k.shape[2], c.settings.skip_interval_frames, k.device)
                c.store.put(("kv", phase, c.step, self.position), torch.stack([k[:, :, keep], v[:, :, keep]]))
            elif c.use_first_kv:
                first = c.store.get(("kv", phase, c.step, self.position), k.device)
                k, v = torch.cat([first[0], k], dim=2), torch.cat([first[1], v], dim=2)
        weights = (q.float() @ k.float().transpose(-1, -2) * q.shape[-1] ** -0.5).softmax(dim=-1)
        if c.mode == "invert":
            c.store.put(("t", c.step, self.position), weights.to(v.dtype))
        elif c.mode == "edit" and c.temporal_selected(self.position):
            source = c.store.get(("t", c.step, self.position), weights.device).float()
            if c.guided:  # the conditional half only
                weights = torch.cat([weights[: len(weights) // 2], source])
            else:
                weights = source
        return weights @ v.float()

    # --- spatial: adaptive attention matching ------------------------------------------------------------
    def spatial_matching(self, q: Any, k: Any, v: Any) -> Any:
        import torch
        import torch.nn.functional as F

        c = self.ctrl
        half = len(q) // 2 if c.guided else 0
        q_s = c.store.get(("q", c.step, self.position), q.device).to(q.dtype)
        k_s = c.store.get(("k", c.step, self.position), k.device).to(k.dtype)
        qe, ke, ve = q[half:], k[half:], v[half:]
        source = F.scaled_dot_product_attention(q_s, k_s, ve)
        if c.settings.attention_matching == "copy":
            cond = source
        else:
            weight = preservation_mask(q_s, k_s, qe, ke, c.settings.mask_threshold, c.kernel)  # (frames, tokens)
            c.stats["preserved"].append((weight < 1).float().mean())  # read once, after the clip
            weight = weight[:, None, :, None].to(ve.dtype)
            cond = (1 - weight) * source + weight * F.scaled_dot_product_attention(qe, ke, ve)
        if not half:
            return cond
        return torch.cat([F.scaled_dot_product_attention(q[:half], k[:half], v[:half]), cond])


def first_frames(frames: int, keep: int | None, device: Any) -> Any:
    """Indices of ``keep`` of ``frames`` frames, evenly spaced, the first included (all when ``keep`` is None)."""
    import torch

    count = frames if keep is None else min(keep, frames)
    return torch.linspace(0, frames - 1, count, device=device).round().long()


def _difference_rows(q_s: Any, k_s_t: Any, q_e: Any, k_e_t: Any, scale: float) -> Any:
    """``½ Σ_keys |softmax(q_s k_s·scale) − softmax(q_e k_e·scale)|`` of a block of query rows, mean over heads."""
    a_s = (q_s.float() @ k_s_t * scale).softmax(dim=-1)
    a_e = (q_e.float() @ k_e_t * scale).softmax(dim=-1)
    return (a_s - a_e).abs().sum(dim=-1).mean(dim=1) / 2


_compiled_rows: Any = None


def _rows_kernel(device: Any) -> Any:
    """:func:`_difference_rows`, on CUDA compiled by torch.compile: eager it reads the probabilities some ten
    times (softmax, difference, absolute value, sum: 1.6 s per guided edit step at 576x1024, 16 frames,
    on an H200); fused, about twice."""
    global _compiled_rows
    if device.type != "cuda":
        return _difference_rows
    if _compiled_rows is None:
        import torch

        _compiled_rows = torch.compile(_difference_rows)  # shapes vary by layer: dynamic after a recompile
    return _compiled_rows


def difference_kernel(choice: str, device: Any) -> str:
    """The implementation ``choice`` (``difference_kernel`` setting) resolves to on ``device``: ``auto`` is
    the fused Triton kernel on CUDA when triton is importable, else torch (compiled on CUDA)."""
    from pvtt.propagate import difference_kernel as fused

    if choice == "auto":
        return "triton" if device.type == "cuda" and fused.available() else "torch"
    if choice == "triton" and not fused.available():
        raise RuntimeError("i2vedit.difference_kernel: 'triton' needs the triton package (CUDA builds of torch "
                           "ship it); use 'torch'")
    return choice


def attention_difference(q_s: Any, k_s: Any, q_e: Any, k_e: Any, kernel: str = "torch") -> Any:
    """``D = ½ Σ_keys |softmax(Q_s K_sᵀ/√d) − softmax(Q_e K_eᵀ/√d)|``, mean over heads: ``(frames, tokens)``
    in [0, 1]. ``kernel`` ``triton``: :mod:`pvtt.propagate.difference_kernel`, which never writes the
    probabilities; ``torch``: float32 probabilities (TF32 products on CUDA, compiled there) in blocks of query
    rows, so no more than ~2 GiB of them is held at a time."""
    import torch

    if kernel == "triton":
        from pvtt.propagate import difference_kernel as fused

        return fused.attention_difference(q_s, k_s, q_e, k_e).clamp_(0, 1)
    frames, heads, tokens, dim = q_s.shape
    keys = k_s.shape[2]
    rows = max(1, min(tokens, _D_BLOCK_BYTES // (frames * heads * keys * 4 * 3)))
    out = torch.empty(frames, tokens, device=q_s.device, dtype=torch.float32)
    ks, ke = k_s.float().transpose(-1, -2), k_e.float().transpose(-1, -2)
    rows_kernel = _rows_kernel(q_s.device)
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        for start in range(0, tokens, rows):
            stop = min(tokens, start + rows)
            out[:, start:stop] = rows_kernel(q_s[:, :, start:stop], ks, q_e[:, :, start:stop], ke, dim ** -0.5)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    return out.clamp_(0, 1)


def preservation_mask(q_s: Any, k_s: Any, q_e: Any, k_e: Any, threshold: float, kernel: str = "torch") -> Any:
    """I2VEdit's adaptive preservation: ``M = 1`` where ``D ≥ threshold``, else ``D`` (per frame and token)."""
    import torch

    d = attention_difference(q_s, k_s, q_e, k_e, kernel)
    return torch.where(d >= threshold, torch.ones_like(d), d)


def smooth_area_perturbation(video: Any, threshold: float, sigma: float, generator: Any = None) -> tuple[Any, Any]:
    """SARP: ``video`` ``(N, 3, H, W)`` in [-1, 1] with Gaussian noise of ``sigma`` added where the Sobel
    gradient ``|Gx| + |Gy|`` (per channel, zero-padded, mean over RGB) is at most ``threshold``; clamped to
    [-1, 1]. Returns ``(perturbed, smooth)`` with ``smooth`` the ``(N, 1, H, W)`` boolean map."""
    import torch
    import torch.nn.functional as F

    x = video.float()
    sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device)
    kernels = torch.stack([sobel_x, sobel_x.T])[:, None].repeat(x.shape[1], 1, 1, 1)  # per channel: gx, gy
    grad = F.conv2d(x, kernels, padding=1, groups=x.shape[1]).abs()
    grad = grad.view(x.shape[0], x.shape[1], 2, *x.shape[2:]).sum(dim=2).mean(dim=1, keepdim=True)
    smooth = grad <= threshold
    noise = torch.randn(x.shape, generator=generator, device="cpu").to(x.device)
    return torch.where(smooth, x + sigma * noise, x).clamp(-1, 1).to(video.dtype), smooth


def inversion_schedule(scheduler: Any, steps: int, device: Any) -> tuple[Any, Any]:
    """The reference's inversion schedule: ``sigmas`` of ``steps`` Euler steps (decreasing, the last 0
    replaced by ``s[-2]² / s[-3]`` so the clean latents sit at a tiny noise level) and the matching
    continuous timesteps ``¼ log σ``."""
    if steps < 2:
        raise ValueError(f"i2vedit's inversion needs at least 2 steps, got inference_steps={steps}")
    scheduler.set_timesteps(steps, device=device)
    sigmas = scheduler.sigmas.clone().float()
    sigmas[-1] = sigmas[-2] * sigmas[-2] / sigmas[-3]
    return sigmas, 0.25 * sigmas.log()


# GPU memory left to the denoiser when ``store_gib: auto`` sizes the store: a guided 16-frame step at 576x1024
# peaked 13.5 GiB above the store on an H200 (87.3 GiB with 73.8 stored), pipeline weights included
_STORE_RESERVE_GIB = 24.0


def store_budget(store_gib: float | str, device: Any) -> float:
    """Bytes of stored source attention kept on ``device``: ``store_gib`` or, for ``auto``, the memory free
    now (the pipeline placed) less :data:`_STORE_RESERVE_GIB`; unbounded off CUDA (host memory either way)."""
    if store_gib != "auto":
        return float(store_gib) * 2 ** 30
    if device.type != "cuda":
        return float("inf")
    import torch

    free, _ = torch.cuda.mem_get_info(device)
    return max(0.0, free - _STORE_RESERVE_GIB * 2 ** 30)


class I2VEditPropagator(MotionLoraPropagator):
    """I2VEdit coarse + fine (see the module docstring); ``propagate`` trains the LoRAs unless given them."""

    name = "i2vedit"
    stage = "propagate.i2vedit"
    settings_class = I2VEditSettings

    def setup(self, model: Any = None, processor: Any = None) -> None:
        super().setup(model, processor)
        s = self.settings
        self.controller = Controller(s, TensorStore(store_budget(s.store_gib, self.device)),
                                     kernel=difference_kernel(s.difference_kernel, self.device))
        self.layers = layer_names(self.model.unet)
        self._install()

    def _install(self) -> None:
        """Put the fine stage's processors on every controlled self-attention (again: another backend sharing
        the pipeline, ``auto``'s svd-points, may have set its own); in mode 'off' they are plain attention."""
        unet = self.model.unet
        processors = dict(unet.attn_processors)
        for name, (kind, position) in self.layers.items():
            processors[f"{name}.processor"] = I2VEditAttention(self.controller, kind, position)
        unet.set_attn_processor(processors)

    # --- conditioning and the UNet call -------------------------------------------------------------
    def conditioning(self, first: np.ndarray, frames: int, guided: bool) -> tuple[Any, Any, Any]:
        """Image embedding, image latents ``(B, F, 4, h, w)`` and added time ids of a conditioning frame (a
        model-size uint8 image), drawn exactly as ``StableVideoDiffusionPipeline.__call__`` draws them with a
        generator seeded by ``seed``: the same frame conditions inversion and edit identically."""
        import torch
        from diffusers.utils.torch_utils import randn_tensor
        from PIL import Image

        pipe, s = self.model, self.settings
        generator = torch.Generator("cpu").manual_seed(s.seed)
        image = Image.fromarray(first)
        embedding = pipe._encode_image(image, self.device, 1, guided)
        pixels = pipe.video_processor.preprocess(image, height=first.shape[0], width=first.shape[1]).to(self.device)
        noise = randn_tensor(pixels.shape, generator=generator, device=self.device, dtype=pixels.dtype)
        pixels = pixels + s.noise_aug_strength * noise
        latents = pipe._encode_vae_image(pixels, self.device, 1, guided).to(embedding.dtype)
        latents = latents.unsqueeze(1).repeat(1, frames, 1, 1, 1)
        time_ids = pipe._get_add_time_ids(s.fps - 1, s.motion_bucket_id, s.noise_aug_strength, embedding.dtype,
                                          1, 1, guided).to(self.device)
        return embedding, latents, time_ids

    def _unet(self, x: Any, t: Any, condition: tuple[Any, Any, Any]) -> Any:
        import torch

        embedding, image_latents, time_ids = condition
        model_in = torch.cat([x, image_latents], dim=2)
        return self.model.unet(model_in.to(self.model.unet.dtype), t, encoder_hidden_states=embedding,
                               added_time_ids=time_ids, return_dict=False)[0]

    def encode(self, frames: np.ndarray) -> Any:
        """Model-size uint8 frames → VAE latents ``(1, F, 4, h, w)`` (mode, scaled), with SARP when on."""
        import torch

        s = self.settings
        x = self._pixels(frames, torch.float32)  # SARP's noise (σ 0.005) is below bf16's step near ±1
        if s.sarp:
            generator = torch.Generator("cpu").manual_seed(s.seed)
            x, _ = smooth_area_perturbation(x, s.sarp_threshold, s.sarp_noise, generator)
        return self._latents(x)[None].float()

    # --- inversion ------------------------------------------------------------------------------------
    def invert(self, chunk: np.ndarray, latents: Any | None = None) -> Any:
        """EDM (Euler) inversion of a model-size source chunk with plain SVD, no guidance, conditioned on
        its first frame; records the attention the edit will use. Returns the latents at ``sigma_max``."""
        import copy

        import torch

        self._require_setup()
        self._disable_adapter()
        pipe, s, c = self.model, self.settings, self.controller
        steps = s.inference_steps  # the edit reads inversion step i at its step steps-1-i: the counts match
        if latents is None:
            latents = self.encode(chunk)
        condition = self.conditioning(chunk[0], len(chunk), guided=False)
        sigmas, timesteps = inversion_schedule(copy.deepcopy(pipe.scheduler), steps, self.device)
        x = latents.float()
        c.mode, c.guided, c.steps = "invert", False, steps
        try:
            with torch.inference_mode():
                for i in range(steps):
                    sigma, sigma_next = sigmas[steps - i], sigmas[steps - i - 1]
                    c.step = steps - 1 - i  # recorded for the edit step that reads it
                    pred = self._unet(x / (sigma ** 2 + 1) ** 0.5, timesteps[steps - i], condition).float()
                    x0 = pred * (-sigma / (sigma ** 2 + 1) ** 0.5) + x / (sigma ** 2 + 1)
                    x = x + (sigma_next - sigma) * (x - x0) / sigma
        finally:
            c.mode = "off"
        return x

    # --- edit -----------------------------------------------------------------------------------------
    def denoise(self, latents: Any, first: np.ndarray, controlled: bool = True) -> Any:
        """Euler sampling from ``latents`` (at ``sigma_max``) conditioned on ``first`` (model-size uint8)
        with SVD's frame-wise linear guidance — ``StableVideoDiffusionPipeline.__call__``'s loop on the
        pipeline's own scheduler — under attention control when ``controlled``. Returns clean latents."""
        import copy

        import torch

        pipe, s, c = self.model, self.settings, self.controller
        frames = latents.shape[1]
        guided = s.max_guidance_scale > 1
        condition = self.conditioning(first, frames, guided)
        scheduler = copy.deepcopy(pipe.scheduler)
        scheduler.set_timesteps(s.inference_steps, device=self.device)
        scale = torch.linspace(s.min_guidance_scale, s.max_guidance_scale, frames, device=self.device)
        scale = scale.view(1, frames, 1, 1, 1)
        x = latents.to(condition[0].dtype)
        c.mode, c.guided, c.steps = ("edit" if controlled else "off"), guided, s.inference_steps
        try:
            with torch.inference_mode():
                for j, t in enumerate(scheduler.timesteps):
                    c.step = j
                    model_in = scheduler.scale_model_input(torch.cat([x] * 2) if guided else x, t)
                    pred = self._unet(model_in, t, condition)
                    if guided:
                        uncond, cond = pred.chunk(2)
                        pred = uncond + scale * (cond - uncond)
                    x = scheduler.step(pred, t, x).prev_sample
        finally:
            c.mode = "off"
        return x

    def decode(self, latents: Any) -> np.ndarray:
        """Clean latents ``(1, F, 4, h, w)`` → uint8 frames ``(F, h, w, 3)`` (the pipeline's decode)."""
        pipe = self.model
        frames = pipe.decode_latents(latents.to(pipe.vae.dtype), latents.shape[1], self.settings.decode_chunk_size)
        frames = pipe.video_processor.postprocess_video(video=frames, output_type="np")[0]
        return np.clip(np.asarray(frames) * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def edit_chunks(self, source: np.ndarray, first: np.ndarray, loras: list[dict[str, Any]] | None) -> np.ndarray:
        """The edited model-size clip: every chunk inverted, then denoised with its LoRA from its inverted
        latents, conditioned on the edited first frame (chunk 0) or the previous chunk's edited last frame."""
        s, c = self.settings, self.controller
        self._install()
        spans = self.chunks(len(source))
        out = np.empty_like(source)
        first_frame = first
        c.stats = {"preserved": []}
        try:
            for k, (start, stop) in enumerate(spans):
                c.chunk, c.first_kv, c.use_first_kv = k, k == 0 and len(spans) > 1, k > 0
                chunk = source[start:stop]
                if s.inversion:
                    latents = self.invert(chunk)
                else:
                    latents = self.noise(len(chunk), k)
                if loras:
                    self.use_lora(self.lora_for_chunk(loras, k))
                else:
                    self._disable_adapter()
                frames = self.decode(self.denoise(latents, first_frame, controlled=s.inversion))
                skip = 0 if k == 0 else min(s.overlap, len(frames))
                out[start + skip:stop] = frames[skip:]
                first_frame = frames[-1]
                c.store.drop(lambda key: key[0] != "kv")  # this chunk's source attention is spent
        finally:
            c.store.drop(lambda key: True)
            c.first_kv = c.use_first_kv = False
        return out

    def noise(self, frames: int, chunk: int) -> Any:
        """Initial latents of the coarse stage alone (``inversion: false``): Gaussian at ``sigma_max``."""
        import copy

        import torch

        pipe, s = self.model, self.settings
        h, w = s.height // pipe.vae_scale_factor, s.width // pipe.vae_scale_factor
        generator = torch.Generator("cpu").manual_seed(s.seed + chunk)
        scheduler = copy.deepcopy(pipe.scheduler)
        scheduler.set_timesteps(s.inference_steps)
        shape = (1, frames, pipe.unet.config.out_channels, h, w)
        return (torch.randn(shape, generator=generator) * scheduler.init_noise_sigma).to(self.device)

    def propagate(self, clip: Clip, background: np.ndarray | None, masks_a: Any, tracks_a: Tracks | None,
                  insert: Any, *, lora: Any = None, **_: Any) -> Any:
        """The edited clip: coarse + fine per chunk, letterboxed at model size, the source pasted back outside
        the product region (``keep_source``)."""
        frame0, _, box_b = controls.insert_parts(insert)
        if frame0.shape != clip.frames.shape[1:]:
            raise ValueError(f"the edited first frame must be {clip.frames.shape[1:]}, got {frame0.shape}")
        self._require_setup()
        s = self.settings
        if lora is None:
            loras = self.train_loras(clip)
        elif isinstance(lora, (str, Path)):
            loras = load_loras(lora)
        else:  # a list of states; empty: no LoRA (the fine stage without the coarse one)
            loras = list(lora)
        box = self.letterbox(clip.height, clip.width)
        source = box.to_model(clip.frames)
        edited = self.edit_chunks(source, box.to_model(frame0[None])[0], loras)
        frames = box.from_model(edited)
        masks = compose.as_mask_array(masks_a)
        if s.keep_source:
            region = compose.edit_region(masks, box_b, s.mask_dilate)
            frames = compose.blend(frames, clip.frames, compose.feather(region, s.feather))
        frames[0] = frame0
        preserved = self.controller.stats["preserved"]
        info = {"chunks": len(self.chunks(clip.num_frames)), "loras": len(loras),
                "preserved_share": round(float(sum(preserved) / len(preserved)), 4) if preserved else None,
                "difference_kernel": self.controller.kernel,
                "store_peak_gib": round(self.controller.store.peak / 2 ** 30, 2),
                "store_on_device_peak_gib": round(self.controller.store.peak_on_device / 2 ** 30, 2)}
        result = controls.make_result(frames, self.name, masks=controls.masks_of_b(insert, masks))
        result.info.update(info)
        return result


__all__ = ["I2VEditPropagator", "TensorStore", "attention_difference", "inversion_schedule", "layer_names",
           "preservation_mask", "smooth_area_perturbation"]
