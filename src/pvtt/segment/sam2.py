"""SAM2 video propagation from the first-frame box (transformers ``Sam2VideoModel``).

The inference session is fed here rather than through ``Sam2VideoProcessor`` (which needs
torchvision): frames are resized to the model's square input and normalized on the device, the
box is scaled to that square and added as SAM2's box prompt (point labels 2 and 3), and the image
encoder runs on ``batch_size`` frames at a time ahead of the propagation — the session's feature
cache is filled one chunk ahead, so the memory-attention loop never waits on a batch-1 encoder call.

Compiled on a GPU, the per-frame loop should never wait for the device: ``torch.tensor(list, device=cuda)``
copies from pageable memory and synchronises the stream, and transformers makes one per frame (the object
pointers' temporal offsets) and the frame preprocessing two per chunk (the normalization's mean and std). With
``compile`` those calls are staged through pinned memory and copied asynchronously instead
(``_no_host_wait_mode``), which leaves the values unchanged (1.07-1.23x for the compiled loop on an H200; the
eager loop, whose host is the slower side anyway, measured 0.95x with it and keeps the waits). With
``compile_mode: reduce-overhead`` the memory path replays CUDA graphs, whose outputs live in a pool that the
next replay overwrites while the inference session keeps them (memories, object scores): each compiled
module's outputs are cloned as they come back.

Two attention kernels can be chosen here rather than by SDPA (transformers' attention interface, registered under
pvtt's own names and set on the modules' own copies of their config): ``memory_attention_kernel: flash`` names
PyTorch's flash attention op in the memory attention, so that a compiled graph keeps it (SDPA picks cuDNN's,
which is slower at one 256-channel head, and a preference set around the call did not reach the compiled graph);
``encoder_math_attention_tokens`` computes the image encoder's small-window attention with plain matmuls.

Two savings of GPU time in the image encoder: ``cache_position_encodings`` keeps the neck's sine position encodings
(they depend only on the feature maps' sizes) as buffers computed once, one frame's worth, and hands the encoder a
broadcast view of them instead of computing and writing them for every frame of every chunk (the same values);
``encoder_gelu: fused-tanh`` computes Hiera's MLP input projection and its GELU in one cuBLASLt matmul with a GELU
epilogue (the tanh approximation of GELU, within bf16 rounding of the exact one) instead of a matmul and a separate
pass over the 4x-wide hidden activations. The clip's masks come back to the host through pinned memory.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import numpy as np

from pvtt.errors import RejectItem
from pvtt.models import ModelBackend
from pvtt.models.loading import load_pretrained
from pvtt.models.preprocess import frames_to_tensor, resize_normalize
from pvtt.segment import Sam2Settings
from pvtt.types import Box, Clip, Masks


class _FramesOnDemand(dict):
    """The session's frame store: preprocesses a frame only if the encoder ever asks for one not cached."""

    def __init__(self, count: int, make: Any):
        super().__init__((i, None) for i in range(count))
        self._make = make

    def __getitem__(self, index: int) -> Any:
        return self._make(index)


@functools.cache
def _no_host_wait_mode() -> Any:
    """A torch function mode in which ``torch.tensor(data, device=<cuda>)`` is built in pinned host memory and
    copied without a host wait (built lazily: this module does not import torch)."""
    import torch
    from torch.overrides import TorchFunctionMode

    class NoHostWait(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            device = kwargs.get("device")
            if func is torch.tensor and device is not None and torch.device(device).type == "cuda":
                kwargs = {k: v for k, v in kwargs.items() if k != "device"}
                # the caching host allocator keeps the pinned block until the copy is done
                return func(*args, **kwargs).pin_memory().to(device, non_blocking=True)
            return func(*args, **kwargs)

    return NoHostWait


def _without_host_wait(method: Any) -> Any:
    """``method`` run inside the no-host-wait mode (marked, so a model set up twice is wrapped once)."""
    if getattr(method, "_pvtt_no_host_wait", False):
        return method
    mode = _no_host_wait_mode()

    @functools.wraps(method)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with mode():
            return method(*args, **kwargs)

    wrapped._pvtt_no_host_wait = True
    return wrapped


_FLASH = "pvtt_flash"  # the names under which pvtt's attention functions are registered in transformers
_WINDOWS = "pvtt_windows_{}"


def _sdpa(module: Any, query: Any, key: Any, value: Any, attention_mask: Any = None, **kwargs: Any) -> Any:
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    return ALL_ATTENTION_FUNCTIONS["sdpa"](module, query, key, value, attention_mask=attention_mask, **kwargs)


def _flash_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any = None, dropout: float = 0.0,
                     scaling: float | None = None, is_causal: bool | None = False, **kwargs: Any) -> Any:
    """transformers' attention interface ((B, H, L, D) in, (B, L, H, D) out) through PyTorch's flash attention op,
    named explicitly (on the CPU its CPU flash op); SDPA where flash cannot run."""
    import torch

    cuda = query.device.type == "cuda"
    if (attention_mask is not None or dropout or query.shape[-1] > 256
            or (cuda and query.dtype not in (torch.float16, torch.bfloat16))):
        return _sdpa(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                     is_causal=is_causal, **kwargs)
    causal = bool(is_causal) and query.shape[-2] > 1
    if cuda:
        out = torch.ops.aten._scaled_dot_product_flash_attention(query, key, value, 0.0, causal, False,
                                                                 scale=scaling)[0]
    else:
        out = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(query, key, value, 0.0, causal,
                                                                         scale=scaling)[0]
    return out.transpose(1, 2).contiguous(), None


def _window_attention(limit: int) -> Any:
    """An attention function computing attention over at most ``limit`` keys as matmul, softmax (float32), matmul,
    and longer attention through SDPA."""

    def attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any = None, dropout: float = 0.0,
                  scaling: float | None = None, is_causal: bool | None = False, **kwargs: Any) -> Any:
        import torch

        if key.shape[-2] > limit or attention_mask is not None or dropout or is_causal:
            return _sdpa(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                         is_causal=is_causal, **kwargs)
        scale = query.shape[-1] ** -0.5 if scaling is None else scaling
        weights = torch.matmul(query, key.transpose(-2, -1)) * scale
        weights = weights.softmax(dim=-1, dtype=torch.float32).to(query.dtype)
        return torch.matmul(weights, value).transpose(1, 2).contiguous(), None

    return attention


def _use_attention(modules: Any, class_name: str, implementation: str, function: Any) -> int:
    """Registers ``function`` as ``implementation`` and gives every module of ``class_name`` a copy of its config
    that names it (the model's shared configs stay as they were); returns how many modules were switched."""
    import copy

    from transformers.modeling_utils import AttentionInterface

    AttentionInterface.register(implementation, function)
    count = 0
    for module in modules:
        if type(module).__name__ == class_name:
            config = copy.copy(module.config)
            config._attn_implementation_internal = implementation  # this config only, not its sub-configs
            module.config = config
            count += 1
    return count


def _clone_outputs(module: Any, args: Any, output: Any) -> Any:
    """Forward hook: the module's outputs copied out of the CUDA-graph pool (the next replay overwrites it)."""
    import torch
    from torch.utils._pytree import tree_map_only

    return tree_map_only(torch.Tensor, torch.clone, output)


def _level_sizes(config: Any) -> list[tuple[int, int]]:
    """(height, width) of the feature maps that the vision neck receives, one per Hiera stage, from the config."""
    backbone = config.vision_config.backbone_config

    def pair(value: Any) -> tuple[int, int]:
        return (value, value) if isinstance(value, int) else tuple(value)

    size = pair(config.image_size)
    kernel, stride = pair(backbone.patch_kernel_size), pair(backbone.patch_stride)
    padding = pair(backbone.patch_padding)
    h, w = ((size[i] + 2 * padding[i] - kernel[i]) // stride[i] + 1 for i in range(2))
    query = pair(backbone.query_stride)
    sizes = []
    for stage in range(len(backbone.blocks_per_stage)):
        if 0 < stage <= backbone.num_query_pool_stages:
            h, w = h // query[0], w // query[1]
        sizes.append((h, w))
    return sizes


def _cached_position_encoding(inner: Any, sizes: list[tuple[int, int]], channels: int, device: Any,
                              dtype: Any) -> Any:
    """A module standing in for the neck's sine position encoding: for the feature maps' known sizes it returns a
    buffer computed once by ``inner`` for one frame, broadcast over the batch (a view: nothing written per chunk);
    any other shape, dtype or a mask goes to ``inner``."""
    import torch

    class CachedPositionEncoding(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner
            self.names = {}
            with torch.no_grad():
                for h, w in sizes:
                    name = f"pos_{h}x{w}"
                    self.register_buffer(name, inner((1, channels, h, w), device, dtype).to(dtype).contiguous(),
                                         persistent=False)
                    self.names[(h, w)] = name

        def forward(self, shape: Any, device: Any, dtype: Any, mask: Any = None) -> Any:
            name = self.names.get((shape[2], shape[3]))
            if name is None or mask is not None or shape[1] != channels:
                return self.inner(shape, device, dtype, mask)
            cached = getattr(self, name)
            if cached.dtype != dtype:
                return self.inner(shape, device, dtype, mask)
            return cached.expand(shape[0], -1, -1, -1)

    return CachedPositionEncoding()


@functools.cache
def _linear_gelu_op() -> Any:
    """``pvtt::linear_gelu_tanh(x, weight, bias)``: ``gelu(x @ weight.T + bias, approximate='tanh')`` as one
    ``torch._addmm_activation`` call (cuBLASLt's GELU epilogue on a GPU; on the CPU PyTorch applies the exact GELU
    after the matmul), registered as an opaque custom op so that a compiled graph keeps it rather than splitting it
    into a matmul and a pointwise kernel."""
    import torch

    # the schema is given: this module's annotations are strings (``from __future__ import annotations``)
    @torch.library.custom_op("pvtt::linear_gelu_tanh", mutates_args=(),
                             schema="(Tensor x, Tensor weight, Tensor bias) -> Tensor")
    def linear_gelu_tanh(x: Any, weight: Any, bias: Any) -> Any:
        flat = x.reshape(-1, x.shape[-1])
        out = torch._addmm_activation(bias, flat, weight.t(), use_gelu=True)
        return out.reshape(*x.shape[:-1], weight.shape[0])

    @linear_gelu_tanh.register_fake
    def _(x: Any, weight: Any, bias: Any) -> Any:
        return x.new_empty((*x.shape[:-1], weight.shape[0]))

    return linear_gelu_tanh


def _fuse_gelu(modules: Any) -> int:
    """Hiera's two-layer MLPs with an exact GELU get a forward computing the input projection and the GELU in one
    ``pvtt::linear_gelu_tanh``; returns how many were switched."""
    import torch

    op = _linear_gelu_op()
    count = 0
    for module in modules:
        activation = getattr(module, "activation", None)
        if (type(module).__name__ != "Sam2FeedForward" or getattr(module, "num_layers", 0) != 2
                or getattr(module, "sigmoid_output", True) or type(activation).__name__ != "GELUActivation"
                or getattr(activation, "act", None) is not torch.nn.functional.gelu
                or module.proj_in.bias is None):
            continue

        def forward(hidden_states: Any, module: Any = module) -> Any:
            return module.proj_out(op(hidden_states, module.proj_in.weight, module.proj_in.bias))

        forward._pvtt_fused_gelu = True
        module.forward = forward
        count += 1
    return count


class Sam2Segmenter(ModelBackend):
    """Per-frame masks of the object in ``box`` on frame 0, propagated through the clip by SAM2's memory."""

    name = "sam2"
    stage = "segment.sam2"  # the config section named in missing-weight errors
    settings_class = Sam2Settings

    def load(self) -> tuple[Any, Any]:
        from transformers import Sam2VideoModel

        s = self.settings
        return load_pretrained(Sam2VideoModel, s.model, s.allow_download, self.stage, dtype=self.dtype), None

    def setup(self, model: Any = None, processor: Any = None) -> None:
        super().setup(model, processor)
        self.attention_modules = {}  # modules switched to pvtt's attention functions, by setting
        if self.settings.memory_attention_kernel == "flash":
            self.attention_modules["memory_attention_kernel"] = _use_attention(
                self.model.memory_attention.modules(), "Sam2VideoRoPEAttention", _FLASH, _flash_attention)
        limit = self.settings.encoder_math_attention_tokens
        if limit:
            self.attention_modules["encoder_math_attention_tokens"] = _use_attention(
                self.model.vision_encoder.modules(), "Sam2MultiScaleAttention", _WINDOWS.format(limit),
                _window_attention(limit))
        # both switches are undone by a setup without them (a model shared by backends of different settings)
        neck = getattr(self.model.vision_encoder, "neck", None)
        inner = getattr(neck, "position_encoding", None)
        cached = type(inner).__name__ == "CachedPositionEncoding"
        if self.settings.cache_position_encodings and inner is not None and not cached:
            neck.position_encoding = _cached_position_encoding(
                inner, _level_sizes(self.model.config), self.model.config.vision_config.fpn_hidden_size,
                self.device, self.dtype)
        elif not self.settings.cache_position_encodings and cached:
            neck.position_encoding = inner.inner
        for module in self.model.vision_encoder.modules():
            if getattr(module.__dict__.get("forward"), "_pvtt_fused_gelu", False):
                del module.forward
        self.fused_modules = {}  # MLPs switched to the fused projection + GELU
        if self.settings.encoder_gelu == "fused-tanh":
            self.fused_modules["encoder_gelu"] = _fuse_gelu(self.model.vision_encoder.modules())
        if self.settings.compile and self.device.type == "cuda":
            # transformers' one host wait per frame (see the module's docstring); the method is looked up by name
            # and left alone if a transformers version has none
            method = getattr(self.model, "_process_object_pointers", None)
            if method is not None:
                self.model._process_object_pointers = _without_host_wait(method)
        if self.settings.compile:
            import torch

            mode = self.settings.compile_mode
            # the encoder sees full chunks (and one shorter last chunk); the memory path's memory length grows
            # over the first frames and then stays fixed, so it is compiled with dynamic shapes after a recompile.
            # CUDA graphs only for the per-frame memory path: the encoder runs a chunk of frames per call (few,
            # large kernels) and its outputs stay in the session's feature cache for two chunks
            encoder_mode = "default" if mode == "reduce-overhead" else mode
            self.model.vision_encoder = torch.compile(self.model.vision_encoder, mode=encoder_mode)
            for name in ("memory_attention", "memory_encoder", "mask_decoder"):
                compiled = torch.compile(getattr(self.model, name), mode=mode)
                if mode == "reduce-overhead":
                    compiled.register_forward_hook(_clone_outputs)  # runs outside the compiled (graphed) region
                setattr(self.model, name, compiled)

    def _pixels(self, frames: np.ndarray) -> Any:
        size = self.model.config.image_size
        # the normalization's mean and std copied without a host wait where the per-frame path does so too
        waitless = getattr(getattr(self.model, "_process_object_pointers", None), "_pvtt_no_host_wait", False)
        with _no_host_wait_mode()() if waitless else contextlib.nullcontext():
            return resize_normalize(frames_to_tensor(frames, self.device), (size, size), self.dtype)

    def _encode_chunk(self, session: Any, frames: np.ndarray, start: int) -> None:
        features = self.model.get_image_features(self._pixels(frames), return_dict=True)
        for j in range(len(frames)):  # features are (HW, N, C): the frame is dimension 1
            session.cache.cache_vision_features(start + j, {
                "vision_feats": [f[:, j:j + 1] for f in features.fpn_hidden_states],
                "vision_pos_embeds": [p[:, j:j + 1] for p in features.fpn_position_encoding],
            })

    def session(self, clip: Clip, box: Box) -> Any:
        """An inference session over ``clip`` (frames preprocessed only if the encoder asks for one not cached)
        with ``box`` as SAM2's box prompt on frame 0."""
        import torch
        from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession

        frames, height, width = clip.frames, clip.height, clip.width
        size, chunk = self.model.config.image_size, self.settings.batch_size
        session = Sam2VideoInferenceSession(
            video=None, video_height=height, video_width=width, inference_device=self.device,
            inference_state_device=self.device, video_storage_device=self.device, dtype=self.dtype,
            max_vision_features_cache_size=2 * chunk)
        session.processed_frames = _FramesOnDemand(clip.num_frames, lambda i: self._pixels(frames[i:i + 1])[0])
        obj_idx = session.obj_id_to_idx(1)
        corners = torch.tensor([[[[box.x0 * size / width, box.y0 * size / height],
                                  [box.x1 * size / width, box.y1 * size / height]]]], dtype=torch.float32)
        session.add_point_inputs(obj_idx, 0, {"point_coords": corners,
                                              "point_labels": torch.tensor([[[2, 3]]], dtype=torch.int32)})
        session.obj_with_new_inputs = [1]
        return session

    def segment(self, clip: Clip, box: Box) -> Masks:
        import torch
        import torch.nn.functional as F

        self._require_setup()
        # 1. check inputs
        frames, height, width = clip.frames, clip.height, clip.width
        box = box.clip_to(width, height)
        if box.width < 1 or box.height < 1:
            raise RejectItem(f"box {box.as_tuple()} is outside the {width}x{height} frame")
        # 2. session with the box prompt on frame 0
        session = self.session(clip, box)
        chunk, count = self.settings.batch_size, clip.num_frames
        # 3. propagate, encoding frames a chunk ahead; masks and scores stay on the device until the end, so
        #    the host never waits for a frame and keeps queueing the (launch-bound) memory-attention work
        masks = torch.zeros((count, height, width), dtype=torch.bool, device=self.device)
        scores = torch.full((count,), float("nan"), dtype=torch.float32, device=self.device)
        with torch.inference_mode():
            self._encode_chunk(session, frames[0:chunk], 0)
            for out in self.model.propagate_in_video_iterator(inference_session=session, start_frame_idx=0):
                t = int(out.frame_idx)
                if (t + 1) % chunk == 0 and t + 1 < count:
                    self._encode_chunk(session, frames[t + 1:t + 1 + chunk], t + 1)
                logits = F.interpolate(out.pred_masks[:1].float(), size=(height, width), mode="bilinear",
                                       align_corners=False)[0, 0]
                masks[t] = logits > self.settings.mask_threshold
                if out.object_score_logits is not None:
                    scores[t] = torch.sigmoid(out.object_score_logits.float()).reshape(-1)[0]
        if masks.device.type == "cuda":  # through pinned memory: a fast copy, and no staging through pageable memory
            host = torch.empty(masks.shape, dtype=masks.dtype, pin_memory=True)
            host.copy_(masks, non_blocking=True)
            scores = scores.cpu()  # on the same stream, after the masks' copy: the host waits once for both
            masks = host
        masks = masks.numpy()
        confidence = np.nan_to_num(scores.cpu().numpy(), nan=0.0)
        if not masks[0].any():
            raise RejectItem(f"empty first-frame mask: SAM2 found nothing in box {box.as_tuple()}")
        return Masks(masks, confidence)
