"""judge: quality metrics of an edited clip and a keep / reject verdict with reasons.

:func:`judge` (in :mod:`pvtt.judge.metrics`) measures background preservation, temporal
consistency, product identity (histograms, or DINOv2 with ``identity: dinov2``) and motion fidelity; each
failed threshold adds a reason naming the value and the threshold ("background: psnr 21.3 < 25.0").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, field_validator

from pvtt.settings import Settings


class JudgeSettings(Settings):
    stride: int = Field(4, ge=1)
    """Judge every stride-th frame (and its successor, for temporal metrics)."""
    work_short_side: int = Field(360, ge=64)
    """Short side (pixels) at which frames are compared."""
    region_dilate: float = Field(0.08, ge=0)
    """Dilation of the union of A's and B's regions excluded from the background metrics, fraction of the frame's
    short side."""
    min_background_psnr: float = 25.0
    """Keep only if the PSNR (dB) outside the edited region is at least this."""
    min_background_ssim: float = Field(0.80, ge=-1, le=1)
    """Keep only if the SSIM outside the edited region is at least this."""
    max_temporal_ratio: float = Field(2.0, gt=0)
    """Keep only if the flow-warping error of consecutive edited frames (in the edited region) is at most this
    multiple of the source's."""
    min_identity: float = Field(0.45, ge=0, le=1)
    """Keep only if B's appearance in the edited frames matches the product photo at least this much (mean of
    colour-histogram and gradient-histogram similarities, 0..1). Judged when identity is histogram or both."""
    identity: Literal["histogram", "dinov2", "both"] = "histogram"
    """Which product-identity score the verdict checks: 'histogram' (min_identity; CPU), 'dinov2'
    (min_identity_dinov2: DINOv2 cosine between B's cutout and B's region in the edited frames, with the `embed`
    settings; needs the weights, the product's vector is cached per product) or 'both'. The histogram scores are
    recorded in every case."""
    min_identity_dinov2: float = Field(0.5, ge=-1, le=1)
    """Keep only if the DINOv2 cosine between B's cutout (on grey, cropped to its alpha box) and the mean of B's
    region crops in the judged edited frames (grey outside B's mask) is at least this. Uncalibrated: chosen without
    real weights or labelled pairs; check the identity_dinov2 scores of a run before relying on it."""
    max_motion_error: float = Field(0.10, gt=0)
    """Keep only if points tracked inside B on the result stay within this fraction of B's box diagonal (median) of
    where the source tracks' motion puts them."""
    min_motion_points: int = Field(3, ge=1)
    """Points needed inside B to measure motion fidelity (fewer: not measured)."""
    # the defects a reviewer sees (pvtt.judge.defects); a threshold of 1 (or 0 for texture) switches a check off
    max_remnant: float = Field(0.15, ge=0, le=1)
    """Remnant of A: reject when more than this fraction of A's mask area survives outside B (75th percentile over the
    judged frames); 1 = off."""
    remnant_reach: float = Field(0.30, ge=0)
    """How far beside A's mask (fraction of A's box diagonal) a part of A the mask missed is looked for."""
    remnant_min_backdrop: float = Field(0.1, ge=0)
    """A part of A beside its mask is looked for only where the frame around the search zone (the backdrop GrabCut
    learns from) has at least this share of the zone's pixels. Thin products spanning the frame leave less: JEW002-s01's
    two cords left 2 % (`benchmarks/judge_probes.py backdrop-share`), and the cut took the whole satin backdrop for A
    (a remnant score of 7.5 on edits with no A left). SHOE003-s00 leaves 10-12 %, the other judged dev clips 36 % or
    more."""
    remnant_frames: int = Field(6, ge=1)
    """Frames (spread over the judged ones) on which A's extent beyond its mask is looked for (a GrabCut each)."""
    remnant_motion_step: int = Field(0, ge=0)
    """With a step above 0, a part of A beside its mask has to move with A: its optical flow to the frame this many
    frames later is compared with A's motion there (from A's tracked points) and the scene's
    (`pvtt.judge.defects.moves_with_a`); a piece that moves otherwise — the backdrop beside A, an occluder passing in
    front of it — is not A. Off (0) by default: with a step of 4 it clears the bench's two false remnant fires (an old
    fill beside A, an occluder passing in front) and the dev build's two (the bark beside ELEC003's box), but those
    two dev pairs are defective in ways no other check sees (the cartridge the hand pushes into A drawn over B,
    blocky pink fill where the holding hand was), and were then kept: 3 kept, 1 clean, against 1 kept, clean, without
    it (BENCHMARKS.md, "nineteenth build")."""
    remnant_motion_min: float = Field(2.0, ge=0)
    """A's motion and the scene's differ by less than this (pixels at `work_short_side`, over `remnant_motion_step`
    frames) where a piece lies: motion cannot tell, the piece counts as A when the colour cut takes it."""
    remnant_same: int = Field(12, ge=0, le=255)
    """Inside A's mask, an edited pixel within this of the source (max over RGB) was kept from the source."""
    remnant_differs: int = Field(30, ge=0, le=255)
    """A pixel whose erased background differs from the source by at least this (max over RGB) was filled by erase
    (also used by the smear check)."""
    min_fill_visible: float = Field(0.10, ge=0)
    """Erase smear: judged only when the fill B leaves visible is at least this fraction of A's area."""
    min_fill_texture: float = Field(0.45, ge=0)
    """Erase smear: reject when the visible fill has less than this fraction of the local contrast of the frame around
    it (median over frames); 0 = off."""
    max_fill_texture: float = Field(3.0, gt=0)
    """Erase smear, the other way: reject when the visible fill has more than this many times the texture around it (a
    fill that copied a glitch or fragments). On the development builds the fills that copied SHOE003's stripe
    glitch scored 5.8-9.4, every other pair at most 1.72."""
    max_fill_seams: float = Field(1.5, ge=0)
    """Erase smear, blocks: reject when the share of the visible fill's strong edges that run straight along the image
    axes is more than this many times that of the frame around it (median over the frames where the fill has enough
    strong edges to measure, when they are at least a third of the judged frames; the seams of a patch fill that
    failed; 0 = off). On the development builds the blocky or streaked fills scored 1.74-5.3, the others at
    most 1.08."""
    max_fill_flat: float = Field(0.03, ge=0, le=1)
    """Erase smear, a flat piece: reject when the largest connected piece of the visible fill whose local contrast is
    below `flat_fill_contrast` of the contrast around the fill covers more than this share of A's area (75th
    percentile over the judged frames; judged at any visible fill size; a piece counts only when its share of the
    visible fill is at least 1.5 times the share of flat pixels around the fill; 1 = off). In `pvtt demo` the pale
    strip of wall colour the erase pulled into DEMO003-s01's textured table scored 0.059 (its thinner strip beside
    the mug 0.001: not caught), the demo's clean pairs 0.015 or less; on the twenty-first dev build every pair 0 (the
    frame around their fills is as flat) (BENCHMARKS.md, "A flat piece of fill")."""
    flat_fill_contrast: float = Field(0.35, gt=0, le=1)
    """A pixel of the visible fill is flat when its local contrast is below this fraction of the median contrast
    around the fill."""
    min_product_area: float = Field(0.015, ge=0, le=1)
    """Product too small: reject when B covers less than this fraction of the frame (median over the judged frames; 0
    = off). On the development build the one pair below it (0.007) was B shrunk into the slot of a watch's hands;
    every other pair was 0.04 or more."""
    max_product_area: float = Field(0.6, ge=0, le=1)
    """Product too large: reject when B covers more than this fraction of the frame (median over the judged frames; 1
    = off), as `curate.max_mask_fraction` limits A's mask: B fills the slot of a mask that took in the backdrop. In
    `pvtt demo` two such pairs were kept before (A's mask a whole busy band, 0.42 of the frame; B 0.62 and 0.70 of it,
    the band erased); on the seventeenth dev build every pair was 0.38 or less, and in the demo every other pair 0.26
    or less."""
    max_floating: float = Field(0.06, ge=0, le=1)
    """Floating: reject when B's base sits more than this fraction of A's height above where A's base was (median over
    frames; only where A's base is in the frame); 1 = off."""
    floating_border: float = Field(0.02, ge=0, lt=1)
    """A base within this fraction of the frame height of the bottom edge runs out of the frame: its support is not
    seen and floating is not judged."""
    floating_min_base: float = Field(0.3, ge=0, le=1)
    """Floating is judged only where A has a base: its lowest tenth spans at least this fraction of A's width (a box
    or a vase most of it, a ball 0.6). The low end of something lying on a surface across the frame does not (the
    development build's diagonal cords: 0.21), and B need not reach down to it; 0 = every A has a base."""
    # the VLM judge (pvtt.judge.vlm), asked after the metrics; either judge rejects
    vlm: bool = False
    """Also ask the `vlm` model about each pair (scores on vlm.score_min..score_max and yes/no checks; question and
    answer kept in the synthesize record); a pair is rejected when either judge rejects. An answer that cannot be
    read leaves the pair to the metric judge (`vlm_error` in its record). The run stops at its start when the VLM
    weights are missing."""
    vlm_min_score: float = 5.0
    """VLM judge: reject when any criterion's score is below this (on the vlm.score_min..score_max scale)."""
    vlm_checks: list[str] = Field(
        default_factory=lambda: ["old_product_visible", "matches_reference", "floating",
                                                           "wrong_scale"])
    """VLM judge: the yes/no checks that reject when answered the wrong way (old_product_visible, matches_reference,
    floating, wrong_scale)."""

    @field_validator("vlm_checks")
    @classmethod
    def _known_checks(cls, value: list[str]) -> list[str]:
        from pvtt.vlm.parsing import CHECKS

        unknown = [c for c in value if c not in CHECKS]
        if unknown:
            raise ValueError(f"unknown check(s) {unknown}; known: {', '.join(CHECKS)}")
        return value


@dataclass
class JudgeResult:
    scores: dict[str, float]
    verdict: str  # "keep" | "reject"
    reasons: list[str] = field(default_factory=list)


from pvtt.judge.metrics import judge  # noqa: E402

__all__ = ["JudgeResult", "JudgeSettings", "judge"]
