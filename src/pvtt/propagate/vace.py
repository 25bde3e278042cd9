"""propagate ``vace-depth`` and ``vace-points``: Wan VACE conditioned on a control video inside the product region.

- ``vace-depth`` (Ditto-1M): the clip's depth video is the control, so B inherits A's 3-D shape and
  motion — right when A and B have similar silhouettes.
- ``vace-points`` (VideoSwap's idea on today's models): A's tracked semantic points, carried onto
  B's box, are rendered as a sparse control video; the shape is free to change while the motion
  follows the points.

Both keep the source video outside the product region (VACE's mask: 0 = keep, 1 = generate), use
the edited first frame as known content of frame 0 and B's photo as a reference image. Clips longer
than ``max_frames`` are generated in chunks, each seeded by the last generated frame of the previous.

The denoising loop is written out here (rather than calling ``WanVACEPipeline.__call__``) so that
classifier-free guidance can run as one batch of two, the unconditional branch can be refreshed
every ``uncond_every`` steps, and the transformer can be compiled or given another attention
backend; with ``batch_cfg: false, uncond_every: 1`` it computes exactly what the pipeline call does.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pvtt import compose
from pvtt.models import ModelBackend
from pvtt.propagate import VaceSettings, controls
from pvtt.types import Clip, ProductImage, Tracks

log = logging.getLogger("pvtt")

class VacePropagator(ModelBackend):
    """Shared Wan VACE machinery; subclasses render the control signal."""

    name = "vace"
    stage = "propagate.vace"
    settings_class = VaceSettings

    # --- setup --------------------------------------------------------------------------------------
    def setup(self, model: Any = None, processor: Any = None) -> None:
        """Load the pipeline (or take ``model``: a built ``WanVACEPipeline``), place it, apply speed options."""
        from pvtt.models.loading import resolve_device, resolve_dtype
        from pvtt.models.pipelines import place_pipeline

        self.device = resolve_device(self.settings.device)
        self.dtype = resolve_dtype(self.settings.dtype, self.device)
        pipe = model if model is not None else self.load()[0]
        pipe = place_pipeline(pipe, self.device, self.dtype, self.settings.cpu_offload)
        if self.settings.attention_backend:
            pipe.transformer.set_attention_backend(self.settings.attention_backend)
        if self.settings.compile:  # regional: the repeated transformer and VACE blocks, ~30 s instead of minutes
            pipe.transformer.compile_repeated_blocks()
        self.model = pipe

    def load(self) -> tuple[Any, Any]:
        from diffusers import WanVACEPipeline

        from pvtt.models.pipelines import load_pipeline

        s = self.settings
        return load_pipeline(WanVACEPipeline, s.model, s.allow_download, self.stage, self.dtype), None

    # --- the stage call -------------------------------------------------------------------------------
    def control_video(self, clip: Clip, masks_a: np.ndarray, tracks_a: Tracks | None, box_a: Any, box_b: Any,
                      depth: np.ndarray | None) -> np.ndarray:
        """``(T, H, W, 3)`` uint8 control frames (only their pixels inside the region are used)."""
        raise NotImplementedError

    def propagate(self, clip: Clip, background: np.ndarray | None, masks_a: Any, tracks_a: Tracks | None,
                  insert: Any, *, instruction: str = "", product: ProductImage | np.ndarray | None = None,
                  depth: np.ndarray | None = None, **_: Any) -> Any:
        """The edited clip: B carried through ``clip`` with A's motion, the source kept outside the region.

        ``insert`` is the first-frame :class:`~pvtt.types.InsertResult` (or the edited frame); ``product``
        B's RGBA photo for the reference image (default: ``insert.product``, else the crop of the edited
        frame in B's box); ``depth`` the clip's
        depth video (``(T, H, W)`` float or ``(T, H, W, 3)`` uint8; ``vace-depth`` estimates it when absent).
        """
        # 1. check inputs
        masks = compose.as_mask_array(masks_a)
        frame0, alpha_b, box_b = controls.insert_parts(insert)
        if masks.shape != clip.frames.shape[:3]:
            raise ValueError(f"masks_a must be (T, H, W) = {clip.frames.shape[:3]}, got {masks.shape}")
        if frame0.shape != clip.frames.shape[1:]:
            raise ValueError(f"the edited first frame must be {clip.frames.shape[1:]}, got {frame0.shape}")
        box_a = compose.box_of_mask(masks[0])
        if box_a is None:
            raise ValueError("masks_a is empty on the first frame: nothing to replace")
        box_b = box_b or box_a
        # 2. the region to repaint and the control signal inside it
        region = compose.edit_region(masks, box_b, self.settings.mask_dilate)
        region[0] = False  # frame 0 is the edited first frame: known content
        control = self.control_video(clip, masks, tracks_a, box_a, box_b, depth)
        source = clip.frames.copy()
        source[0] = frame0
        condition = controls.compose_condition(source, control, region)
        product = product if product is not None else getattr(insert, "product", None)  # B as placed
        reference = self._reference(product, frame0, box_b)
        prompt = self.settings.prompt.format(instruction=instruction or "a product")
        # 3. generate chunk by chunk at model resolution
        frames = self.generate_long(condition, region, reference, prompt)
        # 4. back to clip size, the source kept outside the region, frame 0 exact
        frames = compose.resize_frames(frames, clip.height, clip.width)
        if self.settings.keep_source:
            frames = compose.blend(frames, source, compose.feather(region, self.settings.feather))
        frames[0] = frame0
        self.last_region = region
        return controls.make_result(frames, self.name, masks=controls.masks_of_b(insert, masks), prompt=prompt,
                                    size=list(self._size(clip)), region_pixels=int(region.sum()))

    def _size(self, clip: Clip) -> tuple[int, int]:
        return compose.model_size(clip.height, clip.width, self.settings.max_area, 16)

    def _reference(self, product: Any, frame0: np.ndarray, box_b: Any) -> np.ndarray | None:
        if not self.settings.use_reference:
            return None
        rgba = getattr(product, "rgba", product)
        if rgba is not None:
            rgba = np.asarray(rgba)
            return controls.on_white(rgba) if rgba.shape[-1] == 4 else rgba
        crop = frame0[compose.box_slices(box_b, frame0.shape[1], frame0.shape[0])]
        return crop if crop.size else None

    def generate_long(self, condition: np.ndarray, region: np.ndarray, reference: np.ndarray | None,
                      prompt: str) -> np.ndarray:
        """All frames of ``condition`` ``(T, H, W, 3)``, in chunks of ``max_frames`` seeded by the previous chunk."""
        height, width = compose.model_size(condition.shape[1], condition.shape[2], self.settings.max_area, 16)
        video = compose.resize_frames(condition, height, width)
        if reference is not None:  # letterboxed on white at model size (as VACE's own preprocessing, no rounding to 0)
            reference = controls.letterbox(reference, height, width)
        mask = compose.resize_frames(region.astype(np.uint8), height, width, nearest=True).astype(bool)
        total, step = len(video), self.settings.max_frames - 1
        out = np.empty((total, height, width, 3), np.uint8)
        start, seed_frame = 0, None
        while True:
            stop = min(start + self.settings.max_frames, total)
            chunk, chunk_mask = video[start:stop].copy(), mask[start:stop].copy()
            if seed_frame is not None:  # continuity: the chunk starts from the last generated frame
                chunk[0], chunk_mask[0] = seed_frame, False
            n = len(chunk)
            padded = ((n - 1 + 3) // 4) * 4 + 1  # Wan generates 4k+1 frames
            if padded != n:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], padded - n, 0)])
                chunk_mask = np.concatenate([chunk_mask, np.repeat(chunk_mask[-1:], padded - n, 0)])
            out[start:stop] = self.generate(chunk, chunk_mask, reference, prompt)[:n]
            if stop >= total:
                return out
            seed_frame = out[stop - 1]
            start += step

    # --- the diffusion loop -------------------------------------------------------------------------
    def generate(self, video: np.ndarray, mask: np.ndarray, reference: np.ndarray | None, prompt: str,
                 latents: Any = None, on_step: Any = None) -> np.ndarray:
        """One VACE call: ``video`` ``(T, h, w, 3)`` uint8 (T = 4k+1), ``mask`` ``(T, h, w)`` bool → ``(T, h, w, 3)``.

        ``on_step(i)`` is called after denoising step ``i`` (progress, timing).
        """
        import torch
        from PIL import Image

        self._require_setup()
        pipe, s = self.model, self.settings
        # 1. check inputs
        num_frames, height, width = video.shape[:3]
        if (num_frames - 1) % 4:
            raise ValueError(f"num_frames has to be 4k+1 for Wan but is {num_frames}")
        if height % 16 or width % 16:
            raise ValueError(f"height and width have to be divisible by 16 but are {height} and {width}")
        device, dtype = pipe._execution_device, pipe.transformer.dtype
        generator = torch.Generator("cpu").manual_seed(s.seed)
        cfg = s.guidance_scale > 1.0
        with torch.inference_mode():
            # 2. encode the prompt
            cond, uncond = pipe.encode_prompt(prompt=prompt, negative_prompt=s.negative_prompt,
                                              do_classifier_free_guidance=cfg, max_sequence_length=s.max_sequence_length,
                                              device=device)
            cond = cond.to(dtype)
            uncond = uncond.to(dtype) if cfg else None
            # 3. timesteps
            pipe.scheduler.set_timesteps(s.steps, device=device)
            timesteps = pipe.scheduler.timesteps
            # 4. conditioning latents: kept/regenerated video, mask, reference image
            frames = [Image.fromarray(f) for f in video]
            masks = [Image.fromarray(m.astype(np.uint8) * 255) for m in mask]
            refs = Image.fromarray(reference) if reference is not None else None
            v, m, r = pipe.preprocess_conditions(frames, masks, refs, 1, height, width, num_frames,
                                                 torch.float32, device)
            conditioning = pipe.prepare_video_latents(v, m, r, generator, device)
            conditioning = torch.cat([conditioning, pipe.prepare_masks(m, r, generator)], dim=1).to(dtype)
            scale = torch.full((len(pipe.transformer.config.vace_layers),), float(s.conditioning_scale),
                               device=device, dtype=dtype)
            num_refs = len(r[0])
            # 5. initial noise
            latents = pipe.prepare_latents(1, pipe.transformer.config.in_channels, height, width,
                                           num_frames + num_refs * pipe.vae_scale_factor_temporal, torch.float32,
                                           device, generator, latents)
            # 6. denoise
            delta = None
            for i, t in enumerate(timesteps):
                noise, delta = self._predict(latents.to(dtype), t, cond, uncond, conditioning, scale, i, delta)
                latents = pipe.scheduler.step(noise, t, latents, return_dict=False)[0]
                if on_step is not None:
                    on_step(i)
            # 7. decode (reference frames dropped)
            latents = latents[:, :, num_refs:].to(pipe.vae.dtype)
            mean = torch.tensor(pipe.vae.config.latents_mean).view(1, -1, 1, 1, 1).to(latents)
            std = torch.tensor(pipe.vae.config.latents_std).view(1, -1, 1, 1, 1).to(latents)
            decoded = pipe.vae.decode(latents * std + mean, return_dict=False)[0]
            out = pipe.video_processor.postprocess_video(decoded, output_type="np")[0]
        return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def _predict(self, x: Any, t: Any, cond: Any, uncond: Any, control: Any, scale: Any, step: int,
                 delta: Any) -> tuple[Any, Any]:
        """Guided noise prediction of step ``step``; ``delta`` is the last cond − uncond difference."""
        import torch

        model, s = self.model.transformer, self.settings

        def forward(hidden, text, ctrl):
            return model(hidden_states=hidden, timestep=t.expand(hidden.shape[0]), encoder_hidden_states=text,
                         control_hidden_states=ctrl, control_hidden_states_scale=scale, return_dict=False)[0]

        if uncond is None:
            return forward(x, cond, control), None
        if step % s.uncond_every and delta is not None:  # reuse the guidance difference of the last full step
            pred = forward(x, cond, control)
            return pred + (s.guidance_scale - 1.0) * delta, delta
        if s.batch_cfg:
            both = forward(torch.cat([x, x]), torch.cat([cond, uncond]), torch.cat([control, control]))
            pred, pred_uncond = both.chunk(2)
        else:
            pred, pred_uncond = forward(x, cond, control), forward(x, uncond, control)
        delta = pred - pred_uncond
        return pred_uncond + s.guidance_scale * delta, delta


class VaceDepthPropagator(VacePropagator):
    """``vace-depth``: the clip's depth video inside the product region (A's 3-D shape and motion)."""

    name = "vace-depth"

    def clip_depth(self, clip: Clip) -> np.ndarray:
        """``(T, H, W)`` depth of ``clip`` when no depth video is given (``depth_model``, loaded once per worker;
        raises :class:`~pvtt.models.ModelNotAvailable` when its weights are missing)."""
        if getattr(self, "_depth", None) is None:
            from pvtt.depth import make_depth

            s = self.settings
            self._depth = make_depth(model=s.depth_model, device=s.device, dtype=s.dtype,
                                     allow_download=s.allow_download)
        return self._depth.estimate(clip)

    def control_video(self, clip, masks_a, tracks_a, box_a, box_b, depth):
        from pvtt.depth import depth_to_video_frames

        depth = np.asarray(self.clip_depth(clip) if depth is None else depth)
        if depth.ndim == 3:
            depth = depth_to_video_frames(depth)
        if depth.shape[:3] != clip.frames.shape[:3]:
            raise ValueError(f"depth must cover the clip {clip.frames.shape[:3]}, got {depth.shape}")
        return depth.astype(np.uint8)


class VacePointsPropagator(VacePropagator):
    """``vace-points``: A's tracked points carried onto B's box, rendered as coloured discs."""

    name = "vace-points"

    def control_video(self, clip, masks_a, tracks_a, box_a, box_b, depth):
        if tracks_a is None or tracks_a.num_points == 0:
            raise ValueError("vace-points needs the clip's tracked points (tracks_a) with at least one point")
        if tracks_a.points.shape[0] != clip.num_frames:
            raise ValueError(f"tracks_a covers {tracks_a.points.shape[0]} frames, the clip {clip.num_frames}")
        moved = controls.map_tracks_to_box(tracks_a, box_a, box_b)
        return controls.render_points(moved.points, moved.visible, clip.height, clip.width,
                                      radius=self.settings.point_radius)
