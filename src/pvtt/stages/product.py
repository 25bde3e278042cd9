"""Per-product stages: the catalog photo and a product's target image, cached per product and shared by its pairs.

- ``product``: the catalog photo decoded (any format) and stored as an RGBA PNG in the workspace.
- ``cutout``: the catalog photo cut out to a clean RGBA.
- ``video_cutout``: for a product whose photo was rejected (a lifestyle shot, a busy background), the product
  as its own template shows it: the mask of the best frame of the template's curated clips (sharp, large,
  confident, whole inside the frame, no hand on it) refined into an alpha, plus a few other frames' crops as
  extra reference views. With ``video_cutout.rejected_clips``, when no frame of the curated clips qualifies, the
  clips curate rejected as templates to edit (too static, blurry, a mask that fails on some frames) are looked in
  too: a product needs one clean frame, an edit a whole clip.

:func:`pvtt.artifacts.target` is the one place that says which of the two is a product's target image: the
photo's cutout when it is done (confident), else the video cutout when that is done.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import cv2
import numpy as np
from scipy.ndimage import binary_fill_holes

from pvtt import artifacts
from pvtt.compose import _centroid, box_diagonal, dilate, main_pieces, piece_lift
from pvtt.config import MediaSettings, settings_key
from pvtt.cutout import support_ratio
from pvtt.errors import BadInput, RejectItem
from pvtt.items import ClipItem, ProductItem, collect_clips, curated_clips
from pvtt.media.image import load_image_rgba, write_png
from pvtt.registry import Backend
from pvtt.stage import Stage
from pvtt.store import Workspace, atomic_path, file_fingerprint
from pvtt.types import Product, Status

# a hand detector: a callable (H, W, 3) uint8 RGB frame -> (H, W) bool, True on hand pixels, or an object with that
# as its ``hand_mask`` method (a pvtt.hands detector)
HandMask = Callable[[np.ndarray], np.ndarray]


def _hand_pixels(hook: Any, rgb: np.ndarray) -> np.ndarray | None:
    if hook is None:
        return None
    return hook.hand_mask(rgb) if hasattr(hook, "hand_mask") else hook(rgb)


class ProductStage(Stage[Product]):
    """The catalog photo, decoded and stored as an RGBA PNG (``products/<id>/<key>/image.png``)."""

    name = "product"
    version = "1"

    def __init__(self, workspace: Workspace, media: MediaSettings, retry_failed: bool = True):
        super().__init__(workspace, retry_failed)
        self.media = media

    def key(self, product: Product) -> str:
        return settings_key("product", self.version, file_fingerprint(product.image), self.media.max_image_pixels)

    def run(self, product: Product, key: str) -> tuple[dict, dict]:
        rgba = load_image_rgba(product.image, max_pixels=self.media.max_image_pixels)
        final = self.workspace.artifact_dir("products", product.id, key) / "image.png"
        with atomic_path(final) as tmp:
            write_png(tmp, rgba)
        alpha = rgba[..., 3]
        outputs = {"image_path": self.workspace.rel(final), "width": int(rgba.shape[1]), "height": int(rgba.shape[0])}
        return outputs, {"has_alpha": bool((alpha < 255).any())}


class CutoutStage(Stage[ProductItem]):
    """The catalog photo cut out; rejected when the cut is a guess (busy background) or carries foreign content
    (a hand, a shelf, fragments: :func:`pvtt.cutout.foreign_content`), so the build turns to the product's own
    template video."""

    name = "cutout"
    version = "12"  # 3: foreign content (hand, support surface, pieces) rejects the cutout; 4: backdrop peeled;
    # 5: soft edges decontaminated (pvtt.cutout.alpha.decontaminate); 6: the smooth, shaded rim (shadow, reflected light)
    # peeled; 7: only shaded rim pixels, before the specks are dropped; 8: the outline redrawn at 1,200 px; 9: a cut
    # whose lower outline runs through smooth shading (its contact shadow: CutoutSettings.max_smooth_base) is rejected;
    # 10: the support ratio measured with the cut's holes filled (a bracelet with its loop peeled); 11: an enclosed
    # region of the backdrop's very colour (a mug's handle) peeled at any size (CutoutSettings.peel_exact), and the
    # outline's mixed pixels made soft (pvtt.cutout.alpha.unmix_edge); 12: a cut whose outline has the same colour on
    # both sides is rejected (CutoutSettings.max_seamless), and the salient backend

    def __init__(self, workspace: Workspace, settings: Any, retry_failed: bool = True, hands: Any = None):
        from pvtt.cutout import make_cutter
        from pvtt.hands import HandSettings, make_hand_detector

        super().__init__(workspace, retry_failed)
        self.settings = settings
        self.hands_settings = hands or HandSettings()
        self._cutter = make_cutter(settings)
        self._hands = make_hand_detector(self.hands_settings) if settings.max_hand < 1 else None

    def backends(self):
        return (self._cutter,) + ((self._hands,) if self._hands is not None else ())

    def key(self, product: ProductItem) -> str:
        return settings_key(self.name, self.version, product.key, self.settings, self.hands_settings,
                            self._hands and self._hands.name)

    def run(self, product: ProductItem, key: str):
        from pvtt.cutout import cutout_problems

        result = self._cutter.cut_out(product.load(self.workspace))
        if result.low_confidence and self.settings.reject_low_confidence:
            raise RejectItem(f"low-confidence cutout ({result.confidence:.2f}): {result.notes or 'busy background'}",
                             metrics={"confidence": round(float(result.confidence), 4)})
        hand = None
        if self._hands is not None:  # the detector sees the cutout over grey, as it will be pasted
            a = result.rgba[..., 3:].astype(np.float32) / 255.0
            hand = self._hands.hand_mask((result.rgba[..., :3] * a + 128 * (1 - a)).astype(np.uint8))
        foreign, problems = cutout_problems(result, self.settings, hand)
        if problems:
            raise RejectItem("foreign content in B's cutout: " + "; ".join(problems),
                             metrics={"confidence": round(float(result.confidence), 4), **foreign})
        path = self.workspace.artifact_dir(self.name, product.id, key) / "cutout.png"
        with atomic_path(path) as tmp:
            write_png(tmp, result.rgba)
        outputs = {"cutout_path": self.workspace.rel(path), "width": int(result.rgba.shape[1]),
                   "height": int(result.rgba.shape[0])}
        metrics = {"confidence": round(float(result.confidence), 4), "low_confidence": bool(result.low_confidence),
                   **foreign}
        if self._hands is not None:
            metrics["hand_detector"] = self._hands.name
        if result.notes:
            metrics["notes"] = result.notes
        return outputs, metrics


# -- products from template videos ---------------------------------------------------------------------------


@dataclass
class FrameScore:
    """How well one frame of a template clip shows its product: why it does not qualify (``reason``), or the
    parts of its score. ``sharpness`` and ``area`` are raw here; :func:`choose_frames` makes them relative to
    the best candidate of the template."""

    clip_id: str
    frame_index: int
    time: float  # seconds into the template video, to spread the views in time
    reason: str = ""  # "" when the frame qualifies, else the kind of failure (see REASONS)
    parts: dict[str, float] = field(default_factory=dict)
    score: float = 0.0  # set by choose_frames

    @property
    def qualifies(self) -> bool:
        return not self.reason


# a failing frame's reason kind -> how the rejection message says it
REASONS = {
    "empty": "an empty mask",
    "small": "a mask too small",
    "spread": "a mask spread over the frame",
    "border": "the mask touching the frame border",
    "hand": "a hand over the product",
    "support": "a table or shelf in the mask (its base far wider than its body)",
    "floating": "a piece of the mask hanging above the rest (the product's middle not in the mask)",
    "unsteady": "a clip whose masks change shape from frame to frame (its segmentation is not reliable)",
    "partial": "a mask holding only part of the salient object under it",
    "off": "a mask off the salient object",
    "damaged": "decode damage (striped rows)",
    "blurry": "a blurred product",
    "lone": "a clean frame in a clip with too few clean frames (video_cutout.min_frames)",
}

# curate checks that find a clip's mask on the wrong object as a whole: no frame of such a clip shows the product,
# however well its mask looks on the frame (``video_cutout.rejected_clips``). CRAF001's mask on the clay disc beside
# the stamp the hands hold is whole, sharp, unoccluded and salient on its frames; only the grip check sees it.
WRONG_OBJECT = frozenset({"grip", "box_iou", "box_span", "box_fill"})


def score_frame(rgb: np.ndarray, mask: np.ndarray, settings: Any, confidence: float = 1.0,
                hand: np.ndarray | None = None, stability: float = 1.0,
                cover: tuple[float, float] | Callable[[], tuple[float, float]] | None = None
                ) -> tuple[dict[str, float], np.ndarray, str]:
    """``(score parts, the product mask to cut out, reason)`` of one frame; ``reason`` is "" when the frame
    qualifies, else a key of :data:`REASONS`.

    ``hand``: the frame's hand pixels (bool) when a hand detector ran: they are taken out of the mask, and
    hand pixels on the product or within a quarter of its size around it (a hand over it, holding it, wearing
    it) count against the frame, as a fraction of the mask (``hand`` part, ``max_hand_fraction``).
    ``stability``: how well the mask's area agrees with its neighbours' in time (1 = same), since a frame
    where the segmentation glitched stands out from the frames around it. ``cover``: ``(missed, off)`` of the mask
    against the salient object under it (:func:`pvtt.curate.metrics.object_cover`), when the object checks are on, or
    a callable giving it: called only for a frame that passes the hand, damage and sharpness checks, since it runs
    the salient-object network (0.3 s a frame; most frames of a handled clip fail on the hand). Decode damage
    (:func:`pvtt.curate.metrics.striped_rows`) is measured here.
    """
    from pvtt.curate.metrics import product_sharpness, striped_rows

    height, width = mask.shape
    short = min(height, width)
    total = int(mask.sum())
    parts: dict[str, float] = {"confidence": round(float(confidence), 4), "stability": round(float(stability), 4)}
    if total == 0:
        return parts, mask, "empty"
    hand_fraction = 0.0
    if hand is not None:
        hand = np.asarray(hand, bool)
        if hand.shape != mask.shape:
            raise ValueError(f"hand_mask returned a {hand.shape} mask for a {mask.shape} frame")
        r = max(1, round(0.25 * np.sqrt(total)))
        near = cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2)) > 0
        hand_fraction = float((hand & near).sum() / total)
        grown = cv2.dilate(hand.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # the hand's fringe too
        mask = mask & ~grown
    parts["hand"] = round(hand_fraction, 4)
    parts["striped"] = round(striped_rows(rgb), 4) if settings.max_striped_rows < 1 else 0.0
    kept, compactness = main_pieces(mask)
    parts["compactness"] = round(compactness, 4)
    area = float(kept.mean())
    parts["area"] = round(area, 5)
    if not kept.any():
        return parts, kept, "hand" if hand_fraction > 0 else "empty"
    ys, xs = np.nonzero(kept)
    margin = settings.border_margin * short
    gap = min(xs.min(), ys.min(), width - 1 - xs.max(), height - 1 - ys.max())
    parts["border_gap"] = round(float(gap / short), 4)
    hull = cv2.convexHull(np.column_stack([xs, ys]).astype(np.int32))
    parts["solidity"] = round(float(min(1.0, kept.sum() / max(1.0, cv2.contourArea(hull)))), 4)
    luma = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    parts["sharpness"] = round(float(cv2.Laplacian(luma, cv2.CV_64F)[kept].var()), 3)
    parts["product_sharpness"] = round(product_sharpness(luma, kept), 3)  # with its outline, as curate measures it
    parts["support"] = round(support_ratio(kept), 4)
    parts["piece_lift"] = round(piece_lift(kept), 4)
    if hand_fraction > settings.max_hand_fraction:
        return parts, kept, "hand"
    if parts["striped"] > settings.max_striped_rows:
        return parts, kept, "damaged"
    if parts["product_sharpness"] < settings.min_sharpness:
        return parts, kept, "blurry"
    if cover is not None:
        missed, off = cover() if callable(cover) else cover
        parts["object_missed"], parts["mask_off_object"] = round(missed, 4), round(off, 4)
    if parts.get("object_missed", 0.0) > settings.max_object_missed:
        return parts, kept, "partial"
    if parts.get("mask_off_object", 0.0) > settings.max_mask_off_object:
        return parts, kept, "off"
    if parts["piece_lift"] > settings.max_piece_lift:  # before support: pieces of an object make odd widths too
        return parts, kept, "floating"
    if parts["support"] > settings.max_support:
        return parts, kept, "support"
    if gap < margin or gap <= 0:
        return parts, kept, "border"
    if area < settings.min_area:
        return parts, kept, "small"
    if area > settings.max_area:
        return parts, kept, "spread"
    return parts, kept, ""


def hold_hands(candidates: list[FrameScore], max_hand: float, hold: int) -> None:
    """Reject (reason "hand") each qualifying candidate whose clip had a hand over the product (``hand`` part above
    ``max_hand``) in a sampled frame at most ``hold`` samples before or after it; its ``hand_held`` part says how
    much. Candidates are a clip's sampled frames in time order, clip after clip."""
    by_clip: dict[str, list[FrameScore]] = {}
    for c in candidates:
        by_clip.setdefault(c.clip_id, []).append(c)
    for frames in by_clip.values():
        hands = [c.parts.get("hand", 0.0) for c in frames]
        for i, c in enumerate(frames):
            near = max(hands[max(0, i - hold):i] + hands[i + 1:i + 1 + hold], default=0.0)
            if c.qualifies and hold > 0 and near > max_hand:
                c.parts["hand_held"] = near
                c.reason = "hand"


def require_company(candidates: list[FrameScore], min_frames: int) -> None:
    """Reject (reason "lone") the qualifying candidates of each clip that has fewer than ``min_frames`` of them: a mask
    right on one sampled frame among many wrong ones is more likely chance than a segmentation that holds the
    product."""
    clean = Counter(c.clip_id for c in candidates if c.qualifies)
    for c in candidates:
        if c.qualifies and clean[c.clip_id] < min_frames:
            c.reason = "lone"


def choose_frames(candidates: list[FrameScore], views: int, view_min_score: float
                  ) -> tuple[FrameScore | None, list[FrameScore]]:
    """The best qualifying frame and up to ``views`` others of the same clip, spread in time, each scoring at
    least ``view_min_score`` of the best. Views stay in the best frame's clip (one shot, one object followed
    by one mask): another shot of a template may show another variant of the product.

    Score = confidence × stability × compactness × (1 − hand) × √(sharpness / sharpest) × √(area / largest)
    × min(1, solidity / median solidity): sharp, large, confident and whole; a mask less solid than the
    product usually is has run into the background. Sets each qualifying candidate's ``score``.
    """
    good = [c for c in candidates if c.qualifies]
    if not good:
        return None, []
    sharpest = max(c.parts["sharpness"] for c in good) or 1.0
    largest = max(c.parts["area"] for c in good) or 1.0
    solidity = float(np.median([c.parts["solidity"] for c in good])) or 1.0
    for c in good:
        p = c.parts
        p["sharpness_rel"] = round(float(np.sqrt(p["sharpness"] / sharpest)), 4)
        p["area_rel"] = round(float(np.sqrt(p["area"] / largest)), 4)
        p["solidity_rel"] = round(min(1.0, p["solidity"] / solidity), 4)
        c.score = round(p["confidence"] * p["stability"] * p["compactness"] * max(0.0, 1.0 - p["hand"])
                        * p["sharpness_rel"] * p["area_rel"] * p["solidity_rel"], 5)
    ranked = sorted(good, key=lambda c: (-c.score, c.clip_id, c.frame_index))
    best = ranked[0]
    ranked = [c for c in ranked if c.clip_id == best.clip_id]
    times = [c.time for c in ranked]
    gap = (max(times) - min(times)) / (2 * (views + 1)) if views else 0.0
    chosen: list[FrameScore] = []
    for c in ranked[1:]:
        if len(chosen) >= views or c.score < view_min_score * best.score:
            break
        if all(abs(c.time - other.time) >= gap for other in [best, *chosen]):
            chosen.append(c)
    return best, sorted(chosen, key=lambda c: c.time)


def fill_missed_holes(rgb: np.ndarray, mask: np.ndarray, ratio: float) -> np.ndarray:
    """``mask`` with the holes filled whose median colour (8-bit Lab) is farther from the ring of ``rgb`` just outside
    the product than ``ratio`` × that ring's own spread (the median distance of its pixels to its median): parts of
    the product the mask missed (a dark latch on a wooden box), where a hole of the ring's colour is the backdrop seen
    through (a bracelet's loop). Off with ``ratio`` 0."""
    mask = np.asarray(mask, bool)
    if ratio <= 0 or not mask.any():
        return mask
    solid = binary_fill_holes(mask)
    count, labels = cv2.connectedComponents((solid & ~mask).astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask
    radius = max(3, int(0.03 * np.sqrt(mask.sum())))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
    ring = (cv2.dilate(solid.astype(np.uint8), disk) > 0) & ~solid
    if ring.sum() < 30:
        return mask
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab).astype(np.float32)
    around = lab[ring]
    spread = max(float(np.median(np.linalg.norm(around - np.median(around, axis=0), axis=1))), 1.0)
    out = mask.copy()
    for k in range(1, count):
        hole = labels == k
        far = float(np.median(np.linalg.norm(around - np.median(lab[hole], axis=0), axis=1)))
        if far > ratio * spread:
            out |= hole
    return out


def cut_out_frame(rgb: np.ndarray, mask: np.ndarray, refine_radius: float, margin: float,
                  peel: bool = False, hole_fill: float = 0.0,
                  redraw: tuple[int, float, int] | None = None) -> tuple[np.ndarray, float]:
    """A frame's product as an RGBA cutout: its mask as alpha, edge-refined by the guided filter on the frame
    (as the photo cutout does), trimmed to the product's box plus ``margin`` of its long side. With ``hole_fill``, the
    mask's holes unlike the frame around the product are filled first (:func:`fill_missed_holes`); with ``redraw``
    (long side, band, GrabCut iterations), its outline is then redrawn by GrabCut in a band around it, as the photo
    cutout's is (:func:`pvtt.cutout.classical.redraw_outline`); with ``peel``, the surface under the product is taken
    out of the mask (:func:`pvtt.cutout.peel.peel_support`). Returns the cutout and the share of the mask peeled.

    The redraw matters more here than for photos: a clip's mask follows the product over time, and on any one frame
    its outline wanders off the edges — on TOYS002's chosen frame it took in the shadow of the palm beside the box, on
    CRAF001's a square block of table beside the stamp's base."""
    from pvtt.cutout.alpha import refine_alpha, trim, with_alpha
    from pvtt.cutout.classical import redraw_outline
    from pvtt.cutout.peel import peel_support

    mask = fill_missed_holes(rgb, mask, hole_fill)
    if redraw is not None and redraw[0] > 0 and mask.any():
        drawn = redraw_outline(rgb, mask, *redraw)
        if drawn.shape != mask.shape:
            drawn = cv2.resize(drawn.astype(np.uint8), mask.shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
        mask = drawn
    peeled = peel_support(rgb, mask) if peel else np.zeros_like(mask)
    share = float(peeled.sum() / max(int(mask.sum()), 1))
    kept = mask & ~peeled
    return trim(with_alpha(rgb, refine_alpha(rgb, kept.astype(np.float32), refine_radius)), margin), share


@dataclass
class VideoProduct:
    """What :func:`video_product` found: the cutout and views (RGBA), the frames they come from, and every
    candidate with its score parts or reason."""

    cutout: np.ndarray
    views: list[np.ndarray]
    best: FrameScore
    view_frames: list[FrameScore]
    candidates: list[FrameScore]
    clips: list[str]
    peeled: float = 0.0  # share of the chosen frame's mask taken out as the surface under the product
    steadiness: dict[str, float] = field(default_factory=dict)  # clip id -> mask_steadiness
    trimmed: float = 0.0  # share of the chosen frame's mask taken out as off the salient object (object checks on)


def _sample_indices(num_frames: int, count: int) -> np.ndarray:
    return np.unique(np.linspace(0, num_frames - 1, min(num_frames, count)).round().astype(int))


def _stability(areas: np.ndarray, t: int) -> float:
    """How well frame ``t``'s mask area agrees with the median of its neighbours' (±2 frames): smaller / larger."""
    median, area = float(np.median(areas[max(0, t - 2):t + 3])), float(areas[t])
    return min(area, median) / max(area, median) if area > 0 and median > 0 else 0.0


def mask_steadiness(masks: np.ndarray) -> float:
    """How steadily a clip's masks keep their shape: the median, over consecutive frames that both hold a mask, of
    their IoU once the later mask is shifted so its centroid meets the earlier one's (so a product's motion does not
    count, only its mask changing shape). 1.0 when fewer than two frames hold a mask.

    A segmentation that takes in the wall on one frame and notches through the product on the next scores low
    whatever frame is chosen: on the development clips TOYS012-s00 and -s01 (classical masks that keep losing a
    cream unicorn against a pale wall) 0.86 and 0.82, every other curated clip 0.92 or more."""
    centres = [_centroid(m) for m in masks]
    ious = []
    for a, b, ca, cb in zip(masks[:-1], masks[1:], centres[:-1], centres[1:]):
        if ca is None or cb is None:
            continue
        dx, dy = int(round(ca[0] - cb[0])), int(round(ca[1] - cb[1]))
        moved = np.zeros_like(b)
        h, w = b.shape
        moved[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = b[max(-dy, 0):h + min(-dy, 0),
                                                                         max(-dx, 0):w + min(-dx, 0)]
        ious.append((a & moved).sum() / max(int((a | moved).sum()), 1))
    return float(np.median(ious)) if ious else 1.0


def _score_clips(ws: Workspace, clips: list[ClipItem], settings: Any, hand_mask: HandMask | None,
                 objects: Any) -> tuple[list[FrameScore], dict[str, float]]:
    """Every sampled frame of ``clips`` scored (:func:`score_frame`; one clip's frames in memory at a time), a hand
    found in the samples around a frame holding it too (:func:`hold_hands`), a clean frame alone in its clip not
    qualifying (:func:`require_company`), and each clip's mask steadiness."""
    from pvtt.curate.metrics import object_cover

    candidates: list[FrameScore] = []
    steadiness: dict[str, float] = {}
    for clip in clips:
        masks = artifacts.masks(ws, clip.id)
        steadiness[clip.id] = round(mask_steadiness(masks.data), 4)
        if steadiness[clip.id] < settings.min_mask_steadiness:  # no frame of it qualifies: spare the decode
            candidates += [FrameScore(clip.id, int(t), clip.start_time + t / clip.fps, "unsteady",
                                      {"steadiness": steadiness[clip.id]})
                           for t in _sample_indices(len(masks.data), settings.frames_per_clip)]
            continue
        video = clip.load(ws)
        if masks.data.shape != video.frames.shape[:3]:
            raise BadInput(f"masks of {clip.id} are {masks.data.shape[1:]} x {masks.data.shape[0]} frames, the clip "
                           f"{video.frames.shape[1:3]} x {video.num_frames}")
        areas = masks.areas
        for t in _sample_indices(video.num_frames, settings.frames_per_clip):
            rgb, mask = video.frames[t], masks.data[t]
            confidence = 1.0 if masks.confidence is None else float(masks.confidence[t])
            hand = _hand_pixels(hand_mask, rgb)
            cover = (partial(object_cover, rgb, mask, objects, objects.settings.threshold, objects.settings.reach,
                             hand) if objects is not None else None)
            parts, _, reason = score_frame(rgb, mask, settings, confidence, hand, _stability(areas, t), cover)
            candidates.append(FrameScore(clip.id, int(t), clip.start_time + t / clip.fps, reason, parts))
    if hand_mask is not None:
        hold_hands(candidates, settings.max_hand_fraction, settings.hand_hold)
    require_company(candidates, settings.min_frames)
    return candidates, steadiness


def video_product(ws: Workspace, template_id: str, settings: Any, cutout: Any,
                  hand_mask: HandMask | None = None, clips: list[ClipItem] | None = None, objects: Any = None,
                  rejected: list[ClipItem] | None = None) -> VideoProduct:
    """The product of ``template_id`` cut out from the template's curated clips (reads the workspace only).
    ``cutout``: the ``cutout`` section, whose ``refine_radius``, ``margin`` and outline redraw (``refine_size``,
    ``refine_band``, ``grabcut_iters``) shape the cut as for photos. ``objects``: the salient-object network of the
    frame object checks (:class:`pvtt.curate.objects.SalientObjects`), when they are on. ``rejected``: clips curate
    rejected as templates (``video_cutout.rejected_clips``), looked in only when no frame of ``clips`` qualifies.

    Raises :class:`RejectItem` when the template has no such clip, or when no sampled frame shows the product whole
    and unoccluded (the message counts why each frame failed).
    """
    clips = curated_clips(ws, template_id) if clips is None else clips
    rejected = rejected or []
    if not clips and not rejected:
        raise RejectItem(f"no curated clip of template {template_id}"
                         + (", and none curate rejected only as a template to edit" if settings.rejected_clips else "")
                         + ": the product has no video frames to cut out from")
    # 1. score sampled frames of the curated clips, then, when none qualifies, of the rejected ones
    candidates, steadiness = _score_clips(ws, clips, settings, hand_mask, objects)
    best, views = choose_frames(candidates, settings.views, settings.view_min_score)
    if best is None and rejected:
        more, more_steadiness = _score_clips(ws, rejected, settings, hand_mask, objects)
        candidates += more
        steadiness.update(more_steadiness)
        best, views = choose_frames(more, settings.views, settings.view_min_score)
    # 2. the best frame and the views
    if best is None:
        failures = Counter(c.reason for c in candidates)
        detail = ", ".join(f"{n} {REASONS[kind]}" for kind, n in failures.most_common())
        what = ("no steady mask" if set(failures) == {"unsteady"} else "product never unoccluded")
        where = f"the {len(clips)} curated clip(s)" + (f" and {len(rejected)} clip(s) curate rejected as templates"
                                                       if rejected else "")
        raise RejectItem(f"{what} in {where} of template {template_id}: "
                         f"of {len(candidates)} sampled frames, {detail}" + _unsteady_note(steadiness, settings),
                         metrics={"candidates": len(candidates), "failures": dict(failures),
                                  "steadiness": steadiness})
    # 3. cut them out (the clips holding them decoded again: cheaper in memory than keeping every candidate)
    by_clip = {c.id: c for c in [*clips, *rejected]}
    cut: dict[tuple[str, int], tuple[np.ndarray, float]] = {}
    trimmed = 0.0
    for clip_id in dict.fromkeys(f.clip_id for f in [best, *views]):
        video = by_clip[clip_id].load(ws)
        masks = artifacts.masks(ws, clip_id)
        for frame in [f for f in [best, *views] if f.clip_id == clip_id]:
            rgb, raw = video.frames[frame.frame_index], masks.data[frame.frame_index]
            hand = _hand_pixels(hand_mask, rgb)
            _, mask, _ = score_frame(rgb, raw, settings, hand=hand)
            if objects is not None:
                mask, share = _on_object(rgb, raw, mask, objects, hand)
                trimmed = share if frame is best else trimmed
            cut[(clip_id, frame.frame_index)] = cut_out_frame(
                rgb, mask, cutout.refine_radius, cutout.margin, settings.peel_support, settings.hole_fill,
                (cutout.refine_size, cutout.refine_band, cutout.grabcut_iters))
    image, peeled = cut[(best.clip_id, best.frame_index)]
    return VideoProduct(image, [cut[(v.clip_id, v.frame_index)][0] for v in views], best, views, candidates,
                        [c.id for c in [*clips, *rejected]], peeled, steadiness, trimmed)


def _on_object(rgb: np.ndarray, raw: np.ndarray, mask: np.ndarray, objects: Any,
               hand: np.ndarray | None) -> tuple[np.ndarray, float]:
    """``mask`` without its parts off the salient object ``raw`` (the frame's mask) lies on, beyond
    :data:`~pvtt.curate.metrics.OUTLINE_SLACK` — a sliver of the thumb under TOYS002's box that MediaPipe did not
    find, the shadow beside ART001's vases — and the share of ``mask`` taken out. The frame passed the object checks,
    so this is a trim at the rim, not a new mask."""
    from pvtt.curate.metrics import OUTLINE_SLACK, salient_object

    if not mask.any():
        return mask, 0.0
    g = objects.settings
    obj = salient_object(rgb, raw, objects, g.threshold, g.reach, hand)
    kept = mask & dilate(obj, max(2, int(OUTLINE_SLACK * box_diagonal(mask))))
    return kept, float(1.0 - kept.sum() / mask.sum())


def _unsteady_note(steadiness: dict[str, float], settings: Any) -> str:
    low = {c: v for c, v in steadiness.items() if v < settings.min_mask_steadiness}
    if not low:
        return ""
    return (" (median IoU of consecutive masks " + ", ".join(f"{c} {v:.2f}" for c, v in low.items())
            + f" < video_cutout.min_mask_steadiness {settings.min_mask_steadiness})")


def _hook_name(hook: Any) -> str | None:
    """What identifies a hand detector in the cache key: its qualified name, and its settings when it has them."""
    if hook is None:
        return None
    target = hook if hasattr(hook, "__qualname__") else type(hook)
    name = f"{target.__module__}.{target.__qualname__}"
    settings = getattr(hook, "settings", None)
    return f"{name}:{settings_key(settings)}" if settings is not None else name


class VideoCutoutStage(Stage[ProductItem]):
    """A product cut out from its own template's curated clips (see :func:`video_product`), and with
    ``video_cutout.rejected_clips`` from the clips curate rejected as templates when those give no frame.

    ``settings``: the ``video_cutout`` section; ``cutout``: the ``cutout`` section, whose ``refine_radius`` and
    ``margin`` shape the alpha as for photos. ``hand_mask``: an optional hand detector, picklable: a callable
    ``rgb -> bool mask`` or an object with such a ``hand_mask`` method (a :class:`~pvtt.registry.Backend`, such
    as a ``pvtt.hands`` detector, is set up once per worker like any backend); without one, hands are not
    looked for. ``salient``: the settings of the salient-object network the frame object checks read, when they are
    on (``curate.salient``: the network, threshold and reach curate's object checks use).
    """

    name = "video_cutout"
    version = "13"  # 2: a candidate frame whose mask carries a table or shelf (support) does not qualify;
    # 3: soft edges decontaminated; 4: nor one whose mask has a piece hanging above the rest (max_piece_lift);
    # 5: the surface under the product peeled out of the cut frames' masks (peel_support); 6: no frame of a clip whose
    # masks are unsteady (min_mask_steadiness); 7: the support ratio with the mask's holes filled; 8: the mask's holes
    # unlike the frame around the product filled before the cut (hole_fill); 9: the cut's outline redrawn by GrabCut
    # (cutout.refine_size); 10: a hand found in the sampled frame before or after counts (hand_hold); 11: a piece
    # floats only above another piece in its columns (pvtt.compose.piece_lift; two vases at different depths stand);
    # 12: the frame's object checks and decode damage, and the clips curate rejected as templates (rejected_clips);
    # 13: min_sharpness, min_frames, and with the object checks on the mask's parts off the salient object trimmed

    def __init__(self, workspace: Workspace, settings: Any, cutout: Any, retry_failed: bool = True,
                 hand_mask: HandMask | None = None, salient: Any = None):
        super().__init__(workspace, retry_failed)
        self.settings = settings
        self.cutout = cutout
        self.hand_mask = hand_mask
        self.objects = None
        if settings.object_checks():
            from pvtt.curate.objects import SalientObjects

            self.objects = SalientObjects(salient)

    def backends(self):
        return tuple(b for b in (self.hand_mask, self.objects) if isinstance(b, Backend))

    def _clips(self, product: ProductItem) -> list[ClipItem]:
        return curated_clips(self.workspace, product.template_id) if product.template_id else []

    def _rejected(self, product: ProductItem) -> list[ClipItem]:
        """The template's clips curate rejected as templates to edit, but not for masking the wrong object
        (:data:`WRONG_OBJECT`), whose masks are done; none without ``rejected_clips``."""
        if not (self.settings.rejected_clips and product.template_id):
            return []
        ws, out = self.workspace, []
        for clip in collect_clips(ws, [product.template_id]):
            found = ws.read_record("curate", clip.id)
            if (found is not None and found.status is Status.REJECTED
                    and artifacts.record(ws, "segment", clip.id, required=False) is not None
                    and "failed" in found.metrics and not WRONG_OBJECT & set(found.metrics["failed"])):
                out.append(clip)
        return out

    def key(self, product: ProductItem) -> str:
        ws = self.workspace
        clips = [(c.id, c.key, c.path, artifacts.record(ws, "segment", c.id).key, ws.read_record("curate", c.id).key)
                 for c in self._clips(product) + self._rejected(product)]
        c = self.cutout
        return settings_key(self.name, self.version, product.id, product.template_id, clips, self.settings,
                            c.refine_radius, c.margin, c.refine_size, c.refine_band, c.grabcut_iters,
                            _hook_name(self.hand_mask), self.objects and self.objects.settings)

    def run(self, product: ProductItem, key: str):
        if not product.template_id:
            raise RejectItem(f"product {product.id} has no template video to cut it out from")
        curated = self._clips(product)
        found = video_product(self.workspace, product.template_id, self.settings, self.cutout, self.hand_mask,
                              curated, self.objects, self._rejected(product))
        folder = self.workspace.artifact_dir(self.name, product.id, key)
        paths = []
        for n, rgba in enumerate([found.cutout, *found.views]):
            path = folder / ("cutout.png" if n == 0 else f"view_{n}.png")
            with atomic_path(path) as tmp:
                write_png(tmp, rgba)
            paths.append(self.workspace.rel(path))
        best = found.best
        outputs = {"cutout_path": paths[0], "view_paths": paths[1:], "clip_id": best.clip_id,
                   "frame_index": best.frame_index, "width": int(found.cutout.shape[1]),
                   "height": int(found.cutout.shape[0]),
                   "view_frames": [{"clip_id": v.clip_id, "frame_index": v.frame_index, "score": v.score}
                                   for v in found.view_frames]}
        metrics = {"score": best.score, **best.parts, "peeled": round(found.peeled, 4), "clips": len(found.clips),
                   "off_object_trimmed": round(found.trimmed, 4),
                   "from_rejected_clip": best.clip_id not in {c.id for c in curated},
                   "steadiness": found.steadiness,
                   "candidates": len(found.candidates),
                   "qualifying": sum(c.qualifies for c in found.candidates),
                   "failures": dict(Counter(c.reason for c in found.candidates if c.reason))}
        return outputs, metrics

