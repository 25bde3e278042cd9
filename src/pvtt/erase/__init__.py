"""erase: remove product A from a clip → a clean background video (video inpainting).

Interface: :class:`Eraser` — ``erase(clip, masks) -> EraseResult``.

Backends (chosen by ``erase.backend``):

- ``classical``: A's masks dilated to cover contact shadows; each frame's hole filled from other
  frames where the background is visible, aligned by the background's motion (RANSAC homographies
  from features outside the masks); what is never visible is inpainted once in a reference frame
  (shift-map texture by default, see ``erase.inpaint``; from a narrow and a wide crop, see
  ``erase.inpaint_wide_context``) and warped to the other frames (no flicker);
  feathered blend. CPU, no weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import Field

from pvtt.registry import Backend, Registry
from pvtt.settings import Settings
from pvtt.types import Clip, Masks

BACKENDS = Registry("erase", {
    "classical": "pvtt.erase.classical:ClassicalEraser",
})


class EraseSettings(Settings, backends=BACKENDS):
    backend: str = "classical"
    """Erase backend. One of: classical."""
    dilate: float = Field(0.04, ge=0, le=0.5)
    """Dilation of A's mask (covers edges and motion blur), as a fraction of its size: its box diagonal, or twice the
    square root of its area when that is less (a thin product lying across the frame is dilated by its thickness's
    scale, not its length's)."""
    fill_holes: float = Field(0.25, ge=0)
    """Holes in A's mask smaller than this fraction of its area are filled too (a mug handle's opening, a gap the
    segmentation left inside the product): kept, the background seen through an opening did not match the fill around
    it, and a piece in the opening's shape showed beside B (`pvtt demo`'s mug). A bracelet's loop (about the mask's
    own area) stays background. 0 = off."""
    shadow: float = Field(0.06, ge=0, le=0.5)
    """Extra extension of the region below A (contact shadows), as a fraction of its box height."""
    feather: float = Field(0.015, ge=0)
    """Width of the blend between fill and frame, as a fraction of the frame's short side."""
    work_short_side: int = Field(360, ge=64)
    """Short side (pixels) at which background motion is estimated and never-visible parts are inpainted."""
    max_sources: int = Field(14, ge=1)
    """Other frames consulted per frame (at offsets ±1, ±2, ±4, ...)."""
    patience: int = Field(4, ge=1)
    """Stop consulting other frames for a frame after this many in a row filled < 1% of what is left (the rest is
    never visible)."""
    inpaint: Literal["shiftmap", "membrane", "telea", "fsr-fast", "fsr-best"] = "shiftmap"
    """Fill of what no frame shows (once per clip, at the work resolution): 'shiftmap' (cv2.xphoto shift-map: pieces
    of the surrounding texture, rearranged; keeps fabric, wood, paper textured, may repeat a piece of a nearby
    object), 'membrane' (smooth interpolation from the region's border: a flat smear on textured backgrounds),
    'telea' (cv2.inpaint: a streaky smear), 'fsr-fast' / 'fsr-best' (cv2.xphoto frequency selective reconstruction:
    blocky blur; 'fsr-best' takes tens of seconds). The cv2.xphoto fills need opencv-contrib; without it 'membrane'
    is used, with a warning."""
    seam_correction: bool = True
    """Add each frame's own colour difference, measured around the region, to the warped reference fill (follows
    lighting changes; no seam)."""
    inpaint_radius: int = Field(5, ge=1)
    """cv2.inpaint radius (work resolution pixels)."""
    inpaint_context: float = Field(0.25, ge=0)
    """cv2.xphoto fills work in a crop around what no frame shows: its box grown by this fraction of its size on each
    side (texture is borrowed from there; the cost grows with the crop)."""
    inpaint_wide_context: float = Field(1.0, ge=0)
    """The cv2.xphoto fills also fill from a crop grown by this fraction (when above ``inpaint_context``) and keep the
    fill whose texture, row by row, is nearer the frame's beside the hole (:func:`pvtt.compose.row_texture_mismatch`;
    the erase of a dev clip took up to 1.4x as long, `benchmarks/erase_off_on.py`; a crop the frame's edges
    already bound to the wide one's size is filled once; 0 = off). In `pvtt demo` the narrow crop's shift-map pulled the wall's colour down into the
    textured table where every clip's product stood; on the real frames of `benchmarks/bench_fill.py` the choice
    keeps the narrow crop's quality (PSNR 13.97 dB against 13.96; the wide crop alone 12.00)."""
    inpaint_rare_ratio: float = Field(0.05, ge=0, lt=1)
    """Shift-map does not copy from pixels whose colour is rarer in a ring around what no frame shows than this
    times its share of the crop (a colour counts with those beside it): another object — a petal on satin, a hand,
    a box beside the product — is then not repeated beside B, while a busy texture, as common around the hole as
    elsewhere, stays a source (:func:`pvtt.erase.classical.rare_colours`; left alone when that would take half of
    the crop). 0 = from anywhere."""
    inpaint_boundary_gain: float = Field(1.0, ge=0)
    """Where a straight boundary between two backgrounds crosses what no frame shows — a wall meeting the table A
    stands on — the cv2.xphoto fills fill each side of it from that side only, so the line continues through the
    fill: shift-map had pulled the wall's colour a few rows down into the table beside B (`pvtt demo`). The
    boundary is looked for in a band on each side of the hole; its row must split the band's colours with at least
    this log-likelihood gain per pixel (a flat wall over a busy table: about 4; one texture: well under 1), and the
    two sides must agree and the line run on beyond the bands (:func:`pvtt.erase.classical.straight_boundary`). A side
    that is a busy texture (a patterned table) gives no flat object on it to its fill (a tray beside the product:
    :func:`pvtt.erase.classical.flat_objects`). 0 = off."""
    inpaint_detail: bool = True
    """Shift-map copies pixels: bring its work-resolution fill up to the frame's resolution by copying each pixel from
    where its work-resolution pixel came from, at full resolution (the frame's grain and fine texture), instead of
    upsampling it (a soft patch in the shape of the hole; :func:`pvtt.erase.classical.fill_unseen_full`)."""
    color_match: bool = True
    """Match each borrowed fill's mean colour to the frame around the hole (lighting changes over the clip)."""


@dataclass
class EraseResult:
    frames: np.ndarray  # (T, H, W, 3) uint8 clean background
    region: np.ndarray  # (T, H, W) bool, the dilated region that was filled
    info: dict = field(default_factory=dict)


class Eraser(Backend):
    """Interface of erase backends: cheap to construct, picklable."""

    stage = "erase"

    settings_class = EraseSettings

    def erase(self, clip: Clip, masks: Masks) -> EraseResult:
        raise NotImplementedError


def make_eraser(settings: EraseSettings | None = None, **overrides: Any) -> Eraser:
    return BACKENDS.make(settings or EraseSettings(), **overrides)


__all__ = ["BACKENDS", "EraseResult", "EraseSettings", "Eraser", "make_eraser"]
