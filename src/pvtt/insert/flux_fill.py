"""insert ``flux-fill``: product B placed on the first frame, then harmonized by FLUX.1 Fill (or FLUX.1 Depth).

1.–2. The ``composite`` backend places B (box adapted to B's aspect ratio, harmonised, shadow) over
   the erased background: this initial content keeps B's identity, and its ``product``/``transform``
   are what ``warp`` propagates.
3. The region to repaint is A's mask united with B's alpha, dilated; FLUX refines it with partial
   denoising (``strength`` < 1), so lighting, shadows and the seam are redrawn while B stays B.
   ``control: depth`` uses ``FluxControlInpaintPipeline`` with FLUX.1-Depth-dev and the depth of
   the pasted frame as control (geometry kept); otherwise ``FluxFillPipeline`` with FLUX.1-Fill-dev.
4. Outside the region the source frame is kept exactly (feathered seam).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pvtt import compose
from pvtt.insert import FluxFillSettings
from pvtt.insert.composite import CompositeInserter
from pvtt.models import ModelBackend, ModelSettings
from pvtt.types import Box


class FluxFillInserter(ModelBackend):
    """First-frame insertion with FLUX.1 Fill (or Depth) refining B pasted in A's place."""

    name = "flux-fill"
    stage = "insert.flux_fill"
    settings_class = FluxFillSettings

    def __init__(self, settings: Any = None, *, composite: Any = None, **overrides: Any):
        """``settings``: the ``insert.flux_fill`` section (or the insert section, whose own fields then place B);
        ``composite``: the settings of the composite placement (the insert section's fields)."""
        if settings is not None and not isinstance(settings, (dict, ModelSettings)):
            composite = settings if composite is None else composite
            settings = getattr(settings, "flux_fill")
        super().__init__(settings, **overrides)
        if hasattr(composite, "model_dump"):
            composite = composite.model_dump(exclude={"backend", "flux_fill"})
        self.composite = dict(composite or {})

    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self.settings, "composite": self.composite}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["settings"], composite=state["composite"])

    def setup(self, model: Any = None, processor: Any = None) -> None:
        """Load the pipeline (or take ``model``: a built ``FluxFillPipeline`` / ``FluxControlInpaintPipeline``)."""
        from pvtt.models.loading import resolve_device, resolve_dtype
        from pvtt.models.pipelines import place_pipeline

        self.device = resolve_device(self.settings.device)
        self.dtype = resolve_dtype(self.settings.dtype, self.device)
        pipe = model if model is not None else self.load()[0]
        self.model = place_pipeline(pipe, self.device, self.dtype, self.settings.cpu_offload)

    def load(self) -> tuple[Any, Any]:
        from pvtt.models.pipelines import load_pipeline

        s = self.settings
        if s.control == "depth":
            from diffusers import FluxControlInpaintPipeline

            return load_pipeline(FluxControlInpaintPipeline, s.depth_model, s.allow_download, self.stage, self.dtype), None
        from diffusers import FluxFillPipeline

        return load_pipeline(FluxFillPipeline, s.model, s.allow_download, self.stage, self.dtype), None

    def insert(self, frame: np.ndarray, background: np.ndarray, mask_a: np.ndarray, box_a: Box,
               product: np.ndarray, *, instruction: str = "", depth: np.ndarray | None = None) -> Any:
        """The edited first frame: B composited in A's place, then the region refined by FLUX.

        Same call as :meth:`pvtt.insert.Inserter.insert`; ``instruction`` fills the prompt, ``depth``
        (H, W) is the depth map for ``control: depth`` (estimated from the composite when absent).
        """
        # 1. check inputs
        frame = np.asarray(frame)
        mask_a = np.asarray(mask_a, bool)
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        if mask_a.shape != frame.shape[:2]:
            raise ValueError(f"mask_a must be {frame.shape[:2]}, got {mask_a.shape}")
        # 2. B placed and harmonised over the erased background (RejectItem when B cannot fit)
        placed = CompositeInserter(self.composite).insert(frame, background, mask_a, box_a, product)
        region = compose.dilate(mask_a | (placed.alpha > 0.5), self.settings.mask_dilate)
        # 3. FLUX refines the region
        prompt = self.settings.prompt.format(instruction=instruction or "a product")
        refined = self.refine(placed.frame, region, prompt, depth)
        # 4. the source outside the region
        placed.frame = compose.blend(refined, frame, compose.feather(region, self.settings.feather))
        placed.info = {**(placed.info or {}), "backend": self.name, "prompt": prompt, "control": self.settings.control,
                       "strength": self.settings.strength, "region_pixels": int(region.sum())}
        self.last_region = region
        return placed

    def refine(self, image: np.ndarray, region: np.ndarray, prompt: str, depth: np.ndarray | None = None) -> np.ndarray:
        """One FLUX call on ``image`` (H, W, 3) uint8 repainting ``region`` (H, W) bool; same size out."""
        import torch
        from PIL import Image

        self._require_setup()
        s = self.settings
        height, width = image.shape[:2]
        mh, mw = compose.model_size(height, width, s.max_area, 16)
        small = compose.resize_frames(image[None], mh, mw)[0]
        mask = compose.resize_frames(region[None].astype(np.uint8) * 255, mh, mw, nearest=True)[0]
        kwargs: dict[str, Any] = dict(prompt=prompt, image=Image.fromarray(small), mask_image=Image.fromarray(mask),
                                      height=mh, width=mw, strength=s.strength, num_inference_steps=s.steps,
                                      guidance_scale=s.guidance_scale, max_sequence_length=s.max_sequence_length,
                                      generator=torch.Generator("cpu").manual_seed(s.seed), output_type="np")
        if s.control == "depth":
            kwargs["control_image"] = Image.fromarray(self._depth_image(image, depth, mh, mw))
        with torch.inference_mode():
            out = self.model(**kwargs).images[0]
        out = np.clip(np.asarray(out) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return compose.resize_frames(out[None], height, width)[0]

    def _depth_image(self, image: np.ndarray, depth: np.ndarray | None, height: int, width: int) -> np.ndarray:
        from pvtt.depth import depth_to_video_frames

        if depth is None:  # the composite's depth, with an estimator loaded once per worker
            from pvtt.types import Clip

            if getattr(self, "_depth", None) is None:
                from pvtt.depth import make_depth

                s = self.settings
                self._depth = make_depth(model=s.depth_estimator, device=s.device, dtype=s.dtype,
                                         allow_download=s.allow_download)
            depth = self._depth.estimate(Clip("insert", image[None], 1.0))[0]
        depth = np.asarray(depth)
        grey = depth_to_video_frames(depth[None])[0] if depth.ndim == 2 else depth.astype(np.uint8)
        return compose.resize_frames(grey[None], height, width)[0]
