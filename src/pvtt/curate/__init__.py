"""Curate: keep clips that move the right amount, are sharp and well exposed, and show the product.

:func:`curate` measures one clip (motion from a tracked grid, as Ditto-1M's mean cumulative
displacement; camera vs object motion; blur; exposure; decode damage; product visibility) and returns a
:class:`CurateResult` whose reasons each carry the measured value and the threshold. Blur and
exposure look at the product region too, so a product shot on black or before a plain backdrop is
not rejected for its backdrop.
:func:`clip_embedding` and :func:`find_near_duplicates` find near-duplicate clips across a run; with
``dedup: embedding`` the clip vectors are DINOv2's instead (:class:`pvtt.stages.embed.EmbedStage`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import Field

from pvtt.curate.metrics import (box_cover, clip_embedding, decode_damage, exposure, find_near_duplicates,
                                 evenly, grip_cover, mask_drift, mask_pieces, mask_presence, motion_scores,
                                 object_cover, sharpness)
from pvtt.settings import Settings
from pvtt.types import Box, Clip, Masks, Tracks


class SalientObjectSettings(Settings):
    """U²-Net-p for curate's object check (:mod:`pvtt.models.u2net`)."""

    model: str = "u2netp"
    """'u2netp' (rembg's ``u2netp.onnx`` in pvtt's weights folder, ``pvtt models download``) or the path of an .onnx
    file of the same network."""
    input_size: int = Field(320, ge=64)
    """The square side the crop around the mask is resized to for the network."""
    threshold: float = Field(0.5, gt=0, lt=1)
    """Saliency above which a pixel belongs to the salient object."""
    reach: float = Field(2.0, ge=0)
    """How far around the mask's hull (a fraction of its box diagonal) the object is looked for: the network sees
    the crop around that zone. A product must be seen whole to be salient: around JEWE003-s04's three coloured beads
    a zone of 0.3-1.0 shows U²-Net-p only those beads (0.02-0.04 of the object missed), at 2.0 it shows the black
    bracelet they are strung on (0.93)."""


class CurateSettings(Settings):
    grid_step: int = Field(32, ge=4)
    """Spacing (px) of the grid of points tracked for the motion score."""
    min_motion: float = Field(0.0005, ge=0)
    """Below this the clip is too static: mean per-frame displacement of grid points, as a fraction of the frame
    diagonal (0.0005 ≈ 0.7 px/frame at 1280x720)."""
    max_motion: float = Field(0.03, gt=0)
    """Above this the clip moves too fast: mean per-frame displacement of grid points, as a fraction of the frame
    diagonal (0.03 ≈ 44 px/frame at 1280x720)."""
    min_tracked_fraction: float = Field(0.05, ge=0, le=1)
    """Fraction of grid-point steps that must stay trackable; below it the clip is rejected as too fast or chaotic."""
    min_sharpness: float = Field(20.0, ge=0)
    """Below this the clip is blurry: median over sampled frames of the variance of the Laplacian of the luma (0-255
    scale) at the clip's resolution, over the whole frame and over the product region (its mask, dilated so its
    outline counts); the better of the two is judged, since a product in focus before a plain or defocused backdrop
    scores low over the whole frame and a sharp but smooth or dark product scores low on its own."""
    min_brightness: float = Field(30.0, ge=0, le=255)
    """Below this the clip is too dark: mean luma (0-255) of the product, inside its masks in the sampled frames (the
    whole frame when the product is absent from all of them). A bright product on a black backdrop passes."""
    max_brightness: float = Field(230.0, ge=0, le=255)
    """Above this the clip is overexposed: mean luma (0-255) of the product (as for min_brightness)."""
    max_clipped: float = Field(0.3, ge=0, le=1)
    """Largest fraction of the product's pixels at luma <= 5 or >= 250 (each side); black or white backdrops around it
    do not count."""
    max_striped_rows: float = Field(0.03, ge=0, le=1)
    """Decode damage: reject a clip with a frame whose rows are horizontal stripes over more than this share of its
    height (rows of unrelated colours alternating, :func:`pvtt.curate.metrics.striped_rows`); an edit copies them into
    its fill. On the development clips: SHOE003-s00's first frame 0.24 and three frames of SHOE003-s01 0.24, every
    other frame of every clip 0.010 or less. Every frame is looked at: about 1 s per 101-frame 720p clip on one
    CPU. 1 = off."""
    min_mask_fraction: float = Field(0.002, ge=0, le=1)
    """A frame whose product mask covers less than this fraction of the frame counts as 'product absent'."""
    max_mask_fraction: float = Field(0.6, ge=0, le=1)
    """Largest fraction of the frame the product mask may cover on any frame. A mask beyond it has most likely spread
    onto the backdrop or the hands (and a product that large leaves little scene to keep)."""
    max_absent_fraction: float = Field(0.3, ge=0, le=1)
    """Largest fraction of frames where the product may be absent or tiny."""
    max_mask_drift: float = Field(1.6, ge=1)
    """Reject a clip whose mask grows more than this many times what the product's tracked points explain (mask area
    over frame 0's, divided by the square of the points' spread): the mask runs into the backdrop or onto the
    hands, or the product changes shape (a box opening). On the development clips the drifting masks scored
    1.83-2.10 (TOYS004's kettle taking the wall, JEW002-s02's hands, TOYS002's box opening), every other curated
    clip at most 1.40. A large value switches it off."""
    min_drift_points: int = Field(4, ge=2)
    """Frame-0 points still visible needed to measure the drift on a frame."""
    min_box_iou: float = Field(0.75, ge=0, le=1)
    """For a box given by a reviewer or the catalog (`locate.boxes`, a manifest box): reject a clip whose first-frame
    mask's bounding box has an IoU below this with it: the segmentation missed part of the product (a watch's dial
    without its strap) or took something beside it. Boxes a locate backend guessed (saliency, a lifestyle photo's
    match, a detector) are not checked: they can be rough; a projected photo outline has `min_outline_span`. 0 =
    off."""
    min_outline_span: float = Field(0.65, ge=0, le=1)
    """For the outline of the template's own product photo projected into frame 0 (locate source `photo-outline`: a
    photo with alpha or on a plain backdrop, matched): reject a clip whose first-frame mask's box spans less than this
    share of the outline's width or of its height — the segmentation left out a large part of the product (one of two
    bracelets). Looser than a drawn box's IoU: the outline can take the photo's shadow and a homography from few
    matches is off by a margin (`pvtt demo`'s bottle and gift box: spans 0.77 and 0.76, IoU 0.64 and 0.67, masks
    right). On the `pvtt bench` cases whose mask held one of A's two bracelets 0.50-0.56, the other photo-located
    cases 0.97 or more. 0 = off."""
    min_box_fill: float = Field(0.1, ge=0, le=1)
    """For a given box (as `min_box_iou`): reject a clip whose first-frame mask covers less than this share of the
    box. A mask can span the box and still hold only a few pieces of the product: the coloured beads of a black-bead
    bracelet on black cloth (JEWE003: 4-7 % of the box), a watch's rim without its dial and strap (JEWE006-s01: 5 %);
    erase and insert then leave the rest of A in the clip. A product that is only a thin outline in its box (a wire
    ring) is rejected too. Bracelets of cord on the dev clips fill 16-20 %. 0 = off."""
    max_piece_lift: float = Field(0.15, ge=0, le=1)
    """Reject a clip whose mask is in pieces that hang above one another on most frames: the median, over
    sample_frames frames, of how far a piece floats above another piece below it in its columns (a fraction of the
    mask's height, :func:`pvtt.compose.piece_lift`) is above this. The segmentation keeps missing what joins two parts
    of the product, which erase and insert then leave in the clip: TOYS012-s01's rockers and manes held without the
    cream bodies before a white wall, 0.64 (every one of its pairs was rejected for the bodies left, dev builds 41-47).
    Every other curated dev clip scores 0, and so do `pvtt bench`'s two vases at different depths (the rear one's base
    higher in the frame: pieces side by side stand on their own); of the clips rejected for other reasons, a watch's
    rim above its strap 0.66 (JEWE006-s02). 1 = off."""
    max_object_missed: float = Field(1.0, ge=0, le=1)
    """Reject a clip whose mask holds only part of the object it lies on: the median, over hand_frames frames, of the
    share of the salient object under the mask that lies outside it (U²-Net-p's map around the mask, `salient`
    below, the hands the hand check finds taken out; :func:`pvtt.curate.metrics.object_cover`). Without a given box
    to check the mask against, a mask on one part of the product (a watch's dial without its case, three coloured
    beads of a bracelet, a bracelet without its chain) passes every other check, and erase and insert leave the rest
    of the product in every pair. 1 = off (the default: it reads the 4.6 MB weights `pvtt models download` fetches;
    the `salient` preset sets 0.2)."""
    max_mask_off_object: float = Field(1.0, ge=0, le=1)
    """Reject a clip whose mask lies partly off the salient object: the median, over hand_frames frames, of the share
    of the mask that U²-Net-p does not take for a salient object (hands count as not salient). A mask on the backdrop
    around the product (TOYS004's kettle with the tiled wall behind it, 0.68), on a sliver beside it (JEWE006-s01's
    strap edge while the watch lies beside, 0.86), on the fingers under a frame the hand detector does not see
    (HOME005-s00 without a reviewer box, 0.18: every pair kept over a flat skin-coloured fill); on the dev clips the
    masks that hold their product and nothing else score 0.01-0.11 (the thin cords of JEW002's bracelets 0.07-0.09):
    a thin margin. 1 = off (as `max_object_missed`; the `salient` preset sets 0.15)."""
    salient: SalientObjectSettings = Field(default_factory=SalientObjectSettings)
    """The salient-object network of the `max_object_missed` and `max_mask_off_object` checks."""
    max_hand_fraction: float = Field(0.2, ge=0, le=1)
    """Largest fraction of the product mask that may be hand (the `hands` detector, on hand_frames frames): such a
    mask follows the hands, not the product, and the erase takes the hands out with A. On the dev clips the other
    curated clips score 0-0.08; CLOT001-s07 (two hands rummaging in a box of socks, the mask over box and hands) 0.30,
    and every one of its pairs came out over a blocky fill where the hands were (dev build 37); the clips whose mask
    follows the hands 0.34-0.59. 1 = off."""
    min_grip_on_mask: float = Field(0.25, ge=0, le=1)
    """Reject a clip whose hands keep holding something the product mask does not: of the hands the `hands` detector
    finds gripping on hand_frames frames (thumb tip near the index or middle fingertip, :func:`pvtt.hands.grip_points`),
    the share whose grip lies on the mask (grown by 3 % of its box diagonal) is below this. A showcase's hands handle
    the product; hands that hold something the mask never holds mean the mask lies beside the product, or the hands
    work a second object the edit would leave in them. CRAF001-s00 located without a reviewer box: the mask on the clay
    disc and the stamp's brass head, the hand on the stamp's handle above them, 0 of 6 (its pairs were kept with the
    handle standing over B). Masks on held products: HOME002's tray 0.87, MEDI001's pick box 0.62-0.75, CLOT001's socks
    1.00; a fist under a worn bracelet (JEW002-s03) 0-0.33. Needs hand landmarks (`hands.backend` mediapipe). 0 =
    off."""
    min_grip_hands: int = Field(3, ge=1)
    """Fewer gripping hands than this over the hand_frames frames give `min_grip_on_mask` no verdict (a hand passing
    through; ELEC003's two frames of a finger pushing a cartridge in)."""
    hand_frames: int = Field(8, ge=1)
    """Frames sampled (evenly) for the hand, grip and object checks."""
    sample_frames: int = Field(8, ge=1)
    """Frames sampled (evenly) for blur and exposure."""
    dedup: Literal["thumbnail", "embedding"] = "thumbnail"
    """Clip vectors the near-duplicate check compares: 'thumbnail' (clip_embedding: Lab thumbnails + a hue histogram,
    written by curate, CPU) or 'embedding' (DINOv2 clip vectors from the `embed` settings, one cached `embed`
    record per clip; needs the weights, a GPU is advised), as Ditto-1M's dedup."""
    near_duplicate_threshold: float = Field(0.95, ge=-1, le=1)
    """With dedup 'thumbnail': cosine similarity of clip embeddings (see clip_embedding) at or above which a later
    clip is a near-duplicate of an earlier one."""
    embedding_threshold: float = Field(0.95, ge=-1, le=1)
    """With dedup 'embedding': DINOv2 cosine similarity (mean of embed.clip_frames frame vectors) at or above which a
    later clip is a near-duplicate of an earlier one. 0.95 keeps only what is the same footage in effect
    (re-encoded, rescaled, re-cropped by a few percent, slightly shifted in time), which DINOv2 maps to nearly the
    same vector, and keeps other takes of the same product on the same set, which it places lower; not calibrated
    on pvtt footage: look at the similarities in the dedup records before lowering it."""

    def hand_checks(self) -> bool:
        """Whether a check that reads the hand detector is on (``max_hand_fraction`` below 1 or
        ``min_grip_on_mask`` above 0)."""
        return self.max_hand_fraction < 1 or self.min_grip_on_mask > 0

    def object_checks(self) -> bool:
        """Whether a check that reads the salient-object network is on (``max_object_missed`` or
        ``max_mask_off_object`` below 1)."""
        return self.max_object_missed < 1 or self.max_mask_off_object < 1


@dataclass
class CurateResult:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)  # the failed checks' names, one per reason ("static", "grip", ...)


# boxes that hold the product's extent, not a guess at it: drawn by a person (checked by min_box_iou), or the outline
# of the template's own product photo projected by its matched homography (looser: checked by min_outline_span)
GIVEN_BOX_SOURCES = ("reviewer", "catalog", "photo-outline")


def curate(clip: Clip, masks: Masks, tracks: Tracks, settings: CurateSettings, hands=None,
           box: Box | None = None, objects: Callable[[np.ndarray], np.ndarray] | None = None) -> CurateResult:
    """Measure ``clip`` and check it against ``settings``; every failed check adds a reason. ``hands`` (a
    :class:`~pvtt.hands.HandDetector`) adds the hand check; ``box`` (A's located box) the box-cover check when a
    reviewer or the catalog gave it; ``objects`` (RGB -> salient-object map, :class:`pvtt.curate.objects.
    SalientObjects`) the object checks that are on (:meth:`CurateSettings.object_checks`)."""
    s = settings
    metrics: dict[str, float] = {}
    metrics.update(mask_drift(masks, tracks, s.min_drift_points))
    if box is not None and box.source in GIVEN_BOX_SOURCES:
        metrics.update(box_cover(masks, box))
    metrics.update(hand_and_object_share(clip, masks, hands if s.hand_checks() else None,
                                         objects if s.object_checks() else None, s))
    metrics.update(motion_scores(clip, masks, tracks, s.grid_step))
    metrics.update(sharpness(clip, masks, s.sample_frames, s.min_mask_fraction))
    metrics.update(exposure(clip, masks, s.sample_frames, s.min_mask_fraction))
    metrics.update(mask_presence(masks, s.min_mask_fraction))
    if s.max_piece_lift < 1:
        metrics.update(mask_pieces(masks, s.sample_frames))
    if s.max_striped_rows < 1:
        metrics.update(decode_damage(clip, s.max_striped_rows))
    reasons: list[str] = []
    failed: list[str] = []

    def fail(check: str, reason: str) -> None:
        failed.append(check)
        reasons.append(reason)

    unit = "(fraction of the diagonal per frame)"
    if metrics["motion"] < s.min_motion:
        fail("static", f"too static: motion {metrics['motion']:.5f} < {s.min_motion} {unit}")
    if metrics["motion"] > s.max_motion:
        fail("fast", f"too fast: motion {metrics['motion']:.4f} > {s.max_motion} {unit}")
    elif metrics["grid_tracked"] < s.min_tracked_fraction:
        fail("chaotic", f"too fast or chaotic: {metrics['grid_tracked']:.3f} of grid-point steps tracked "
                        f"< {s.min_tracked_fraction}")
    if metrics["sharpness"] < s.min_sharpness:
        fail("blurry", f"blurry: sharpness {metrics['sharpness']:.1f} < {s.min_sharpness} (variance of Laplacian; "
                       f"frame {metrics['frame_sharpness']:.1f}, product {metrics['product_sharpness']:.1f})")
    if metrics.get("striped_frames", 0.0) > 0:
        fail("damaged", f"damaged frames: {int(metrics['striped_frames'])} frame(s) striped over up to "
                        f"{metrics['striped_rows_max']:.2f} of their rows > {s.max_striped_rows}, the first at frame "
                        f"{int(metrics['striped_first'])} (decode damage; the edit would copy it into its fill)")
    region = "product" if metrics["exposure_on_product"] else "frame (no product mask)"
    if metrics["brightness"] < s.min_brightness:
        fail("dark", f"too dark: {region} mean luma {metrics['brightness']:.1f} < {s.min_brightness}")
    if metrics["brightness"] > s.max_brightness:
        fail("overexposed", f"overexposed: {region} mean luma {metrics['brightness']:.1f} > {s.max_brightness}")
    for side in ("dark", "bright"):
        if metrics[f"clipped_{side}"] > s.max_clipped:
            fail("clipped", f"clipped {side}: {metrics[f'clipped_{side}']:.3f} of {region} pixels > {s.max_clipped}")
    if metrics["absent_fraction"] > s.max_absent_fraction:
        fail("absent", f"product not visible: mask < {s.min_mask_fraction} of the frame in "
                       f"{metrics['absent_fraction']:.2f} of frames > {s.max_absent_fraction}")
    if metrics["mask_fraction_max"] > s.max_mask_fraction:
        fail("spread", f"mask spread over the frame: it covers up to {metrics['mask_fraction_max']:.2f} of the frame "
                       f"> {s.max_mask_fraction} (most likely backdrop or hands, not the product)")
    if metrics["mask_drift"] > s.max_mask_drift:
        fail("drift", f"mask drifts: it grows {metrics['mask_drift']:.2f}x more than the product's tracked points "
                      f"spread > {s.max_mask_drift} (the mask runs into the backdrop or onto the hands, or the "
                      f"product changes shape)")
    outline = box is not None and box.source == "photo-outline"
    if "box_iou" in metrics and not outline and metrics["box_iou"] < s.min_box_iou:
        fail("box_iou", f"mask misses part of the product: its box has IoU {metrics['box_iou']:.2f} with the "
                        f"{box.source} box < {s.min_box_iou} (part of the product is left out of the mask, or "
                        f"something beside it is in)")
    if "box_span" in metrics and outline and metrics["box_span"] < s.min_outline_span:
        fail("box_span", f"mask misses part of the product: its box spans {metrics['box_span']:.2f} of the "
                         f"photo-outline box's width or height < {s.min_outline_span} (part of the product is left out "
                         f"of the mask)")
    if "box_fill" in metrics and metrics["box_fill"] < s.min_box_fill:
        fail("box_fill", f"mask holds only part of the product: it covers {metrics['box_fill']:.2f} of the "
                         f"{box.source} box < {s.min_box_fill} (pieces of the product, the rest left in the clip)")
    if metrics.get("piece_lift", 0.0) > s.max_piece_lift:
        fail("floating", f"mask in floating pieces: on half its frames or more a piece of it hangs "
                         f"{metrics['piece_lift']:.2f} of its height above the rest > {s.max_piece_lift} (parts of the "
                         f"product without what joins them; the rest of the product is left in the clip)")
    if metrics.get("object_missed", 0.0) > s.max_object_missed:
        fail("object_missed", f"mask holds only part of the product: {metrics['object_missed']:.2f} of the "
                              f"salient object under it lies outside it > {s.max_object_missed} (the rest of the "
                              f"product would be left in the clip)")
    if metrics.get("mask_off_object", 0.0) > s.max_mask_off_object:
        fail("mask_off", f"mask off the product: {metrics['mask_off_object']:.2f} of the mask is not on a salient "
                         f"object > {s.max_mask_off_object} (the mask took the backdrop, a sliver beside the product "
                         f"or the hands)")
    if metrics.get("hand_fraction", 0.0) > s.max_hand_fraction:
        fail("hand", f"mask is mostly hand: {metrics['hand_fraction']:.2f} of the product mask is hand "
                     f"> {s.max_hand_fraction} (the mask follows the hands, not the product)")
    if metrics.get("grip_hands", 0.0) >= s.min_grip_hands and metrics["grip_on_mask"] < s.min_grip_on_mask:
        fail("grip", f"hands hold something else: {metrics['grip_on_mask']:.2f} of {int(metrics['grip_hands'])} "
                     f"gripping hands hold the product mask < {s.min_grip_on_mask} (the mask lies beside what the "
                     f"hands handle, or they handle a second object the edit would leave in them)")
    return CurateResult(not reasons, reasons, {k: float(v) for k, v in metrics.items()}, failed)


def hand_and_object_share(clip: Clip, masks: Masks, hands, objects, settings: CurateSettings) -> dict[str, float]:
    """The hand, grip and object checks' measures on ``hand_frames`` evenly sampled frames. With ``hands``: how much
    of the product mask the hand detector calls hand (``hand_fraction``), on how many frames it finds a hand
    (``hand_frames``), how many of the hands grip something (``grip_hands``) and which share of those hold the mask
    (``grip_on_mask``, 1 when none grips; :func:`pvtt.curate.metrics.grip_cover`). With ``objects``: how much of the
    salient object under the mask lies outside it, hands taken out, and how much of the mask is not on it
    (``object_missed``, the median over the frames that hold a mask, ``object_missed_max``, ``mask_off_object``;
    :func:`pvtt.curate.metrics.object_cover`). Empty without either."""
    from pvtt.hands import hand_fraction

    if hands is None and objects is None:
        return {}
    data = np.asarray(masks.data, bool)
    idx = evenly(len(clip.frames), settings.hand_frames)
    detected = [hands.detect(clip.frames[t]) for t in idx] if hands is not None else None
    found = [mask for mask, _ in detected] if detected is not None else None
    out: dict[str, float] = {}
    if detected is not None:
        grips = [grip_cover(landmarks, data[t]) for t, (_, landmarks) in zip(idx, detected)]
        gripping, held = sum(g for g, _ in grips), sum(h for _, h in grips)
        out.update({"hand_fraction": hand_fraction(data[idx], np.stack(found)),
                    "hand_frames": float(sum(f.any() for f in found)), "grip_hands": float(gripping),
                    "grip_on_mask": held / gripping if gripping else 1.0})
    if objects is not None:
        g = settings.salient
        cover = [object_cover(clip.frames[t], data[t], objects, g.threshold, g.reach,
                              found[i] if found is not None else None)
                 for i, t in enumerate(idx) if data[t].mean() >= settings.min_mask_fraction]
        if cover:
            missed, off = np.array(cover).T
            out.update({"object_missed": float(np.median(missed)), "object_missed_max": float(missed.max()),
                        "mask_off_object": float(np.median(off))})
    return out


__all__ = ["CurateResult", "CurateSettings", "SalientObjectSettings", "clip_embedding", "curate",
           "find_near_duplicates", "hand_and_object_share"]
