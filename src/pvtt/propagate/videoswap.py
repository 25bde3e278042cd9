"""propagate ``svd-points``: VideoSwap's semantic point registration (Gu et al., CVPR 2024) on Stable Video Diffusion.

VideoSwap swaps a subject by a few *semantic points* tracked through the source video: each point gets an
embedding (DIFT features of the source at the point), a small MLP per UNet level registers that embedding
into the UNet (added to the hidden states at the point's location, as T2I-Adapter residuals), the MLP is
fitted to the source video with the denoising loss (UNet frozen), and at edit time the points are moved
onto the new subject (dragged by the user, carried through the clip by a layered-atlas displacement) and
the video is regenerated with the point features at their new places.

Here, per pair:

1. **Point features** (:meth:`SvdPointsPropagator.frame_features`, the DIFT idea on SVD's own UNet): one
   forward pass of the source latents noised to ``feature_sigma`` (0.72 ≈ DIFT's t=261 of SD), windows of
   ``train_frames`` frames each conditioned on its first frame; the output of up block ``feature_block``
   (1 = DIFT's ``up_ft_index``: 1/16 of the image, 1280 channels on SVD) is sampled bilinearly at A's
   tracked points (:func:`sample_features`). A point's embedding is its feature averaged over the frames
   where it is visible, divided by its RMS.
2. **Registration** (:func:`build_registration`, :meth:`~SvdPointsPropagator.train_points`): one MLP per
   block in ``blocks`` (Linear → SiLU → Linear, ``mlp_width`` hidden, VideoSwap's ``SparsePointAdapter``)
   maps an embedding to that block's channels; the result is bilinearly splatted (:func:`splat`) at the
   point's place in each frame where it is visible and added to the output of the block's *last layer*,
   before its downsampler (:meth:`~SvdPointsPropagator.injecting`) — where VideoSwap's AnimateDiff UNet adds
   its adapter residuals. SVD's UNet has SD's layout (down blocks at 1/8, 1/16, 1/32, 1/64 of the image;
   320/640/1280/1280 channels), so ``blocks: [0, 1, 2, 3]`` are VideoSwap's four levels. The MLP is trained on
   the source clip with SVD's EDM loss (v-prediction preconditioning, Karras weight, as ``motion-lora``),
   the UNet frozen, points dropped at random (``point_dropout``), noise truncated to high sigmas
   (``min_train_sigma``), over the whole frame or only on patches around the points (``loss_region``).
3. **Edit** (:meth:`~SvdPointsPropagator.match_points`, :func:`carry_points`): A's points are mapped onto B by
   feature matching — A's frame-0 feature at each point against the edited frame 0's features on a grid
   in B's box (cosine, nearest neighbour; below ``min_similarity`` a point is left out) — and then moved
   with A's own motion: B's point k at frame t = its match + A's point k displacement from frame 0 to t,
   scaled by B's box over A's box. Each chunk is generated image-to-video from the edited first frame
   (later chunks from the previous chunk's last frame, as ``motion-lora``) with the MLP's features of A's
   embeddings injected at B's points, times ``point_scale``, in the first ``point_steps`` of the steps (both
   branches of the guidance, as VideoSwap). The source is pasted back outside the product region
   (``keep_source``).

What differs from VideoSwap, honestly:

- VideoSwap is AnimateDiff on SD 1.5: text-to-video with a *text* prompt (plus ED-LoRA concept tokens for
  the target subject, DDIM inversion of the source and prompt-to-prompt attention blending). Here it is SVD
  image-to-video: the target's appearance comes from the edited first frame (no text, no concept LoRA, no
  inversion, no attention control); the point features carry A's *layout and motion* onto B.
- DIFT features come from SVD's own UNet (image embedding + first-frame latents as conditioning, EDM noise)
  instead of SD 1.5 with a "photo of a {category}" prompt; one noise draw by default (DIFT averages 8,
  ``feature_ensemble``). Whether SVD's up-block features are as semantic as SD's is *not verified* here.
- Point correspondence A → B: VideoSwap asks the user to drag points (or keeps them for same-shape swaps)
  and carries the drag through the video with its layered neural atlas; here B's points are found by
  feature matching on the edited first frame and carried by A's displacements scaled by the box ratio (no
  atlas). VideoSwap also filters each frame's track by DIFT match confidence before averaging; here a
  point's embedding averages all frames where the tracker says it is visible.
- EDM instead of DDPM: VideoSwap samples t in [500, 1000] (``min_timestep 0.5``); here SVD's log-normal
  sigma is truncated below ``min_train_sigma`` (1.6 ≈ SD's t=500). The MLPs' output layers start at zero
  (the untrained registration changes nothing; VideoSwap uses PyTorch's default init), embeddings are
  RMS-normalised, and the ``points`` loss patch is per frame (VideoSwap's local mask covers every frame).
- No real SVD weights were run here: only the plumbing is tested, on a tiny random SVD.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pvtt import compose
from pvtt.propagate import SvdPointsSettings, controls
from pvtt.propagate.motion_lora import MotionLoraPropagator
from pvtt.types import Box, Clip, Tracks

log = logging.getLogger("pvtt")


# --- geometry: clip pixels <-> model pixels, sampling and splatting ------------------------------------
def to_model_points(points: np.ndarray, box: compose.Letterbox) -> np.ndarray:
    """Clip pixel coordinates ``(..., 2)`` → the letterboxed model frame's (pixel centres at integers)."""
    top, left = box.offset
    ph, pw = box.padded
    scale = np.float32([box.model_width / pw, box.model_height / ph])
    return ((np.asarray(points, np.float32) + np.float32([left, top]) + 0.5) * scale - 0.5).astype(np.float32)


def from_model_points(points: np.ndarray, box: compose.Letterbox) -> np.ndarray:
    """The inverse of :func:`to_model_points`."""
    top, left = box.offset
    ph, pw = box.padded
    scale = np.float32([box.model_width / pw, box.model_height / ph])
    return ((np.asarray(points, np.float32) + 0.5) / scale - 0.5 - np.float32([left, top])).astype(np.float32)


def sample_features(fmap: Any, points: Any, height: int, width: int) -> Any:
    """``fmap`` ``(N, C, h, w)`` covering a ``height`` x ``width`` image, sampled bilinearly at ``points``
    ``(N, K, 2)`` (image pixels, centres at integers) → ``(N, K, C)``. A point at the centre of cell (i, j)
    gets exactly ``fmap[..., i, j]``; outside the map the border value."""
    import torch
    import torch.nn.functional as F

    points = torch.as_tensor(points, dtype=torch.float32, device=fmap.device)
    grid = torch.stack([(points[..., 0] + 0.5) / width * 2 - 1, (points[..., 1] + 0.5) / height * 2 - 1], -1)
    out = F.grid_sample(fmap.float(), grid[:, :, None, :], mode="bilinear", padding_mode="border", align_corners=False)
    return out[..., 0].permute(0, 2, 1)


@dataclass
class SplatPlan:
    """Where each (frame, point) lands on one block's ``h`` x ``w`` grid: flat cell indices and bilinear weights."""

    frames: int
    height: int
    width: int
    cell: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # flat f*h*w + y*w + x
    point: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    weight: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


def splat_plan(points: np.ndarray, visible: np.ndarray, image_hw: tuple[int, int], grid_hw: tuple[int, int]) -> SplatPlan:
    """VideoSwap's ``bilinear_interpolation``: each visible point's value goes to the 4 cells around it on a
    ``grid_hw`` grid covering ``image_hw`` (weights summing to 1; indices clamped at the border). Points
    outside the image or not finite are skipped."""
    points = np.asarray(points, np.float64)
    visible = np.asarray(visible, bool) & np.isfinite(points).all(-1)
    (ih, iw), (h, w) = image_hw, grid_hw
    frames = points.shape[0]
    u = (points[..., 0] + 0.5) * w / iw - 0.5
    v = (points[..., 1] + 0.5) * h / ih - 0.5
    visible &= (u >= -0.5) & (u <= w - 0.5) & (v >= -0.5) & (v <= h - 0.5)
    f, k = np.nonzero(visible)
    u, v = u[f, k], v[f, k]
    x0, y0 = np.floor(u), np.floor(v)
    fx, fy = u - x0, v - y0
    cells, pts, weights = [], [], []
    for dx, dy, wt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        x = np.clip(x0 + dx, 0, w - 1).astype(np.int64)
        y = np.clip(y0 + dy, 0, h - 1).astype(np.int64)
        cells.append(f * h * w + y * w + x)
        pts.append(k)
        weights.append(wt)
    return SplatPlan(frames, h, w, np.concatenate(cells), np.concatenate(pts).astype(np.int64),
                     np.concatenate(weights).astype(np.float32))


def splat(values: Any, plan: SplatPlan, keep: np.ndarray | None = None) -> Any:
    """Per-point ``values`` ``(K, C)`` splatted by ``plan`` → ``(F, C, h, w)`` (zero away from the points;
    differentiable in ``values``). ``keep`` ``(K,)`` bool leaves points out (training's point dropout)."""
    import torch

    cell, point, weight = plan.cell, plan.point, plan.weight
    if keep is not None:
        sel = np.asarray(keep, bool)[point]
        cell, point, weight = cell[sel], point[sel], weight[sel]
    channels = values.shape[-1]
    out = torch.zeros(plan.frames * plan.height * plan.width, channels, device=values.device, dtype=values.dtype)
    if len(cell):
        dev = values.device
        contrib = values[torch.from_numpy(point).to(dev)] * torch.from_numpy(weight).to(dev, values.dtype)[:, None]
        out = out.index_add(0, torch.from_numpy(cell).to(dev), contrib)
    return out.view(plan.frames, plan.height, plan.width, channels).permute(0, 3, 1, 2)


def carry_points(points_a: np.ndarray, b0: np.ndarray, box_a: Box | None, box_b: Box | None) -> np.ndarray:
    """B's points through the clip: ``b0`` ``(K, 2)`` (frame 0) plus A's displacement from frame 0, scaled by B's
    box over A's box (1 without boxes) — ``controls.map_tracks_to_box`` with B's own matched start points."""
    scale = np.float32([1.0, 1.0])
    if box_a is not None and box_b is not None:
        scale = np.float32([box_b.width / max(box_a.width, 1e-6), box_b.height / max(box_a.height, 1e-6)])
    points_a = np.asarray(points_a, np.float32)
    return (np.asarray(b0, np.float32)[None] + (points_a - points_a[:1]) * scale).astype(np.float32)


def build_registration(embed_dim: int, channels: list[int], width: int) -> Any:
    """VideoSwap's per-level MLPs (``SparsePointAdapter.model_list``): Linear → SiLU → Linear to each block's
    channels; the output layers start at zero, so the untrained registration adds nothing."""
    import torch

    mlps = torch.nn.ModuleList()
    for ch in channels:
        mlp = torch.nn.Sequential(torch.nn.Linear(embed_dim, width), torch.nn.SiLU(), torch.nn.Linear(width, ch))
        torch.nn.init.zeros_(mlp[2].weight)
        torch.nn.init.zeros_(mlp[2].bias)
        mlps.append(mlp)
    return mlps


class _Stop(Exception):
    """Raised by the feature hook: the rest of the UNet is not needed."""


@dataclass
class _Injection:
    residuals: dict[int, Any] = field(default_factory=dict)  # block index -> (F, C, h, w)
    scale: float = 1.0
    active: bool = True


class SvdPointsPropagator(MotionLoraPropagator):
    """VideoSwap-style semantic point registration on SVD (see the module docstring)."""

    name = "svd-points"
    stage = "propagate.svd_points"
    settings_class = SvdPointsSettings

    def __init__(self, settings: Any = None, **overrides: Any):
        super().__init__(settings, **overrides)
        self._injection = _Injection()
        self.last_losses: list[float] = []

    # --- the UNet's blocks --------------------------------------------------------------------------
    def _blocks(self) -> list[int]:
        count = len(self.model.unet.down_blocks)
        bad = [i for i in self.settings.blocks if not 0 <= i < count]
        if bad:
            raise ValueError(f"svd_points.blocks {bad}: this UNet has down blocks 0..{count - 1}")
        return sorted(set(self.settings.blocks))

    @staticmethod
    def _last_layer(block: Any) -> Any:
        """The layer after which VideoSwap adds its residual: the last attention (cross-attention blocks, the
        spatio-temporal transformer after the last resnet) or else the last resnet."""
        attentions = getattr(block, "attentions", None)
        return attentions[-1] if attentions is not None and len(attentions) else block.resnets[-1]

    def block_names(self) -> list[str]:
        return [f"down_blocks.{i}" for i in self._blocks()]

    def block_channels(self) -> list[int]:
        return [self.model.unet.config.block_out_channels[i] for i in self._blocks()]

    def block_grids(self, latent_hw: tuple[int, int]) -> list[tuple[int, int]]:
        """``(h, w)`` of each injected block's output for a latent of ``latent_hw`` (stride-2 convs: ceil(x / 2))."""
        grids = []
        for i in self._blocks():
            h, w = latent_hw
            for _ in range(i):
                h, w = (h + 1) // 2, (w + 1) // 2
            grids.append((h, w))
        return grids

    @contextmanager
    def injecting(self, residuals: dict[int, Any] | None, scale: float = 1.0):
        """Within the block, the UNet adds ``residuals[i]`` ``(F, C, h, w)`` (times ``scale``, while
        ``self._injection.active``) to the output of down block i's last layer, for every batch entry (the
        frames of both guidance branches)."""
        self._injection = _Injection(dict(residuals or {}), scale, True)
        state = self._injection

        def hook_for(i: int) -> Any:
            def hook(module: Any, args: Any, output: Any) -> Any:
                r = state.residuals.get(i)
                if r is None or not state.active:
                    return output
                h = output[0] if isinstance(output, tuple) else output
                if h.shape[0] % r.shape[0] or h.shape[1:] != r.shape[1:]:
                    raise ValueError(f"point features {tuple(r.shape)} do not fit down_blocks.{i} {tuple(h.shape)}")
                h = h + (r * state.scale).to(h.dtype).repeat(h.shape[0] // r.shape[0], 1, 1, 1)
                return (h,) + tuple(output[1:]) if isinstance(output, tuple) else h
            return hook

        handles = [self._last_layer(self.model.unet.down_blocks[i]).register_forward_hook(hook_for(i))
                   for i in self._blocks()]
        try:
            yield state
        finally:
            for handle in handles:
                handle.remove()
            self._injection = _Injection()

    # --- 1. point features (DIFT on SVD's UNet) ------------------------------------------------------
    def _time_ids(self, dtype: Any) -> Any:
        s = self.settings
        return self.model._get_add_time_ids(s.fps - 1, s.motion_bucket_id, s.noise_aug_strength, dtype, 1, 1,
                                            False).to(self.device)

    def frame_features(self, frames: np.ndarray, window: int | None = None) -> Any:
        """``(T, C, h, w)`` float32 features of model-size frames: windows of ``window`` frames (default
        ``train_frames``), each conditioned on its first frame, noised to ``feature_sigma`` (averaged over
        ``feature_ensemble`` draws), output of up block ``feature_block``. The noise is seeded per call."""
        import torch

        self._require_setup()
        s, unet = self.settings, self.model.unet
        if not 0 <= s.feature_block < len(unet.up_blocks):
            raise ValueError(f"svd_points.feature_block {s.feature_block}: this UNet has up blocks "
                             f"0..{len(unet.up_blocks) - 1}")
        captured: list[Any] = []

        def grab(module: Any, args: Any, output: Any) -> None:
            captured.append(output[0] if isinstance(output, tuple) else output)
            raise _Stop

        generator = torch.Generator("cpu").manual_seed(s.seed)
        noise_gen = torch.Generator(self.device).manual_seed(s.seed)
        sigma = torch.tensor(float(s.feature_sigma), device=self.device)
        c_in, c_noise = 1 / (sigma ** 2 + 1).sqrt(), (sigma.log() / 4).view(1)
        handle = unet.up_blocks[s.feature_block].register_forward_hook(grab)
        out = []
        try:
            with torch.no_grad():
                for start, stop in compose.chunk_spans(len(frames), max(2, window or s.train_frames), 0):
                    latents = self._latents(self._pixels(frames[start:stop])).float()[None]
                    embedding, cond = self._condition(frames[start], generator)
                    time_ids = self._time_ids(latents.dtype)
                    total = 0
                    for _ in range(s.feature_ensemble):
                        noise = torch.randn(latents.shape, generator=noise_gen, device=self.device)
                        model_in = torch.cat([c_in * (latents + sigma * noise),
                                              cond[:, None].float().expand(-1, latents.shape[1], -1, -1, -1)], dim=2)
                        captured.clear()
                        try:
                            unet(model_in.to(unet.dtype), c_noise.to(unet.dtype), encoder_hidden_states=embedding.to(
                                unet.dtype), added_time_ids=time_ids.to(unet.dtype), return_dict=False)
                        except _Stop:
                            pass
                        total = total + captured[0].float()
                    out.append(total / s.feature_ensemble)
        finally:
            handle.remove()
        return torch.cat(out)

    def point_embeddings(self, frames: np.ndarray, points: np.ndarray, visible: np.ndarray) -> Any:
        """``(K, C)``: each point's feature (model-size ``points`` ``(T, K, 2)``) averaged over the frames where it
        is visible, divided by its RMS (zero for a point never visible)."""
        import torch

        s = self.settings
        h, w = frames.shape[1:3]
        sums, counts = 0, np.zeros(points.shape[1], np.float32)
        for start, stop in compose.chunk_spans(len(frames), max(2, s.train_frames), 0):
            fmap = self.frame_features(frames[start:stop])  # one window at a time: the maps are not all kept
            feats = sample_features(fmap, points[start:stop], h, w)  # (F, K, C)
            vis = torch.as_tensor(visible[start:stop], dtype=torch.float32, device=feats.device)[..., None]
            sums = sums + (feats * vis).sum(0)
            counts += visible[start:stop].sum(0)
        emb = sums / torch.as_tensor(np.maximum(counts, 1), device=sums.device)[:, None]
        return emb / emb.pow(2).mean(-1, keepdim=True).sqrt().clamp_min(1e-6)

    # --- 2. the registration MLP ------------------------------------------------------------------
    def point_residuals(self, mlps: Any, embeddings: Any, points: np.ndarray, visible: np.ndarray,
                        latent_hw: tuple[int, int], keep: np.ndarray | None = None) -> dict[int, Any]:
        """Block index → ``(F, C, h, w)``: the MLPs' features of ``embeddings`` splatted at ``points`` (model
        pixels, ``(F, K, 2)``) where ``visible``."""
        image_hw = (latent_hw[0] * self.model.vae_scale_factor, latent_hw[1] * self.model.vae_scale_factor)
        out = {}
        for mlp, block, grid in zip(mlps, self._blocks(), self.block_grids(latent_hw)):
            out[block] = splat(mlp(embeddings), splat_plan(points, visible, image_hw, grid), keep)
        return out

    def _sigmas(self, generator: Any) -> Any:
        """One EDM training sigma: log-normal (p_mean, p_std) truncated below ``min_train_sigma``."""
        import torch

        s = self.settings
        lo = 0.0
        if s.min_train_sigma > 0:
            lo = float(torch.special.ndtr(torch.tensor((np.log(s.min_train_sigma) - s.p_mean) / s.p_std)))
        u = lo + (1 - lo) * torch.rand((1,), generator=generator, device=self.device)
        log_sigma = s.p_mean + s.p_std * torch.special.ndtri(u.clamp(1e-6, 1 - 1e-6))
        return log_sigma.exp().float()

    def point_loss(self, target: Any, embedding: Any, cond: Any, time_ids: Any, sigma: Any, noise: Any,
                   mask: Any = None) -> Any:
        """SVD's EDM loss (``train_step``'s preconditioning and weight) of ``target`` ``(1, F, 4, h, w)``, as a
        0-d tensor with gradients; ``mask`` ``(1, F, 1, h, w)`` limits it to the masked cells."""
        import torch

        unet = self.model.unet
        sigma = sigma.view(1, 1, 1, 1, 1)
        noisy = target.float() + sigma * noise
        c_in, c_skip = 1 / (sigma ** 2 + 1).sqrt(), 1 / (sigma ** 2 + 1)
        c_out, c_noise = -sigma / (sigma ** 2 + 1).sqrt(), sigma.log().view(1) / 4
        model_in = torch.cat([c_in * noisy, cond[:, None].float().expand(-1, target.shape[1], -1, -1, -1)], dim=2)
        dtype = unet.dtype
        pred = unet(model_in.to(dtype), c_noise.to(dtype), encoder_hidden_states=embedding.to(dtype),
                    added_time_ids=time_ids.to(dtype), return_dict=False)[0]
        denoised = c_out * pred.float() + c_skip * noisy
        error = (sigma ** 2 + 1) / sigma ** 2 * (denoised - target.float()) ** 2
        if mask is None or float(mask.sum()) == 0:
            return error.mean()
        return (error * mask).sum() / (mask.sum() * error.shape[2])

    def patch_mask(self, points: np.ndarray, visible: np.ndarray, latent_hw: tuple[int, int]) -> Any:
        """``(1, F, 1, h, w)``: 1 on the ``2 * patch_radius + 1`` latent cells square around each visible point."""
        import torch

        h, w = latent_hw
        r, factor = self.settings.patch_radius, self.model.vae_scale_factor
        mask = np.zeros((points.shape[0], h, w), np.float32)
        for f, k in zip(*np.nonzero(visible & np.isfinite(points).all(-1))):
            x, y = (points[f, k] + 0.5) / factor - 0.5
            cx, cy = int(round(x)), int(round(y))
            mask[f, max(0, cy - r):max(0, cy + r + 1), max(0, cx - r):max(0, cx + r + 1)] = 1.0
        return torch.from_numpy(mask)[None, :, None].to(self.device)

    def train_points(self, frames: np.ndarray, points: np.ndarray, visible: np.ndarray, embeddings: Any,
                     loras: list | None = None, on_step: Any = None) -> Any:
        """Fit the registration MLPs to the source (model-size ``frames``, A's model-pixel ``points``) with the UNet
        frozen (with the clip's motion LoRA in it when given); returns them. ``last_losses``: every step's loss."""
        import torch

        self._require_setup()
        pipe, s, unet = self.model, self.settings, self.model.unet
        count = len(frames)
        length = min(s.train_frames, count)
        starts = list(range(0, count - length + 1, max(1, length // 2)))
        rng = np.random.default_rng(s.seed)
        generator = torch.Generator("cpu").manual_seed(s.seed)
        step_noise = torch.Generator(self.device).manual_seed(s.seed)
        with torch.no_grad():
            latents = torch.cat([pipe.vae.encode(self._pixels(frames[i:i + 8])).latent_dist.sample(generator)
                                 for i in range(0, count, 8)]) * pipe.vae.config.scaling_factor
            conditions = {i: self._condition(frames[i], generator) for i in starts}
        latent_hw = tuple(latents.shape[-2:])
        time_ids = self._time_ids(latents.dtype)
        torch.manual_seed(s.seed)
        mlps = build_registration(int(embeddings.shape[-1]), self.block_channels(), s.mlp_width).to(self.device)
        optimizer = torch.optim.AdamW(mlps.parameters(), lr=s.lr, weight_decay=0.01)
        unet.requires_grad_(False)
        if s.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        losses = []
        try:
            for i in range(s.train_steps):
                start = starts[int(rng.integers(len(starts)))]
                if loras is not None:
                    self.use_lora(self._lora_at(loras, start, count))
                else:
                    self._disable_adapter()
                window = slice(start, start + length)
                keep = rng.random(points.shape[1]) >= s.point_dropout
                target = latents[window][None]
                embedding, cond = conditions[start]
                sigma = self._sigmas(step_noise)
                noise = torch.randn(target.shape, generator=step_noise, device=self.device, dtype=torch.float32)
                mask = (self.patch_mask(points[window], visible[window] & keep[None], latent_hw)
                        if s.loss_region == "points" else None)
                residuals = self.point_residuals(mlps, embeddings, points[window], visible[window], latent_hw, keep)
                with self.injecting(residuals):
                    loss = self.point_loss(target, embedding, cond, time_ids, sigma, noise, mask)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(loss.detach())
                if on_step is not None:
                    on_step(i, losses[-1])
        finally:
            if s.gradient_checkpointing:
                unet.disable_gradient_checkpointing()
        mlps.requires_grad_(False)
        self.last_losses = torch.stack(losses).tolist() if losses else []
        return mlps

    def _loras(self, clip: Clip, lora: Any) -> list | None:
        if lora is not None:
            return self.as_loras(lora)
        return self.train_loras(clip) if self.settings.motion_lora else None

    def register(self, clip: Clip, tracks_a: Tracks, loras: Any = None) -> dict[str, Any]:
        """The clip's point registration, shared by every pair of the clip: A's point embeddings ``(K, C)`` and the
        registration MLPs fitted to the source, as one state dict of CPU tensors (``embeddings``, ``losses``,
        ``mlp.*``). ``loras``: the clip's motion LoRA(s) (trained here when ``motion_lora`` is on and none given)."""
        import torch

        if tracks_a is None or tracks_a.num_points == 0:
            raise ValueError("svd-points needs A's tracked points (tracks_a)")
        self._require_setup()
        s = self.settings
        loras = self._loras(clip, loras)
        box = compose.Letterbox(clip.height, clip.width, s.height, s.width)
        frames = box.to_model(clip.frames)
        visible = np.asarray(tracks_a.visible, bool) & np.isfinite(tracks_a.points).all(-1)
        points_a = to_model_points(np.nan_to_num(tracks_a.points), box)
        embeddings = self.point_embeddings(frames, points_a, visible)
        mlps = self.train_points(frames, points_a, visible, embeddings, loras)
        state = {f"mlp.{k}": v.detach().to("cpu", copy=True) for k, v in mlps.state_dict().items()}
        state["embeddings"] = embeddings.detach().float().cpu()
        state["losses"] = torch.tensor(self.last_losses, dtype=torch.float32)
        return state

    def registration_parts(self, state: dict[str, Any]) -> tuple[Any, Any]:
        """``(embeddings, mlps)`` on the device from a :meth:`register` state."""
        embeddings = state["embeddings"].to(self.device)
        mlps = build_registration(int(embeddings.shape[-1]), self.block_channels(), self.settings.mlp_width)
        mlps.load_state_dict({k[len("mlp."):]: v for k, v in state.items() if k.startswith("mlp.")})
        return embeddings, mlps.to(self.device).requires_grad_(False)

    def registration_settings(self) -> dict[str, Any]:
        """The settings a registration depends on (its cache key); generation settings are not among them."""
        generation = {"inference_steps", "min_guidance_scale", "max_guidance_scale", "decode_chunk_size", "keep_source",
                      "mask_dilate", "feather", "point_scale", "point_steps", "min_similarity", "match_step", "compile",
                      "device", "cpu_offload", "allow_download"}
        return self.settings.model_dump(exclude=generation)

    def _lora_at(self, loras: list, frame: int, num_frames: int) -> dict:
        """The motion LoRA for the chunk that ``frame`` starts in (the only one when there is one)."""
        if len(loras) == 1:
            return loras[0]
        spans = compose.chunk_spans(num_frames, self.settings.num_frames, getattr(self.settings, "overlap", 1))
        return loras[max(k for k, (start, _) in enumerate(spans) if start <= frame)]

    # --- 3. A's points onto B, generation ------------------------------------------------------------
    def match_points(self, fmap_a: Any, points_a: np.ndarray, fmap_b: Any, region: tuple[float, float, float, float],
                     image_hw: tuple[int, int], queries: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """For each of A's points (model pixels ``(K, 2)``, sampled in ``fmap_a`` ``(1, C, h, w)``, or the given
        ``queries`` ``(K, C)``), the best cosine match among B's features (``fmap_b``) on a ``match_step`` grid
        over ``region`` (x0, y0, x1, y1, model pixels): ``(K, 2)`` locations and ``(K,)`` similarities."""
        import torch.nn.functional as F

        h, w = image_hw
        step = self.settings.match_step
        x0, y0, x1, y1 = region
        xs = np.arange(np.floor(max(x0, 0)), min(x1, w - 1) + 1e-3, step, dtype=np.float32)
        ys = np.arange(np.floor(max(y0, 0)), min(y1, h - 1) + 1e-3, step, dtype=np.float32)
        if not len(xs) or not len(ys):
            raise ValueError(f"empty matching region {region} in a {w}x{h} frame")
        grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
        if queries is None:
            queries = sample_features(fmap_a, points_a[None], h, w)[0]
        cand = F.normalize(sample_features(fmap_b, grid[None], h, w)[0], dim=-1)
        sim = F.normalize(queries.float(), dim=-1) @ cand.T  # (K, N)
        best, index = sim.max(-1)
        return grid[index.cpu().numpy()], best.cpu().numpy().astype(np.float32)

    def generate_points(self, first_frame: np.ndarray, num_frames: int, mlps: Any = None, embeddings: Any = None,
                        points: np.ndarray | None = None, visible: np.ndarray | None = None,
                        loras: list | None = None) -> np.ndarray:
        """``num_frames`` frames at ``first_frame``'s size, image-to-video in chunks (``motion-lora``'s: ``num_frames``
        each, the next from the previous one's last frame) with the MLPs' features of ``embeddings`` injected at
        ``points`` (model pixels ``(T, K, 2)``, where ``visible``); without points, plain generation."""
        import torch
        from PIL import Image

        self._require_setup()
        pipe, s = self.model, self.settings
        box = compose.Letterbox(*first_frame.shape[:2], s.height, s.width)
        latent_hw = (s.height // pipe.vae_scale_factor, s.width // pipe.vae_scale_factor)
        inject = mlps is not None and points is not None and points.shape[1] > 0 and s.point_scale > 0
        generator = torch.Generator("cpu").manual_seed(s.seed)
        out: list[np.ndarray] = []
        for k, (start, stop) in enumerate(compose.chunk_spans(num_frames, s.num_frames, 1)):
            if loras is not None:
                self.use_lora(self._lora_at(loras, start, num_frames))
            else:
                self._disable_adapter()
            seed = box.to_model((first_frame if k == 0 else out[start])[None])[0]
            residuals = None
            if inject:
                with torch.no_grad():
                    residuals = self.point_residuals(mlps, embeddings, points[start:stop], visible[start:stop],
                                                     latent_hw)
            with self.injecting(residuals, s.point_scale) as state, torch.inference_mode():
                state.active = s.point_steps > 0

                def step_end(pipeline: Any, i: int, t: Any, kwargs: dict) -> dict:
                    state.active = (i + 1) < s.point_steps * s.inference_steps
                    return {}

                frames = pipe(Image.fromarray(seed), height=s.height, width=s.width, num_frames=max(2, stop - start),
                              num_inference_steps=s.inference_steps, min_guidance_scale=s.min_guidance_scale,
                              max_guidance_scale=s.max_guidance_scale, fps=s.fps, motion_bucket_id=s.motion_bucket_id,
                              noise_aug_strength=s.noise_aug_strength, decode_chunk_size=s.decode_chunk_size,
                              generator=generator, output_type="np", callback_on_step_end=step_end).frames[0]
            frames = np.clip(np.asarray(frames) * 255.0 + 0.5, 0, 255).astype(np.uint8)
            frames = box.from_model(frames[:stop - start])
            out.extend(frames[len(out) - start:])  # frames before len(out) are the previous chunk's
        return np.stack(out[:num_frames])

    def propagate(self, clip: Clip, background: np.ndarray | None, masks_a: Any, tracks_a: Tracks | None,
                  insert: Any, *, lora: Any = None, registration: Any = None, **_: Any) -> Any:
        """The edited clip: A's points registered into SVD, matched onto B in the edited first frame, moved with A's
        motion and injected while generating from the edited frame. ``lora``: the clip's motion LoRA(s), optional;
        ``registration``: the clip's registration (state or safetensors path, :meth:`register`), else fitted here."""
        s = self.settings
        frame0, _, box_b = controls.insert_parts(insert)
        if frame0.shape != clip.frames.shape[1:]:
            raise ValueError(f"the edited first frame must be {clip.frames.shape[1:]}, got {frame0.shape}")
        if tracks_a is None or tracks_a.num_points == 0:
            raise ValueError("svd-points needs A's tracked points (tracks_a)")
        self._require_setup()
        masks = compose.as_mask_array(masks_a)
        box = compose.Letterbox(clip.height, clip.width, s.height, s.width)
        frames = box.to_model(clip.frames)
        image_hw = frames.shape[1:3]
        visible = np.asarray(tracks_a.visible, bool) & np.isfinite(tracks_a.points).all(-1)
        points_a = to_model_points(np.nan_to_num(tracks_a.points), box)
        loras = self._loras(clip, lora)
        # 1. A's registration (the clip's: embeddings over the clip, MLPs fitted to the source), unless given
        state = load_registration(registration) if isinstance(registration, (str, Path)) else registration
        if state is None:
            state = self.register(clip, tracks_a, loras)
        embeddings, mlps = self.registration_parts(state)
        # 2. frame 0 of A and of the edit, alike, for matching
        edited = box.to_model(frame0[None])
        fmap_a0, fmap_b0 = self.frame_features(frames[:1], 1), self.frame_features(edited, 1)
        # 3. A's points onto B: nearest neighbour by cosine inside B's box (A's box when the insert has none)
        box_a = compose.box_of_mask(masks[0])
        target = box_b or box_a
        if target is None:
            region = (0.0, 0.0, float(image_hw[1] - 1), float(image_hw[0] - 1))
        else:
            corners = np.float32([[target.x0, target.y0], [target.x1 - 1, target.y1 - 1]])  # pixel centres
            (x0, y0), (x1, y1) = to_model_points(corners, box)
            region = (float(x0), float(y0), float(x1), float(y1))
        queries = sample_features(fmap_a0, points_a[:1], *image_hw)[0]
        queries = torch_where(visible[0], queries, embeddings)
        match, similarity = self.match_points(fmap_a0, points_a[0], fmap_b0, region, image_hw, queries)
        usable = (similarity >= s.min_similarity) & np.isfinite(tracks_a.points[0]).all(-1)
        b0 = from_model_points(match, box)
        points_b = carry_points(np.nan_to_num(tracks_a.points), b0, box_a, box_b)
        visible_b = visible & usable[None]
        mapping = [{"point": int(k), "a": [round(float(v), 2) for v in tracks_a.points[0, k]],
                    "b": [round(float(v), 2) for v in b0[k]], "similarity": round(float(similarity[k]), 4),
                    "used": bool(usable[k])} for k in range(tracks_a.num_points)]
        # 4. generation with the registered features at B's points
        keep = np.flatnonzero(usable)
        out = self.generate_points(frame0, clip.num_frames, mlps, embeddings[keep],
                                   to_model_points(points_b[:, keep], box), visible_b[:, keep], loras)
        if s.keep_source:
            region_mask = compose.edit_region(masks, box_b, s.mask_dilate)
            out = compose.blend(out, clip.frames, compose.feather(region_mask, s.feather))
        out[0] = frame0
        reason = "" if len(keep) else f"no point of A matched B with similarity >= {s.min_similarity}: plain image-to-video"
        losses = state.get("losses")
        losses = losses.tolist() if losses is not None else []
        return controls.make_result(out, self.name, reason, masks=controls.masks_of_b(insert, masks),
                                    points=mapping, blocks=self.block_names(), feature_block=f"up_blocks.{s.feature_block}",
                                    matched=int(len(keep)), loss_first=round(losses[0], 5) if losses else None,
                                    loss_last=round(losses[-1], 5) if losses else None)


def save_registration(state: dict[str, Any], path: str | Path) -> Path:
    """A clip's point registration (:meth:`SvdPointsPropagator.register`) as safetensors, atomically."""
    from pvtt.propagate.motion_lora import save_loras

    return save_loras([state], path)


def load_registration(path: str | Path) -> dict[str, Any]:
    from pvtt.propagate.motion_lora import load_loras

    return load_loras(path)[0]


def torch_where(condition: np.ndarray, a: Any, b: Any) -> Any:
    """Row-wise ``a`` where ``condition`` ``(K,)``, else ``b`` (both ``(K, C)`` tensors)."""
    import torch

    return torch.where(torch.as_tensor(condition, device=a.device)[:, None], a, b.to(a.device, a.dtype))
