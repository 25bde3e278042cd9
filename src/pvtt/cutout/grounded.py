"""Grounded product cutout: a text-prompted detector finds the product, SAM2's image predictor segments it.

1. A photo whose alpha channel already separates the product is used as is (as the classical backend does).
2. The detector (OWLv2 / Grounding DINO: :class:`~pvtt.locate.detector.DetectorLocator`, settings
   ``cutout.grounded.detector``) looks for the product's cleaned title (:func:`~pvtt.locate.query.product_query`:
   "Personalized Wooden Watch for Men, Engraved Gift …" → "wooden watch"); its boxes above ``threshold``,
   best first, overlapping ones merged, at most ``max_instances``. None: :class:`~pvtt.errors.RejectItem`.
3. SAM2's image predictor (transformers ``Sam2Model``; the photo resized to its square input and normalized
   here, as :mod:`pvtt.segment.sam2` does, no ``Sam2Processor`` and so no torchvision) takes every box as a
   prompt at once; of its three masks per box the one with the best predicted IoU is kept.
4. The instance kept is the one with the best **detector score × SAM2 predicted IoU** among those whose mask is
   not empty inside its box: the detector says it is the product, SAM2 that the mask is a clean object; either
   alone would let a confident box with a ragged mask, or a crisp mask of the wrong thing, win. That product
   is the cutout's ``confidence``.
5. Its mask logits are upsampled to the photo, made soft (a sigmoid around ``mask_threshold``), confined to
   the box (plus ``box_slack``), refined at the edges with the guided filter shared with the classical backend
   (:func:`pvtt.cutout.alpha.refine_alpha`) and trimmed to the product's box plus ``margin``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pvtt.cutout import (CutoutResult, CutoutSettings, Cutter, GroundedCutoutSettings, photo_and_existing_cut,
                         seamless_outline, smooth_base)
from pvtt.cutout.alpha import refine_alpha, trim, with_alpha
from pvtt.errors import RejectItem
from pvtt.locate.detector import DetectorLocator
from pvtt.locate.query import product_query
from pvtt.models import ModelBackend
from pvtt.models.loading import load_pretrained
from pvtt.models.preprocess import frames_to_tensor, resize_normalize
from pvtt.types import Box, ProductImage, Resources


class GroundedDetector(DetectorLocator):
    """The locate detector, its weights named under ``cutout.grounded.detector`` in error messages."""

    stage = "cutout.grounded.detector"


class Sam2ImagePredictor(ModelBackend):
    """SAM2's image predictor: for box prompts on one photo, each box's best mask (low-resolution logits)."""

    name = "sam2-image"
    stage = "cutout.grounded"
    settings_class = GroundedCutoutSettings

    def load(self) -> tuple[Any, Any]:
        from transformers import Sam2Model

        s = self.settings
        return load_pretrained(Sam2Model, s.model, s.allow_download, self.stage, dtype=self.dtype), None

    def predict(self, rgb: np.ndarray, boxes: list[Box]) -> tuple[np.ndarray, np.ndarray]:
        """``(logits, iou)``: for each box (photo pixels), the mask with the best predicted IoU of SAM2's three,
        as ``(N, h, w)`` float32 logits over the whole photo at the decoder's resolution, and that IoU ``(N,)``."""
        import torch

        self._require_setup()
        height, width = rgb.shape[:2]
        size = self.model.config.prompt_encoder_config.image_size  # the square SAM2 resizes every image to
        pixels = resize_normalize(frames_to_tensor(rgb[None], self.device), (size, size), self.dtype, mode="bilinear")
        corners = torch.tensor([[[b.x0 * size / width, b.y0 * size / height, b.x1 * size / width,
                                  b.y1 * size / height] for b in boxes]], dtype=torch.float32, device=self.device)
        with torch.inference_mode():
            out = self.model(pixel_values=pixels, input_boxes=corners, multimask_output=True)
        iou = out.iou_scores[0].float()  # (N, 3)
        best = iou.argmax(dim=-1)
        index = torch.arange(len(boxes), device=best.device)
        logits = out.pred_masks[0].float()[index, best]  # (N, h, w)
        return logits.cpu().numpy(), iou[index, best].cpu().numpy()


@dataclass
class Instance:
    """The product as one detection found and SAM2 segmented it."""

    box: Box  # the detection, photo pixels (its ``confidence`` is the detector's score)
    iou: float  # SAM2's predicted IoU of its mask
    alpha: np.ndarray  # (H, W) float32 in [0, 1] over the whole photo, 0 outside the box (+ slack)

    @property
    def score(self) -> float:
        return instance_score(self.box.confidence, self.iou)


def instance_score(detector_score: float, iou: float) -> float:
    """How the instances are ranked, and the cutout's confidence: detector score × SAM2's predicted IoU (clipped
    to [0, 1])."""
    return float(detector_score * min(1.0, max(0.0, iou)))


def _region(box: Box, slack: float, width: int, height: int, sx: float = 1.0, sy: float = 1.0
            ) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` pixel bounds (x1, y1 exclusive) of ``box`` grown by ``slack`` of its long side, scaled
    by ``sx``, ``sy`` into a ``width`` x ``height`` grid."""
    pad = slack * max(box.width, box.height)
    return (max(0, math.floor((box.x0 - pad) * sx)), max(0, math.floor((box.y0 - pad) * sy)),
            min(width, math.ceil((box.x1 + pad) * sx)), min(height, math.ceil((box.y1 + pad) * sy)))


class GroundedCutter(Cutter):
    """Background removal by a text-prompted detector and SAM2's image predictor (see the module docstring).

    The cutout interface (:class:`~pvtt.cutout.Cutter`, the whole ``cutout`` section: margin, refine_radius,
    areas, low_confidence) composed of two model backends, each loading its weights the usual way in
    :meth:`setup`: the detector (``cutout.grounded.detector``) and the SAM2 image model (``cutout.grounded``).
    Picklable before and after setup: the model backends travel as their settings.
    """

    name = "grounded"

    def __init__(self, settings: CutoutSettings | dict[str, Any] | None = None, **overrides: Any):
        super().__init__(settings, **overrides)
        self.detector = GroundedDetector(self.settings.grounded.detector)
        self.segmenter = Sam2ImagePredictor(self.settings.grounded)

    @property
    def resources(self) -> Resources:
        """A GPU unless both models are pinned to the CPU."""
        return self.detector.resources | self.segmenter.resources

    def setup(self, *, detector: Any = None, tokenizer: Any = None, sam2: Any = None) -> None:
        """Load both models (or take ``detector`` + its ``tokenizer`` and ``sam2``, already built)."""
        self.detector.setup(model=detector, processor=tokenizer)
        self.segmenter.setup(model=sam2)

    def best_instance(self, rgb: np.ndarray, queries: list[str]) -> Instance:
        """The product in ``rgb`` (H, W, 3) uint8 as the best of the detections of ``queries``, segmented;
        :class:`RejectItem` when nothing is detected or every mask is empty."""
        g = self.settings.grounded
        height, width = rgb.shape[:2]
        # 1. detections, best first
        boxes = self.detector.detections(rgb, queries, limit=g.max_instances, min_size=1.0)
        if not boxes:
            raise RejectItem(f"no separable product: no detection for {queries} above {g.detector.threshold} "
                             f"({g.detector.family})")
        # 2. every box segmented; the best instance among the masks not empty inside their box
        logits, ious = self.segmenter.predict(rgb, boxes)
        lh, lw = logits.shape[1:]
        best: tuple[float, int] | None = None
        for i, box in enumerate(boxes):
            x0, y0, x1, y1 = _region(box, g.box_slack, lw, lh, lw / width, lh / height)
            if (logits[i, y0:y1, x0:x1] > g.mask_threshold).any():
                score = instance_score(box.confidence, float(ious[i]))
                if best is None or score > best[0]:
                    best = (score, i)
        if best is None:
            raise RejectItem(f"no separable product: SAM2 found nothing in the {len(boxes)} box(es) detected for "
                             f"{queries}")
        i = best[1]
        # 3. its alpha: soft mask at full resolution, inside the box, refined at the edges
        up = cv2.resize(logits[i], (width, height), interpolation=cv2.INTER_LINEAR)
        coverage = 1.0 / (1.0 + np.exp(-np.clip(up - g.mask_threshold, -30, 30)))
        inside = np.zeros((height, width), bool)
        x0, y0, x1, y1 = _region(boxes[i], g.box_slack, width, height)
        inside[y0:y1, x0:x1] = True
        alpha = refine_alpha(rgb, np.where(inside, coverage, 0.0), self.settings.refine_radius)
        return Instance(boxes[i], float(ious[i]), np.where(inside, alpha, 0.0).astype(np.float32))

    def cut_out(self, image: ProductImage) -> CutoutResult:
        s = self.settings
        # 1. check inputs; use an existing alpha
        rgba, existing = photo_and_existing_cut(image, s.margin)
        if existing is not None:
            return existing
        rgb = np.ascontiguousarray(rgba[..., :3])
        queries = product_query(getattr(image, "category", None), getattr(image, "subcategory", None),
                                getattr(image, "description", None))
        # 2. the product found and segmented
        found = self.best_instance(rgb, queries)
        area = float((found.alpha > 0.5).mean())
        if not s.min_area <= area <= s.max_area:
            raise RejectItem(f"no separable product: the mask of {queries} covers {area * 100:.1f}% of the image "
                             f"(accepted {s.min_area * 100:.1f}%–{s.max_area * 100:.0f}%)")
        # 3. the cutout
        confidence = found.score
        notes = (f"{self.settings.grounded.detector.family} found {queries} (score {found.box.confidence:.2f}), "
                 f"SAM2 mask IoU {found.iou:.2f}")
        return CutoutResult(trim(with_alpha(rgb, found.alpha), s.margin), confidence, confidence < s.low_confidence,
                            notes, {"smooth_base": round(smooth_base(rgb, found.alpha), 4),
                                    "seamless": round(seamless_outline(rgb, found.alpha), 4)})
