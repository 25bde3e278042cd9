"""insert ``flux-fill``: product B placed on the first frame, then harmonized by FLUX.1 Fill (or FLUX.1 Depth).

1.–2. The ``composite`` backend places B (box adapted to B's aspect ratio, harmonised, shadow) over
   the erased background: this initial content keeps B's identity, and its ``product``/``transform``
   are what ``warp`` propagates.
3. The region to repaint is A's mask united with B's alpha, dilated; FLUX refines it with partial
   denoising (``strength`` < 1), so lighting, shadows and the seam are redrawn while B stays B.
   ``control: depth`` uses ``FluxControlInpaintPipeline`` with FLUX.1-Depth-dev and the depth of
   the pasted frame as control (geometry kept); otherwise ``FluxFillPipeline`` with FLUX.1-Fill-dev.
   FLUX sees B's photo as ``reference`` says (geometry in :mod:`pvtt.insert.reference`):

   - ``in-context``: one canvas, B's cut-out on a plain background in a left panel beside the frame;
     the mask is 0 on the left panel, so FLUX repaints B's slot on the right with B in view, and the
     right panel is cropped back (``in_context_prompt``, ``in_context_strength``). With depth control
     the left panel's control is B's silhouette at the slot's depth over a far (black) background.
   - ``redux``: ``FluxPriorReduxPipeline`` (SigLIP + Redux projector) encodes B's photo into extra
     T5-space tokens appended to the prompt's (the Fill pipeline's text encoders, shared); FLUX gets
     ``prompt_embeds`` / ``pooled_prompt_embeds`` instead of the prompt string.
   - ``in-context+redux``: both; ``none``: neither (the prompt then only names B).
4. Outside the region the source frame is kept exactly (feathered seam).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pvtt import compose
from pvtt.insert import FluxFillSettings
from pvtt.insert.composite import CompositeInserter
from pvtt.insert.reference import content_box, crop_target, diptych_canvas, diptych_layout, product_of, reference_panel
from pvtt.models import ModelBackend, ModelNotAvailable
from pvtt.types import Box

REDUX_SIDE = 384  # SigLIP so400m-patch14-384's input: B's photo is letterboxed onto a square of this side


class FluxFillInserter(ModelBackend):
    """First-frame insertion with FLUX.1 Fill (or Depth) refining B pasted in A's place, B's photo in view."""

    name = "flux-fill"
    stage = "insert.flux_fill"
    settings_class = FluxFillSettings

    def __init__(self, settings: Any = None, *, composite: Any = None, **overrides: Any):
        """``settings``: the ``insert.flux_fill`` section; ``composite``: the settings of the composite placement
        (the insert section, whose own fields place B)."""
        super().__init__(settings, **overrides)
        if hasattr(composite, "model_dump"):
            composite = composite.model_dump(exclude={"backend", "flux_fill"})
        self.composite = dict(composite or {})
        self.redux: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self.settings, "composite": self.composite}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["settings"], composite=state["composite"])

    @property
    def in_context(self) -> bool:
        return self.settings.reference in ("in-context", "in-context+redux")

    @property
    def uses_redux(self) -> bool:
        return self.settings.reference in ("redux", "in-context+redux")

    def setup(self, model: Any = None, processor: Any = None, redux: Any = None) -> None:
        """Load the pipeline (or take ``model``: a built ``FluxFillPipeline`` / ``FluxControlInpaintPipeline``) and,
        when ``reference`` uses Redux, the ``FluxPriorReduxPipeline`` (or take ``redux``)."""
        from pvtt.models.loading import resolve_device, resolve_dtype
        from pvtt.models.pipelines import place_pipeline

        self.device = resolve_device(self.settings.device)
        self.dtype = resolve_dtype(self.settings.dtype, self.device)
        pipe = model if model is not None else self.load()[0]
        self.model = place_pipeline(pipe, self.device, self.dtype, self.settings.cpu_offload)
        self.redux = None
        if self.uses_redux:
            self.redux = self._place_redux(redux if redux is not None else self._load_redux(), pipe)

    def load(self) -> tuple[Any, Any]:
        from pvtt.models.pipelines import load_pipeline

        s = self.settings
        if s.control == "depth":
            from diffusers import FluxControlInpaintPipeline

            return load_pipeline(FluxControlInpaintPipeline, s.depth_model, s.allow_download, self.stage, self.dtype), None
        from diffusers import FluxFillPipeline

        return load_pipeline(FluxFillPipeline, s.model, s.allow_download, self.stage, self.dtype), None

    def _load_redux(self) -> Any:
        from diffusers import FluxPriorReduxPipeline

        from pvtt.models.pipelines import load_pipeline

        s = self.settings
        try:
            return load_pipeline(FluxPriorReduxPipeline, s.redux_model, s.allow_download, self.stage, self.dtype)
        except ModelNotAvailable as exc:  # the loader's advice names `<stage>.model`; here it is redux_model
            message = str(exc).replace(f"{self.stage}.model", f"{self.stage}.redux_model")
            raise ModelNotAvailable(f"{self.stage}.reference: {s.reference} needs the FLUX.1 Redux pipeline; "
                                    f"{message}") from None

    def _place_redux(self, redux: Any, pipe: Any) -> Any:
        """The Redux prior on the device, given the Fill pipeline's text encoders (shared, not copied) so that the
        prompt still counts: Redux then returns T5(prompt) followed by B's image tokens, and CLIP(prompt) pooled."""
        if getattr(redux, "text_encoder", None) is None and getattr(pipe, "text_encoder", None) is not None:
            redux.register_modules(text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer,
                                   text_encoder_2=pipe.text_encoder_2, tokenizer_2=pipe.tokenizer_2)
        for name in ("image_encoder", "image_embedder"):  # the text encoders stay where the Fill pipeline put them
            module = getattr(redux, name)
            if getattr(module, "dtype", self.dtype) != self.dtype:  # cast only what differs (as place_pipeline)
                module.to(dtype=self.dtype)
            module.to(device=self.device)
        return redux

    def prompt_of(self, instruction: str = "", description: str | None = None) -> str:
        """The prompt FLUX gets: ``in_context_prompt`` with the two-panel canvas, else ``prompt``; ``{product}`` is
        ``description``, else B's name read from a template ``instruction``, else "product"."""
        s = self.settings
        name = " ".join((description or "").split()).rstrip(".") or product_of(instruction)
        template = s.in_context_prompt if self.in_context else s.prompt
        return template.format(product=name, instruction=instruction or "")

    def insert(self, frame: np.ndarray, background: np.ndarray, mask_a: np.ndarray, box_a: Box,
               product: np.ndarray, *, instruction: str = "", depth: np.ndarray | None = None,
               description: str | None = None) -> Any:
        """The edited first frame: B composited in A's place, then the region refined by FLUX with B's photo in view.

        Same call as :meth:`pvtt.insert.Inserter.insert`; ``product`` (B's RGBA photo) is also what FLUX
        sees, ``description`` names B in the prompt (else read from ``instruction``), ``depth`` (H, W) is
        the depth map for ``control: depth`` (estimated from the composite when absent).
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
        # 3. FLUX refines the region, B's photo in view
        prompt = self.prompt_of(instruction, description)
        refined = self.refine(placed.frame, region, prompt, depth, product=product)
        # 4. the source outside the region
        s = self.settings
        placed.frame = compose.blend(refined, frame, compose.feather(region, s.feather))
        placed.info = {**(placed.info or {}), "backend": self.name, "prompt": prompt, "control": s.control,
                       "reference": s.reference, "canvas": list(self.last_canvas),
                       "strength": s.in_context_strength if self.in_context else s.strength,
                       "region_pixels": int(region.sum())}
        self.last_region = region
        return placed

    def refine(self, image: np.ndarray, region: np.ndarray, prompt: str, depth: np.ndarray | None = None,
               product: np.ndarray | None = None) -> np.ndarray:
        """One FLUX call on ``image`` (H, W, 3) uint8 repainting ``region`` (H, W) bool; same size out.

        ``product`` (B's RGBA photo) is required when ``reference`` is not ``none``.
        """
        import torch
        from PIL import Image

        self._require_setup()
        s = self.settings
        height, width = image.shape[:2]
        if s.reference != "none" and product is None:
            raise ValueError(f"{self.stage}.reference is {s.reference!r}: refine needs B's photo (product=...)")
        product = None if product is None else np.asarray(getattr(product, "rgba", product))
        # 1. the canvas: the frame alone, or B's panel beside it
        layout = ref_alpha = None
        if self.in_context:
            rows, cols = content_box(product)
            aspect = (cols.stop - cols.start) / (rows.stop - rows.start)
            layout = diptych_layout(height, width, aspect, s.max_area, s.max_side)
            canvas, mask, ref_alpha = diptych_canvas(layout, product, image, region, s.reference_background)
            strength, (th, tw) = s.in_context_strength, (layout.height, layout.target_width)
        else:
            th, tw = compose.model_size(height, width, s.max_area, 16)
            canvas = compose.resize_frames(image[None], th, tw)[0]
            mask = compose.resize_frames(region[None].astype(np.uint8) * 255, th, tw, nearest=True)[0]
            strength = s.strength
        self.last_canvas = canvas.shape[:2]
        # 2. the text (and B's image tokens with Redux)
        kwargs: dict[str, Any] = dict(image=Image.fromarray(canvas), mask_image=Image.fromarray(mask),
                                      height=canvas.shape[0], width=canvas.shape[1], strength=strength,
                                      num_inference_steps=s.steps, guidance_scale=s.guidance_scale,
                                      max_sequence_length=s.max_sequence_length,
                                      generator=torch.Generator("cpu").manual_seed(s.seed), output_type="np")
        kwargs.update(self.redux_embeds(product, prompt) if self.uses_redux else {"prompt": prompt})
        # 3. depth control: the target's depth; B's panel shows B at the slot's depth over a far background
        if s.control == "depth":
            control = self._depth_image(image, depth, th, tw)
            if layout is not None:
                level = float(control[..., 0][mask[:, layout.ref_width:] > 0].mean()) if mask.any() else 128.0
                left = np.repeat((ref_alpha * level + 0.5).astype(np.uint8)[..., None], 3, -1)
                control = np.concatenate([left, control], axis=1)
            kwargs["control_image"] = Image.fromarray(control)
        # 4. generate, then the frame back at its size
        with torch.inference_mode():
            out = self.model(**kwargs).images[0]
        out = np.clip(np.asarray(out) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if layout is not None:
            return crop_target(layout, out, height, width)
        return compose.resize_frames(out[None], height, width)[0]

    def redux_embeds(self, product: np.ndarray, prompt: str) -> dict[str, Any]:
        """``prompt_embeds`` / ``pooled_prompt_embeds`` of the Redux prior for B's photo (letterboxed on a square,
        as SigLIP squashes its input to one) and ``prompt`` (when the prior holds text encoders)."""
        import torch
        from PIL import Image

        self._require_setup()
        photo = reference_panel(product, REDUX_SIDE, REDUX_SIDE, self.settings.reference_background)[0]
        text = {"prompt": prompt} if getattr(self.redux, "text_encoder", None) is not None else {}
        with torch.inference_mode():
            out = self.redux(image=Image.fromarray(photo), **text)
        return {"prompt_embeds": out.prompt_embeds, "pooled_prompt_embeds": out.pooled_prompt_embeds}

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
