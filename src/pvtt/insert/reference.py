"""B's photo shown to the first-frame edit: the in-context (diptych) canvas and the Redux image.

In-context ("diptych") inpainting: one canvas holds B's cut-out on a plain background in a left
panel beside the target frame in a right panel; only B's slot in the right panel is masked, so
FLUX Fill, whose attention spans the whole canvas, can copy B's look from the left while it
repaints the right (Shin et al., "Diptych Prompting", arXiv 2411.15466; in-context LoRA and ACE++
use the same two-panel layout). The right panel is cropped back to the frame afterwards.

Geometry (:func:`diptych_layout`): both panels share the canvas height; the right panel has the
frame's aspect ratio at about ``max_area`` pixels (the single-frame model size), the left panel is as
wide as B at that height (never wider than the right panel). Every side is a multiple of 16 (FLUX:
VAE factor 8 times the 2x2 latent packing), so the panel seam falls on a latent-token boundary and
the crop back is exact. When the canvas' long side exceeds ``max_side`` both panels shrink together.

Pure numpy / OpenCV; no model here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np

from pvtt import compose

MULTIPLE = 16  # FLUX: VAE downsampling 8 x 2x2 patch packing
MARGIN = 0.05  # of the left panel's height / width, left free around B


@dataclass(frozen=True)
class Diptych:
    """Canvas layout: ``height`` x (``ref_width`` + ``target_width``); the target panel is on the right."""

    height: int
    ref_width: int
    target_width: int

    @property
    def width(self) -> int:
        return self.ref_width + self.target_width

    @property
    def target(self) -> tuple[slice, slice]:
        """Row and column slices of the target (right) panel in the canvas."""
        return slice(0, self.height), slice(self.ref_width, self.width)


def _floor(value: float, multiple: int = MULTIPLE) -> int:
    return max(multiple, int(value // multiple) * multiple)


def content_box(product: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of ``product`` (RGBA) that hold B: its alpha's bounding box (all of it when empty)."""
    alpha = np.asarray(product)[..., 3] if product.ndim == 3 and product.shape[-1] == 4 else None
    if alpha is None or not (alpha > 0).any():
        return slice(0, product.shape[0]), slice(0, product.shape[1])
    ys, xs = np.nonzero(alpha > 0)
    return slice(int(ys.min()), int(ys.max()) + 1), slice(int(xs.min()), int(xs.max()) + 1)


def diptych_layout(frame_height: int, frame_width: int, product_aspect: float, max_area: int,
                   max_side: int) -> Diptych:
    """The canvas for a ``frame_height`` x ``frame_width`` frame beside B of width/height ``product_aspect``."""
    if frame_height < 1 or frame_width < 1 or product_aspect <= 0:
        raise ValueError(f"frame size and product_aspect must be positive, got {frame_height}x{frame_width}, "
                         f"{product_aspect}")
    if max_side < 2 * MULTIPLE:
        raise ValueError(f"max_side must be at least {2 * MULTIPLE}, got {max_side}")
    height, target_width = compose.model_size(frame_height, frame_width, max_area, MULTIPLE)

    def ref_width(h: int, tw: int) -> int:  # B at the panel's height (with its margins), at most the target's width
        return min(tw, _floor(h * product_aspect))

    long_side = max(height, target_width + min(target_width, height * product_aspect))
    if long_side > max_side:  # both panels shrink by one factor, sides rounded down: the cap holds
        scale = max_side / long_side
        height, target_width = _floor(height * scale), _floor(target_width * scale)
    return Diptych(height, ref_width(height, target_width), target_width)


def reference_panel(product: np.ndarray, height: int, width: int, background: int = 255
                    ) -> tuple[np.ndarray, np.ndarray]:
    """B's cut-out (RGBA, cropped to its alpha) fitted, centred, into ``height`` x ``width`` on a plain grey
    ``background``; returns ``(rgb uint8, alpha float32 in [0, 1])`` of the panel."""
    product = np.asarray(product)
    if product.ndim != 3 or product.shape[-1] not in (3, 4):
        raise ValueError(f"product must be (H, W, 4) RGBA or (H, W, 3) RGB, got {product.shape}")
    rows, cols = content_box(product)
    crop = product[rows, cols].astype(np.float32)
    alpha = crop[..., 3:4] / 255.0 if crop.shape[-1] == 4 else np.ones(crop.shape[:2] + (1,), np.float32)
    h, w = crop.shape[:2]
    scale = min(height * (1 - 2 * MARGIN) / h, width * (1 - 2 * MARGIN) / w)
    nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    mode = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    premultiplied = cv2.resize(np.concatenate([crop[..., :3] * alpha, alpha], -1), (nw, nh), interpolation=mode)
    rgb_p, a = premultiplied[..., :3], np.clip(premultiplied[..., 3:4], 0, 1)
    top, left = (height - nh) // 2, (width - nw) // 2
    panel = np.full((height, width, 3), float(background), np.float32)
    panel_alpha = np.zeros((height, width), np.float32)
    panel[top:top + nh, left:left + nw] = rgb_p + float(background) * (1 - a)
    panel_alpha[top:top + nh, left:left + nw] = a[..., 0]
    return np.clip(panel + 0.5, 0, 255).astype(np.uint8), panel_alpha


def diptych_canvas(layout: Diptych, product: np.ndarray, image: np.ndarray, region: np.ndarray,
                   background: int = 255) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(canvas, mask, reference_alpha)``: B's panel left of ``image`` (resized into the target panel);
    ``mask`` (uint8, 255 = repaint) is ``region`` in the target panel and 0 on the whole reference panel."""
    ref, ref_alpha = reference_panel(product, layout.height, layout.ref_width, background)
    target = compose.resize_frames(np.asarray(image)[None], layout.height, layout.target_width)[0]
    region_small = compose.resize_frames(np.asarray(region, np.uint8)[None] * 255, layout.height,
                                         layout.target_width, nearest=True)[0]
    canvas = np.concatenate([ref, target], axis=1)
    mask = np.concatenate([np.zeros((layout.height, layout.ref_width), np.uint8), region_small], axis=1)
    return canvas, mask, ref_alpha


def crop_target(layout: Diptych, canvas: np.ndarray, height: int, width: int) -> np.ndarray:
    """The target panel of a generated ``canvas``, resized back to the frame's ``height`` x ``width``."""
    rows, cols = layout.target
    return compose.resize_frames(np.asarray(canvas)[rows, cols][None], height, width)[0]


# --- what B is called, for the prompt ---------------------------------------------------------------
def _template_pattern(template: str) -> re.Pattern:
    parts, seen = re.split(r"(\{source\}|\{target\})", template), set()
    out = []
    for part in parts:
        if part in ("{source}", "{target}"):
            name = part[1:-1]
            out.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
            seen.add(name)
        else:
            out.append(re.escape(part))
    return re.compile("^" + "".join(out) + "$", re.IGNORECASE)


def product_of(instruction: str, fallback: str = "product") -> str:
    """B's name from a pair instruction written by :func:`pvtt.instruction.make_instruction` ("... the pearl
    necklace from the reference image ..." → "pearl necklace"); ``fallback`` when it matches no template."""
    from pvtt.instruction import TEMPLATES

    text = " ".join((instruction or "").split())
    for template in TEMPLATES:
        match = _template_pattern(template).match(text)
        if match:
            return match.group("target")
    return fallback


__all__ = ["Diptych", "content_box", "crop_target", "diptych_canvas", "diptych_layout", "product_of",
           "reference_panel"]
