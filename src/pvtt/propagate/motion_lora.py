"""propagate ``motion-lora`` (I2VEdit): a per-clip LoRA on the temporal attention of Stable Video Diffusion.

1. :meth:`MotionLoraPropagator.train_lora` fits a LoRA (peft) on the ``attn1`` (temporal self-attention)
   projections of the UNet's ``temporal_transformer_blocks`` to the *source* clip with SVD's EDM
   denoising loss, conditioned on the first frame of each training window: the LoRA learns the
   clip's motion, not its appearance (spatial layers stay frozen). I2VEdit: rank 32, 250 steps,
   lr 5e-4, 14 frames. :meth:`~MotionLoraPropagator.train_loras` trains one LoRA for the whole clip
   (``lora_scope: clip``) or one per generated chunk on that chunk's frames (``chunk``, as I2VEdit's
   reference code). The result is a clip artifact: :func:`save_loras` / :func:`load_loras` (one
   safetensors file), reused by every pair of that clip.
2. :meth:`MotionLoraPropagator.generate` runs image-to-video from the *edited* first frame with the
   clip's LoRA(s); clips longer than ``num_frames`` are generated in the chunks of
   :meth:`~MotionLoraPropagator.chunks`, each seeded by the previous chunk's (overlapping) last frame.

Frames reach the model's fixed ``height`` x ``width`` through :class:`pvtt.compose.Letterbox`: padded with
black bars to the model's aspect, then resized (I2VEdit's ``pad_to_fit``), never stretched; the generated
frames are resized back and cropped to the clip.

The base weights never change: the adapter wraps the temporal projections (injected with peft,
since the SVD UNet has no diffusers PEFT mixin), is reset for each clip's training, loaded for
generation and switched off otherwise, so one worker serves many clips.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from pvtt import compose
from pvtt.models import ModelBackend
from pvtt.propagate import MotionLoraSettings, controls
from pvtt.types import Clip, Tracks

log = logging.getLogger("pvtt")

ADAPTER = "pvtt_motion"
# every linear projection of the temporal self-attention, and nothing else
TEMPORAL_ATTN1 = r".*temporal_transformer_blocks\.\d+\.attn1\.(to_q|to_k|to_v|to_out\.0)"
# what a trained LoRA depends on: the cache key of the clip's motion_lora artifact
TRAINING_FIELDS = ("model", "dtype", "rank", "alpha", "train_steps", "lr", "train_frames", "lora_scope", "height",
                   "width", "p_mean", "p_std", "fps", "motion_bucket_id", "noise_aug_strength", "seed")
# what the chunks depend on: part of the training settings when each chunk has its own LoRA
CHUNK_FIELDS = ("num_frames", "overlap")


class ShortKeyAttention:
    """diffusers attention processor: attention over a few keys as two small matrix products, else PyTorch SDPA.

    The SVD UNet attends over 14 frames (temporal self-attention) and over one image-embedding token
    (every cross-attention). Fused SDPA kernels tile by 64-128 keys, so on such shapes most of their
    work is padding: in one training step they took ~8 % of the time for ~0 % of the FLOPs. Written
    out (``softmax(q kᵀ · scale) v`` in float32), the same result costs almost nothing and compiles
    into the surrounding kernels. Long key sequences (the spatial self-attention) go to SDPA as before.
    """

    def __init__(self, max_keys: int = 32):
        from diffusers.models.attention_processor import AttnProcessor2_0

        self.max_keys = max_keys
        self.fallback = AttnProcessor2_0()

    def __call__(self, attn: Any, hidden_states: Any, encoder_hidden_states: Any = None, attention_mask: Any = None,
                 temb: Any = None, *args: Any, **kwargs: Any) -> Any:
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        plain = (hidden_states.ndim == 3 and attention_mask is None and attn.spatial_norm is None
                 and attn.group_norm is None and not attn.norm_cross and attn.norm_q is None and attn.norm_k is None
                 and not attn.residual_connection and attn.rescale_output_factor == 1.0)
        if not plain or context.shape[1] > self.max_keys:
            return self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        batch, heads = hidden_states.shape[0], attn.heads
        q, k, v = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
        dim = k.shape[-1] // heads
        q, k, v = (x.view(batch, -1, heads, dim).transpose(1, 2) for x in (q, k, v))
        weights = (q.float() @ k.float().transpose(-1, -2) * dim ** -0.5).softmax(dim=-1)
        out = (weights @ v.float()).to(q.dtype).transpose(1, 2).reshape(batch, -1, heads * dim)
        return attn.to_out[1](attn.to_out[0](out))


def save_loras(states: list[dict[str, Any]], path: str | Path) -> Path:
    """Write a clip's LoRA state dicts (one, or one per chunk) as one safetensors file, atomically (temp file +
    rename); the keys of state ``k`` are prefixed ``chunk{k}.``."""
    from safetensors.torch import save_file

    if not states:
        raise ValueError("no LoRA to save")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors, seen = {}, set()
    for k, state in enumerate(states):
        for name, v in state.items():
            v = v.contiguous()
            if v.data_ptr() in seen:  # safetensors refuses shared memory (states that share an unchanged tensor)
                v = v.clone()
            seen.add(v.data_ptr())
            tensors[f"chunk{k}.{name}"] = v
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"format": "pt", "adapter": ADAPTER, "chunks": str(len(states))})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_loras(path: str | Path) -> list[dict[str, Any]]:
    """The LoRA state dicts written by :func:`save_loras`, in chunk order."""
    from safetensors.torch import load_file

    states: dict[int, dict[str, Any]] = {}
    for key, value in load_file(str(path)).items():
        head, _, name = key.partition(".")
        if not (head.startswith("chunk") and head[5:].isdigit() and name):
            raise ValueError(f"{path}: {key!r} is not a chunk{{k}}.<name> LoRA key (not written by save_loras)")
        states.setdefault(int(head[5:]), {})[name] = value
    if sorted(states) != list(range(len(states))) or not states:
        raise ValueError(f"{path}: LoRA chunks {sorted(states)} are not 0..n-1")
    return [states[k] for k in range(len(states))]


def _sdpa(backend: str) -> Any:
    """A context selecting PyTorch's scaled-dot-product-attention kernel ('auto': no constraint)."""
    import contextlib

    if backend == "auto":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    names = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
             "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}
    return sdpa_kernel([names[backend]])


class MotionLoraPropagator(ModelBackend):
    """I2VEdit's motion LoRA on SVD; ``propagate`` trains (unless given the clip's LoRA) and generates."""

    name = "motion-lora"
    stage = "propagate.motion_lora"
    settings_class = MotionLoraSettings

    def __init__(self, settings: Any = None, **overrides: Any):
        if isinstance(settings, self.settings_class) and type(settings) is not self.settings_class:
            # a subclass's settings (i2vedit's, which trains the same LoRA) keep their class and extra fields
            self.settings_class = type(settings)
        super().__init__(settings, **overrides)
        self.last_losses: list[float] = []
        self.chunk_losses: list[list[float]] = []

    # --- setup --------------------------------------------------------------------------------------
    def setup(self, model: Any = None, processor: Any = None) -> None:
        """Load the SVD pipeline (or take ``model``: a built ``StableVideoDiffusionPipeline``)."""
        from pvtt.models.loading import resolve_device, resolve_dtype
        from pvtt.models.pipelines import place_pipeline

        self.device = resolve_device(self.settings.device)
        self.dtype = resolve_dtype(self.settings.dtype, self.device)
        pipe = model if model is not None else self.load()[0]
        pipe = place_pipeline(pipe, self.device, self.dtype, self.settings.cpu_offload)
        pipe.unet.set_attn_processor(ShortKeyAttention())
        pipe.unet.requires_grad_(False)
        pipe.vae.requires_grad_(False)
        pipe.image_encoder.requires_grad_(False)
        if self.settings.compile:  # the whole UNet: 10 % faster steps than compiling its blocks one by one
            pipe.unet.compile()
        self.model = pipe
        self._loaded: int | None = None  # id() of the LoRA state currently in the UNet

    def load(self) -> tuple[Any, Any]:
        from diffusers import StableVideoDiffusionPipeline

        from pvtt.models.pipelines import load_pipeline

        s = self.settings
        return load_pipeline(StableVideoDiffusionPipeline, s.model, s.allow_download, self.stage, self.dtype), None

    def training_settings(self) -> dict[str, Any]:
        """The settings a trained LoRA depends on (a change retrains; speed and generation settings do not,
        except the chunking when each chunk has its own LoRA)."""
        fields = set(TRAINING_FIELDS) | (set(CHUNK_FIELDS) if self.settings.lora_scope == "chunk" else set())
        return self.settings.model_dump(include=fields)

    # --- geometry -------------------------------------------------------------------------------------
    def letterbox(self, height: int, width: int) -> compose.Letterbox:
        """How a ``height`` x ``width`` clip reaches the model's size: black bars to its aspect, then resized."""
        return compose.Letterbox(height, width, self.settings.height, self.settings.width)

    def chunks(self, num_frames: int) -> list[tuple[int, int]]:
        """``[start, stop)`` of the chunks a ``num_frames`` clip is generated in (``num_frames`` per chunk,
        overlapping by the settings' ``overlap``, 1 when they have none); one LoRA each with ``lora_scope: chunk``."""
        return compose.chunk_spans(num_frames, self.settings.num_frames, getattr(self.settings, "overlap", 1))

    # --- LoRA plumbing ------------------------------------------------------------------------------
    def lora_config(self) -> Any:
        from peft import LoraConfig

        s = self.settings
        return LoraConfig(r=s.rank, lora_alpha=s.alpha or s.rank, target_modules=TEMPORAL_ATTN1, lora_dropout=0.0)

    def _lora_layers(self) -> list[Any]:
        from peft.tuners.tuners_utils import BaseTunerLayer

        return [m for m in self.model.unet.modules() if isinstance(m, BaseTunerLayer)]

    def _add_adapter(self) -> None:
        """A fresh adapter (B = 0, so the UNet is unchanged until trained), enabled and trainable."""
        import torch
        from peft import inject_adapter_in_model

        torch.manual_seed(self.settings.seed)  # LoRA A's random init, reproducible per clip
        layers = self._lora_layers()
        if not layers:  # the SVD UNet has no diffusers PEFT mixin: inject with peft directly, once
            inject_adapter_in_model(self.lora_config(), self.model.unet, adapter_name=ADAPTER)
            layers = self._lora_layers()
        for layer in layers:
            layer.reset_lora_parameters(ADAPTER, init_lora_weights=True)
            layer.enable_adapters(True)
            layer.set_adapter(ADAPTER)  # marks the adapter trainable
        self._loaded = None

    def _disable_adapter(self) -> None:
        """The UNet back to its base behaviour (the wrapped base weights were never changed)."""
        for layer in self._lora_layers():
            layer.enable_adapters(False)
        self.model.unet.requires_grad_(False)
        self._loaded = None

    def trainable_parameters(self) -> dict[str, Any]:
        """Name → parameter of everything that requires grad in the UNet (only LoRA while training)."""
        return {n: p for n, p in self.model.unet.named_parameters() if p.requires_grad}

    def _lora_state(self) -> dict[str, Any]:
        from peft.utils import get_peft_model_state_dict

        state = get_peft_model_state_dict(self.model.unet, adapter_name=ADAPTER)
        return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}

    @staticmethod
    def lora_for_chunk(loras: list[dict[str, Any]], k: int) -> dict[str, Any]:
        """The LoRA of chunk ``k``: its own when there is one per chunk, else the clip's only one."""
        return loras[k] if len(loras) > 1 else loras[0]

    def use_lora(self, state: dict[str, Any]) -> None:
        """Put a LoRA state dict into the UNet for generation (nothing to do when it is already there)."""
        from peft.utils import set_peft_model_state_dict

        if self._loaded == id(state):
            return
        self._add_adapter()
        result = set_peft_model_state_dict(self.model.unet, state, adapter_name=ADAPTER)
        unexpected = getattr(result, "unexpected_keys", None) or []
        if unexpected:
            raise ValueError(f"LoRA does not fit this UNet: unexpected keys {unexpected[:3]}…")
        self.model.unet.requires_grad_(False)
        self._loaded = id(state)

    # --- 1. training ----------------------------------------------------------------------------------
    def _pixels(self, frames: np.ndarray, dtype: Any = None) -> Any:
        """uint8 frames at model resolution (letterboxed) → ``(N, 3, h, w)`` in [-1, 1] on the device, in ``dtype``
        (default: the VAE's)."""
        import torch

        s = self.settings
        if frames.shape[1:3] != (s.height, s.width):
            raise ValueError(f"frames must be letterboxed to {s.height}x{s.width} first, got {frames.shape[1:3]}")
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return x.to(dtype or self.model.vae.dtype)

    def _latents(self, pixels: Any) -> Any:
        """Pixels ``(N, 3, h, w)`` in [-1, 1] → scaled VAE latents ``(N, 4, h, w)`` (the distribution's mode),
        eight frames per encode."""
        import torch

        vae = self.model.vae
        return torch.cat([vae.encode(pixels[i:i + 8].to(vae.dtype)).latent_dist.mode()
                          for i in range(0, len(pixels), 8)]) * vae.config.scaling_factor

    def _condition(self, first: np.ndarray, generator: Any) -> tuple[Any, Any]:
        """CLIP image embedding and noise-augmented VAE latents of a conditioning frame at model resolution
        (letterboxed), as SVD's pipeline computes them."""
        import torch
        from PIL import Image

        pipe, s = self.model, self.settings
        embedding = pipe._encode_image(Image.fromarray(first), self.device, 1, False)
        image = self._pixels(first[None]).float()
        noise = torch.randn(image.shape, generator=generator).to(image.device)
        image = (image + s.noise_aug_strength * noise).to(pipe.vae.dtype)
        latents = pipe.vae.encode(image).latent_dist.mode()
        return embedding, latents

    def train_loras(self, clip: Clip, on_step: Any = None) -> list[dict[str, Any]]:
        """The clip's motion LoRA(s): ``[one state dict]`` for ``lora_scope: clip`` (trained on windows over
        the whole clip), else one per chunk of :meth:`chunks`, each trained only on that chunk's frames.

        ``last_losses`` holds every step's loss (chunk after chunk), ``chunk_losses`` them per LoRA;
        ``on_step(i, loss)`` counts steps over all of them.
        """
        if self.settings.lora_scope == "clip":
            states = [self.train_lora(clip, on_step)]
            self.chunk_losses = [list(self.last_losses)]
            return states
        states, per_chunk = [], []
        spans = self.chunks(clip.num_frames)
        for k, (start, stop) in enumerate(spans):
            part = dataclasses.replace(clip, id=f"{clip.id}#chunk{k}", frames=clip.frames[start:stop])
            offset = k * self.settings.train_steps
            step = None if on_step is None else (lambda i, loss, offset=offset: on_step(offset + i, loss))
            states.append(self.train_lora(part, step))
            per_chunk.append(list(self.last_losses))
        self.chunk_losses = per_chunk
        self.last_losses = [x for losses in per_chunk for x in losses]
        log.debug("motion-lora %s: %d chunk LoRAs (%s)", clip.id, len(states), spans)
        return states

    def train_lora(self, clip: Clip, on_step: Any = None) -> dict[str, Any]:
        """Fit one motion LoRA to all of ``clip``; returns its state dict (CPU tensors). Base weights are untouched.

        ``on_step(i, loss)`` is called after optimizer step ``i`` (progress); ``loss`` is a 0-d device
        tensor (reading it waits for the GPU).
        """
        import torch

        self._require_setup()
        pipe, s = self.model, self.settings
        # 1. check inputs
        if clip.num_frames < 2:
            raise ValueError(f"motion-lora needs at least 2 frames, the clip has {clip.num_frames}")
        if s.height % 8 or s.width % 8:
            raise ValueError(f"height and width have to be divisible by 8 but are {s.height} and {s.width}")
        length = min(s.train_frames, clip.num_frames)
        starts = list(range(0, clip.num_frames - length + 1, max(1, length // 2)))
        rng = np.random.default_rng(s.seed)
        generator = torch.Generator("cpu").manual_seed(s.seed)
        step_noise = torch.Generator(self.device).manual_seed(s.seed)  # on the device: no host work per step
        box = self.letterbox(clip.height, clip.width)
        # 2. encode once: latents of every frame, conditioning of every window start (letterboxed)
        with torch.no_grad():
            scale = pipe.vae.config.scaling_factor
            latents = torch.cat([pipe.vae.encode(self._pixels(box.to_model(clip.frames[i:i + 8])))
                                 .latent_dist.sample(generator) for i in range(0, clip.num_frames, 8)]) * scale
            conditions = {i: self._condition(box.to_model(clip.frames[i:i + 1])[0], generator) for i in starts}
        time_ids = pipe._get_add_time_ids(s.fps - 1, s.motion_bucket_id, s.noise_aug_strength, latents.dtype,
                                          1, 1, False).to(self.device)
        # 3. a fresh adapter on the temporal self-attention; only it is trainable
        self._add_adapter()
        params = list(self.trainable_parameters().values())
        fused = {"fused": True} if self.device.type == "cuda" else {}
        optimizer = torch.optim.AdamW(params, lr=s.lr, weight_decay=0.0, **fused)
        unet = pipe.unet
        if s.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        unet.train()
        # 4. EDM denoising loss on random windows
        losses = []
        with _sdpa(s.sdpa_backend):
            for i in range(s.train_steps):
                start = starts[int(rng.integers(len(starts)))]
                target = latents[start:start + length][None]  # (1, F, 4, h, w)
                embedding, cond = conditions[start]
                losses.append(self.train_step(unet, optimizer, params, target, embedding, cond, time_ids, step_noise))
                if on_step is not None:
                    on_step(i, losses[-1])
        unet.eval()
        if s.gradient_checkpointing:
            unet.disable_gradient_checkpointing()
        state = self._lora_state()
        self._disable_adapter()
        losses = torch.stack(losses).tolist()  # one host synchronisation for the whole run, not one per step
        log.debug("motion-lora %s: loss %.4f → %.4f over %d steps", clip.id, losses[0], losses[-1], len(losses))
        self.last_losses = losses
        return state

    def train_step(self, unet: Any, optimizer: Any, params: list, target: Any, embedding: Any, cond: Any,
                   time_ids: Any, generator: Any) -> Any:
        """One EDM step (SVD's v-prediction preconditioning, Karras weighting); returns the loss as a 0-d tensor.

        ``generator`` lives on the device: noise is drawn there and the loss is not read back, so the
        host never waits for the GPU inside the training loop.
        """
        import torch

        s = self.settings
        log_sigma = torch.randn((1,), generator=generator, device=self.device) * s.p_std + s.p_mean
        sigma = log_sigma.exp().float().view(1, 1, 1, 1, 1)
        noise = torch.randn(target.shape, generator=generator, device=self.device, dtype=torch.float32)
        noisy = target.float() + sigma * noise
        c_in, c_skip = 1 / (sigma ** 2 + 1).sqrt(), 1 / (sigma ** 2 + 1)
        c_out, c_noise = -sigma / (sigma ** 2 + 1).sqrt(), sigma.log().view(1) / 4
        frames = target.shape[1]
        model_in = torch.cat([c_in * noisy, cond[:, None].float().expand(-1, frames, -1, -1, -1)], dim=2)
        dtype = unet.dtype
        pred = unet(model_in.to(dtype), c_noise.to(dtype), encoder_hidden_states=embedding.to(dtype),
                    added_time_ids=time_ids.to(dtype), return_dict=False)[0]
        denoised = c_out * pred.float() + c_skip * noisy
        weight = (sigma ** 2 + 1) / sigma ** 2
        loss = (weight * (denoised - target.float()) ** 2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    # --- 2. generation -------------------------------------------------------------------------------
    @staticmethod
    def as_loras(lora: list[dict[str, Any]] | dict[str, Any] | str | Path | None) -> list[dict[str, Any]] | None:
        """The clip's LoRAs from a :func:`save_loras` path, a list of state dicts or one state dict (None: none)."""
        if lora is None:
            return None
        if isinstance(lora, (str, Path)):
            return load_loras(lora)
        if isinstance(lora, dict):
            return [lora]
        loras = list(lora)
        if not loras:
            raise ValueError("an empty list of LoRAs")
        return loras

    def generate(self, first_frame: np.ndarray, loras: list[dict[str, Any]] | dict[str, Any] | str | Path | None,
                 num_frames: int) -> np.ndarray:
        """``num_frames`` frames ``(T, H, W, 3)`` uint8 at ``first_frame``'s size, generated from it.

        The chunks are :meth:`chunks`; chunk ``k`` uses :meth:`lora_for_chunk` (``loras``: a path, a list,
        one state dict, or None for the base model) and starts from the clip frame where it begins (the
        previous chunk's generated frame; the first frame for chunk 0), letterboxed to the model's size.
        Frames a chunk shares with the previous one keep the previous chunk's version.
        """
        import torch
        from PIL import Image

        self._require_setup()
        pipe, s = self.model, self.settings
        loras = self.as_loras(loras)
        spans = self.chunks(num_frames)
        if loras is not None and len(loras) > 1 and len(loras) != len(spans):
            raise ValueError(f"{len(loras)} chunk LoRAs for {len(spans)} chunks of {num_frames} frames "
                             f"(num_frames {s.num_frames}); retrain with these chunk settings")
        box = self.letterbox(*first_frame.shape[:2])
        generator = torch.Generator("cpu").manual_seed(s.seed)
        out: list[np.ndarray] = []
        for k, (start, stop) in enumerate(spans):
            if loras is not None:
                self.use_lora(self.lora_for_chunk(loras, k))
            else:
                self._disable_adapter()
            seed = box.to_model((first_frame if k == 0 else out[start])[None])[0]
            with torch.inference_mode():
                frames = pipe(Image.fromarray(seed), height=s.height, width=s.width, num_frames=max(2, stop - start),
                              num_inference_steps=s.inference_steps, min_guidance_scale=s.min_guidance_scale,
                              max_guidance_scale=s.max_guidance_scale, fps=s.fps, motion_bucket_id=s.motion_bucket_id,
                              noise_aug_strength=s.noise_aug_strength, decode_chunk_size=s.decode_chunk_size,
                              generator=generator, output_type="np").frames[0]
            frames = np.clip(np.asarray(frames) * 255.0 + 0.5, 0, 255).astype(np.uint8)
            frames = box.from_model(frames[:stop - start])
            out.extend(frames[len(out) - start:])  # frames before len(out) are the previous chunk's
        return np.stack(out[:num_frames])

    def propagate(self, clip: Clip, background: np.ndarray | None, masks_a: Any, tracks_a: Tracks | None,
                  insert: Any, *, lora: list[dict[str, Any]] | dict[str, Any] | str | Path | None = None,
                  **_: Any) -> Any:
        """The edited clip generated from the edited first frame with the clip's motion LoRA(s): ``lora`` is the
        :func:`save_loras` artifact, a list of state dicts, or None (then trained here, :meth:`train_loras`)."""
        frame0, _, box_b = controls.insert_parts(insert)
        if frame0.shape != clip.frames.shape[1:]:
            raise ValueError(f"the edited first frame must be {clip.frames.shape[1:]}, got {frame0.shape}")
        masks = compose.as_mask_array(masks_a)
        loras = self.as_loras(lora) if lora is not None else self.train_loras(clip)
        frames = self.generate(frame0, loras, clip.num_frames)
        if self.settings.keep_source:
            region = compose.edit_region(masks, box_b, self.settings.mask_dilate)
            frames = compose.blend(frames, clip.frames, compose.feather(region, self.settings.feather))
        frames[0] = frame0
        return controls.make_result(frames, self.name, masks=controls.masks_of_b(insert, masks))
