"""Segment: per-frame product masks from the first-frame box.

Backends (chosen by ``segment.backend``):

- ``classical`` (CPU, no weights): GrabCut on frame 0 seeded by the box, carried through the clip by
  dense optical flow (DIS) and re-refined by GrabCut every few frames, with temporal majority smoothing;
  a colour-likelihood graph cut with a weak boundary term adds back the thin parts GrabCut cuts away.
- ``sam2``: the SAM2 video predictor (GPU).

A backend returns :class:`~pvtt.types.Masks` (``data`` (T,H,W) bool, ``confidence`` (T,) in [0, 1]) and
raises :class:`~pvtt.errors.RejectItem` when the box is outside the frame or the first mask is empty.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from pvtt.errors import RejectItem
from pvtt.models import ModelSettings
from pvtt.registry import Backend, Entry, Registry
from pvtt.settings import Settings
from pvtt.types import Box, Clip, Masks

BACKENDS = Registry("segment", {"classical": "pvtt.segment.classical:ClassicalSegmenter",
                                "sam2": Entry("pvtt.segment.sam2:Sam2Segmenter", "sam2")})


class Sam2Settings(ModelSettings):
    model: str = "facebook/sam2.1-hiera-large"
    """SAM2 / SAM2.1 weights: a local directory or a cached hub id."""
    batch_size: int = Field(16, ge=1)
    """Frames per image-encoder batch (16 against 8: 0.754 s against 0.814 s per compiled 78-frame segment call on an
    H200, ~1 GiB more peak memory)."""
    mask_threshold: float = 0.0
    """Logit above which a pixel is in the mask."""
    compile: bool = False
    """torch.compile the image encoder and the per-frame memory path (memory attention, memory encoder, mask decoder);
    the first clips of a worker pay the compile."""
    compile_mode: Literal["default", "reduce-overhead", "max-autotune-no-cudagraphs"] = "default"
    """torch.compile mode of the memory path (memory attention, memory encoder, mask decoder) when compile is on;
    the image encoder always takes 'default'. 'reduce-overhead' replays the per-frame path from CUDA graphs (the
    loop is launch-bound): 78.7 frames/s per segment call against 68.6 for 'default' and 46.0 eager on an H200,
    one worker; its first clip pays ~3 min of compile and graph recording."""
    memory_attention_kernel: Literal["sdpa", "flash"] = "flash"
    """Attention kernel of the memory attention (one 256-channel head: 4096 queries against ~29k memory keys per frame):
    'flash' calls PyTorch's flash attention op by name, so a compiled graph keeps it (SDPA picks cuDNN's, slower
    here: 1.11x for the compiled segment call on an H200); 'sdpa' leaves the choice to PyTorch. Where flash cannot
    run (float32 on a GPU, a mask) SDPA runs."""
    encoder_math_attention_tokens: int = Field(16, ge=0)
    """Image encoder (Hiera): window attention over at most this many keys is computed with two matmuls and a softmax
    instead of SDPA, whose kernels tile 64-128 queries and waste most of their work on Hiera's 4x4 windows (16
    tokens; 1.02x for the compiled segment call on an H200); 0: SDPA everywhere."""
    cache_position_encodings: bool = True
    """Image encoder: compute the neck's sine position encodings once, for one frame, and broadcast them over each
    chunk instead of computing and writing them for every frame of every chunk (the same values; ~16 ms less GPU time
    per 78-frame clip on an H200)."""
    encoder_gelu: Literal["exact", "fused-tanh"] = "fused-tanh"
    """Image encoder (Hiera) MLPs: 'exact' is the model's GELU (erf) after the input projection; 'fused-tanh' computes
    the projection and GELU's tanh approximation in one cuBLASLt matmul with a GELU epilogue, saving a pass over the
    4x-wide hidden activations (~45 ms less GPU time per 78-frame clip on an H200; the approximation differs from the
    exact GELU by at most ~5e-4, under bf16's rounding of the activations). On the CPU PyTorch's fused op applies the
    exact GELU."""


class SegmentSettings(Settings, backends=BACKENDS):
    backend_sections = {"sam2": ("sam2",)}
    backend: str = "classical"
    """'classical' (GrabCut + optical flow, CPU) or 'sam2' (GPU)."""
    work_long_side: int = Field(480, ge=64)
    """Classical: long side (px) of the working resolution; masks are upsampled to the clip's size."""
    first_long_side: int = Field(960, ge=64)
    """Classical: long side (px) at which frame 0 is segmented (thin products need the detail)."""
    first_max_pixels: int = Field(300_000, ge=1024)
    """Classical: most pixels of frame 0's box and its margin that GrabCut works on; a large product is segmented at a
    lower scale (its detail is larger too), never below work_long_side."""
    prior_distance: float = Field(12.0, ge=0)
    """Classical: box pixels within this Lab distance of the margin's main colours start as probable background on
    frame 0 (0: plain GrabCut box init)."""
    cut_smoothness: float = Field(8.0, ge=0)
    """Classical: boundary weight (nats per pixel of boundary) of the colour-likelihood graph cuts that add back the
    thin and low-contrast parts GrabCut cuts away (its own weight is 50): over the box on frame 0, over the warped
    mask in re-refinements (0: GrabCut alone)."""
    grow_below: float = Field(0.5, ge=0, le=1)
    """Classical: a box whose confidence is below this (saliency, a weak detection) is a rough hint: where the frame-0
    mask runs into one of its sides, that side moves out by a quarter of the box and the mask is followed into the
    new ring by a colour-likelihood cut, keeping what connects into the box (0: never)."""
    grow_steps: int = Field(2, ge=0)
    """Classical: most times a rough box grows."""
    grow_smoothness: float = Field(4.0, ge=0)
    """Classical: boundary weight of the cut that follows the mask past a rough box's sides (lower than
    cut_smoothness: the product is known to go on there, often as a thin chain or strap)."""
    flow_preset: Literal["ultrafast", "fast", "medium"] = "fast"
    """Classical: DIS optical-flow preset (medium is ~4x slower)."""
    grabcut_iterations: int = Field(5, ge=1)
    """Classical: GrabCut iterations on frame 0."""
    refine_every: int = Field(4, ge=0)
    """Classical: re-refine the flow-warped mask with GrabCut every N frames (0: never)."""
    refine_iterations: int = Field(2, ge=1)
    """Classical: GrabCut iterations of a re-refinement."""
    refine_below: float = Field(0.8, ge=0, le=1)
    """Classical: also re-refine when the previous frame's confidence falls below this."""
    min_refine_agreement: float = Field(0.6, ge=0, le=1)
    """Classical: a re-refined mask whose IoU with the warped mask is below this is discarded (GrabCut drifted)."""
    band: float = Field(0.08, ge=0, le=1)
    """Classical: width of the uncertain band around the warped mask, as a fraction of its box's diagonal."""
    flow_prior: float = Field(4.0, ge=0)
    """Classical: when a re-refinement adds back thin parts, the warped mask counts this many nats (log-likelihood
    ratio) for the product inside it and against it outside, so that only parts the flow carried come back."""
    smooth: bool = True
    """Classical: majority vote over the flow-aligned masks of frames t-1, t, t+1."""
    min_first_area: float = Field(0.0005, ge=0, le=1)
    """Smallest first-frame mask accepted, as a fraction of the frame."""
    sam2: Sam2Settings = Field(default_factory=Sam2Settings)
    """Settings of the 'sam2' backend."""


class Segmenter(Backend):
    """Base of segment backends."""

    def segment(self, clip: Clip, box: Box) -> Masks:
        raise NotImplementedError


def check_box(clip: Clip, box: Box) -> Box:
    """``box`` clipped to the frame; :class:`RejectItem` when less than a pixel of it is inside."""
    inside = box.clip_to(clip.width, clip.height)
    if inside.width < 1 or inside.height < 1:
        raise RejectItem(f"box {tuple(round(v, 1) for v in box.as_tuple())} is outside the "
                         f"{clip.width}x{clip.height} frame")
    return inside


def make_segmenter(settings: SegmentSettings | None = None, **overrides: Any) -> Segmenter:
    """The segment backend named by ``settings.backend``."""
    return BACKENDS.make(settings or SegmentSettings(), **overrides)


__all__ = ["BACKENDS", "Sam2Settings", "SegmentSettings", "Segmenter", "check_box", "make_segmenter"]
