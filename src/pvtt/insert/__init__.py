"""insert: the first-frame edit — product B placed where A was.

Interface: :class:`Inserter` — ``insert(frame, background, mask_a, box_a, product) -> InsertResult``
where ``frame`` is the source frame 0, ``background`` the erased frame 0, ``mask_a`` A's frame-0
mask and ``product`` B's cutout RGBA. Raises :class:`~pvtt.errors.RejectItem` when B cannot fit
A's slot (with the numbers).

Backends (chosen by ``insert.backend``):

- ``composite``: B's box = A's visible area with B's aspect ratio, anchored bottom-centre or centre;
  luminance / colour harmonised to the surroundings, soft contact shadow, feathered edges. CPU.
- ``flux-fill``: the composite refined by FLUX.1-Fill (GPU, weights; settings under ``insert.flux_fill``),
  which sees B's photo as the left panel of a two-panel canvas and/or through FLUX.1-Redux
  (``insert.flux_fill.reference``).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from pvtt.models import ModelSettings
from pvtt.registry import Backend, Entry, Registry
from pvtt.settings import Settings
from pvtt.types import Box, InsertResult

BACKENDS = Registry("insert", {
    "composite": "pvtt.insert.composite:CompositeInserter",
    # FLUX refines B placed by the composite backend, with the insert section's own fields
    "flux-fill": Entry("pvtt.insert.flux_fill:FluxFillInserter", "flux_fill", context={"composite": ""}),
})


class FluxFillSettings(ModelSettings):
    model: str = "black-forest-labs/FLUX.1-Fill-dev"
    """FLUX.1 Fill pipeline (control: none): a local folder or a cached hub id."""
    control: Literal["none", "depth"] = "none"
    """Depth control: FLUX.1-Depth-dev inpainting conditioned on the pasted frame's depth."""
    depth_model: str = "black-forest-labs/FLUX.1-Depth-dev"
    """FLUX.1 Depth pipeline (control: depth): a local folder or a cached hub id."""
    depth_estimator: str = "depth-anything/Depth-Anything-V2-Large-hf"
    """Depth weights used when control is depth and no depth map is given."""
    reference: Literal["none", "in-context", "redux", "in-context+redux"] = "in-context"
    """How FLUX sees B's photo. in-context: a two-panel canvas, B's cut-out on a plain background left of the frame,
    only B's slot repainted, the frame cropped back (FLUX's attention copies B's details from the left panel; no
    extra weights, so the default). redux: FLUX.1-Redux turns the photo into extra prompt tokens (SigLIP; keeps B's
    look, not its exact details). in-context+redux: both. none: FLUX sees only the pasted B and the prompt."""
    redux_model: str = "black-forest-labs/FLUX.1-Redux-dev"
    """FLUX.1 Redux prior pipeline (reference: redux, in-context+redux): a local folder or a cached hub id; it shares
    the Fill pipeline's text encoders."""
    prompt: str = "A photo of the {product} in the scene, with the scene's lighting and natural shadows."
    """Prompt template (reference: none, redux); {product} is B's name (the pair's product description, else read from
    the instruction), {instruction} the pair's instruction (which speaks of a reference image FLUX does not see
    here)."""
    in_context_prompt: str = Field(
        "A two-panel image of the same {product}. Left: a product photo of the {product} on a plain background. "
        "Right: the same {product} in a real scene, with the scene's lighting and natural shadows.")
    """Prompt template of the two-panel canvas (reference: in-context, in-context+redux); same placeholders as prompt.
    """
    steps: int = Field(28, ge=1)
    """Denoising steps (of which about strength x steps run)."""
    strength: float = Field(0.6, gt=0, le=1)
    """Partial denoising of the pasted content (1 = from noise) when FLUX does not see the two-panel canvas."""
    in_context_strength: float = Field(0.7, gt=0, le=1)
    """Partial denoising of B's slot with the two-panel canvas. 1 generates the slot from noise, B known only from the
    left panel (diptych prompting), and may move or resize B; below 1 the pasted composite seeds it, keeping B's
    place, size and silhouette, which warp and B's masks assume. 0.7: more redrawing than strength's 0.6 since the
    left panel now carries B's details."""
    max_side: int = Field(1536, ge=32)
    """Longest side of the two-panel canvas (pixels, multiple of 16 after rounding); both panels shrink together above
    it."""
    reference_background: int = Field(255, ge=0, le=255)
    """Grey level behind B in the reference panel (255 = white, as product photos)."""
    guidance_scale: float = Field(30.0, ge=0)
    """FLUX guidance (Fill: 30; Depth: about 10)."""
    max_area: int = Field(1024 * 1024, ge=256)
    """Model resolution of the frame (the right panel of the two-panel canvas): about this many pixels, aspect kept."""
    max_sequence_length: int = Field(512, ge=1)
    """T5 prompt tokens."""
    mask_dilate: int = Field(16, ge=0)
    """Pixels the repaint region (A's mask and B's alpha) is grown by."""
    feather: int = Field(4, ge=0)
    """Pixels of soft blending at the region's edge."""
    seed: int = 0
    """Seed of the noise."""


class InsertSettings(Settings, backends=BACKENDS):
    backend_sections = {"flux_fill": ("flux-fill",)}
    backend: str = "composite"
    """Insert backend. One of: composite, flux-fill."""
    anchor: Literal["bottom-center", "center"] = "bottom-center"
    """Point of A's box that B keeps: bottom-center for standing products, center for held / hanging ones."""
    max_scale_change: float = Field(3.0, gt=1)
    """Largest ratio between B's and A's box width or height (either way) before the pair is rejected."""
    max_outside: float = Field(0.15, ge=0, le=1)
    """Largest fraction of B's box allowed outside the frame before the pair is rejected."""
    max_outside_clear: float = Field(0.0, ge=0, le=1)
    """Largest fraction of B's box (its opaque part) allowed outside the frame past an edge that A's box stays clear
    of: A was whole there, so B cut by that edge is a defect, not the template's framing (`pvtt demo`'s bottle in the
    gift box's slot lost the top of its neck to the frame's top: 0.05 of its box, 0.014 at 0.03 here); 2 px past it
    count as rounding. B's growth to cover A (cover_growth) stops at that edge."""
    cover_growth: float = Field(1.3, ge=1)
    """Largest linear growth of B beyond the area match to hide more of A's region where the silhouettes differ (less
    erase fill shows); 1 = B's area equals A's."""
    cover_target: float = Field(0.1, ge=0, le=1)
    """B stops growing once at most this fraction of A's first-frame mask shows around it."""
    harmonize: float = Field(0.35, ge=0, le=1)
    """Strength of the luminance mean/std match of B to the surroundings of A (0 = none, 1 = full)."""
    color_transfer: float = Field(0.15, ge=0, le=1)
    """Strength of the chroma (Lab a/b) shift of B towards the surroundings' colour cast."""
    shadow: float = Field(0.35, ge=0, le=1)
    """Opacity of the soft contact shadow under B — under each part of B that stands on the floor (two vases, a pair
    of shoes) — bottom-center anchor only; 0 = none."""
    feather: float = Field(1.0, ge=0)
    """Gaussian sigma (pixels, at B's placed size) softening B's alpha edge."""
    ring: float = Field(0.25, gt=0)
    """Width of the ring around A that defines the 'surroundings', as a fraction of A's box diagonal."""
    flux_fill: FluxFillSettings = Field(default_factory=FluxFillSettings)
    """Settings of the flux-fill backend (B is placed by this section's own fields first)."""


class Inserter(Backend):
    """Interface of insert backends: cheap to construct, picklable."""

    stage = "insert"

    settings_class = InsertSettings

    def insert(self, frame: np.ndarray, background: np.ndarray, mask_a: np.ndarray, box_a: Box,
               product: np.ndarray, *, instruction: str = "", description: str | None = None) -> InsertResult:
        """B on the first frame in A's place; ``instruction`` is the pair's prompt and ``description`` names B
        (for the backends that prompt a model)."""
        raise NotImplementedError


def make_inserter(settings: InsertSettings | None = None, **overrides: Any) -> Any:
    return BACKENDS.make(settings or InsertSettings(), **overrides)


__all__ = ["BACKENDS", "FluxFillSettings", "InsertResult", "InsertSettings", "Inserter", "make_inserter"]
