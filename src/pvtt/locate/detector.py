"""Text-prompted product box on the first frame: OWLv2 or Grounding DINO (transformers).

The queries are the template product's cleaned title and subcategory ("wooden watch", "watch"). The
frame is preprocessed here on the device (OWLv2: padded to a square with grey, resized to the
model's input; Grounding DINO: short side 800, long side at most 1333), the text goes through the
model's tokenizer, and the highest-scoring box over all queries is returned in frame pixels, or
``None`` when no box scores above ``threshold``. :meth:`DetectorLocator.detections` returns every
distinct box above ``threshold``, best first (boxes overlapping a better one are dropped).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pvtt.models import ModelBackend
from pvtt.models.loading import load_pretrained
from pvtt.models.preprocess import IMAGENET_MEAN, IMAGENET_STD, fit_multiple, frames_to_tensor, resize_normalize
from pvtt.errors import RejectItem
from pvtt.locate import DetectorSettings
from pvtt.locate.query import product_query
from pvtt.types import Box, Clip, ProductImage

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
DEFAULT_MODELS = {"owlv2": "google/owlv2-base-patch16-ensemble", "grounding-dino": "IDEA-Research/grounding-dino-tiny"}


def _corners(centred: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """``(N, 4)`` (cx, cy, w, h) boxes → (x0, y0, x1, y1) in float64, x scaled by ``sx`` and y by ``sy``."""
    cx, cy, w, h = centred.astype(np.float64).T
    return np.stack([(cx - w / 2) * sx, (cy - h / 2) * sy, (cx + w / 2) * sx, (cy + h / 2) * sy], axis=1)


class DetectorLocator(ModelBackend):
    """First-frame product box from a text-prompted open-vocabulary detector."""

    name = "detector"
    stage = "locate.detector"  # the config section named in missing-weight errors
    settings_class = DetectorSettings

    @property
    def model_id(self) -> str:
        return self.settings.model or DEFAULT_MODELS[self.settings.family]

    def load(self) -> tuple[Any, Any]:
        from transformers import AutoModelForZeroShotObjectDetection, AutoTokenizer

        s = self.settings
        model = load_pretrained(AutoModelForZeroShotObjectDetection, self.model_id, s.allow_download, self.stage,
                                dtype=self.dtype)
        return model, load_pretrained(AutoTokenizer, self.model_id, s.allow_download, self.stage)

    def locate(self, clip: Clip, product: ProductImage | None = None, hint: Box | None = None) -> Box:
        """The catalog ``hint`` when given, else the detector's best box for ``product``'s cleaned title and
        subcategory (:func:`~pvtt.locate.query.product_query`); :class:`RejectItem` when nothing scores above
        ``threshold``."""
        if isinstance(product, str) or isinstance(hint, str):  # the older (clip, subcategory, description) form
            frame = clip.frames[min(self.settings.frame_index, clip.num_frames - 1)]
            return self.detect(frame, product_query(None, product, hint))  # type: ignore[arg-type]
        if hint is not None:
            from pvtt.locate import hint_box

            return hint_box(clip, hint)
        frame = clip.frames[min(self.settings.frame_index, clip.num_frames - 1)]
        queries = product_query(getattr(product, "category", None), getattr(product, "subcategory", None),
                                getattr(product, "description", None))
        box = self.detect(frame, queries)
        if box is None or box.width < 1 or box.height < 1:
            raise RejectItem(f"product not found: no detection for {queries} scores above "
                             f"{self.settings.threshold} ({self.settings.family})")
        return box

    def detect(self, frame: np.ndarray, queries: list[str]) -> Box | None:
        """The best box for any of ``queries`` in ``frame`` (RGB uint8), or ``None`` below ``threshold``."""
        found = self.detections(frame, queries, limit=1)
        return found[0] if found else None

    def detections(self, frame: np.ndarray, queries: list[str], limit: int | None = None,
                   overlap: float = 0.5, min_size: float = 0.0) -> list[Box]:
        """Boxes for any of ``queries`` in ``frame`` (RGB uint8) scoring at least ``threshold``, best first, at
        most ``limit``; a box overlapping a better one by more than ``overlap`` (IoU) is that object found again,
        and one whose part inside the frame is narrower or lower than ``min_size`` pixels is no object: both are
        left out."""
        import torch

        self._require_setup()
        if not queries:
            raise ValueError("at least one text query is needed")
        with torch.inference_mode():
            if self.settings.family == "owlv2":
                scores, boxes = self._owlv2(frame, queries)
            else:
                scores, boxes = self._grounding_dino(frame, queries)
        height, width = frame.shape[:2]
        found: list[Box] = []
        for i in np.argsort(-scores, kind="stable"):  # ties: the first, as argmax
            score = float(scores[i])  # a Python float: compared with the threshold in double precision
            if score < self.settings.threshold or (limit is not None and len(found) >= limit):
                break
            box = Box(*boxes[i].tolist(), confidence=score,
                      source=f"detector:{self.settings.family}").clip_to(width, height)
            if min(box.width, box.height) >= min_size and all(box.iou(other) <= overlap for other in found):
                found.append(box)
        return found

    def _owlv2(self, frame: np.ndarray, queries: list[str]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        height, width = frame.shape[:2]
        side = max(height, width)
        square = np.full((side, side, 3), 128, np.uint8)  # OWLv2 pads bottom/right with grey
        square[:height, :width] = frame
        size = self.model.config.vision_config.image_size
        pixels = resize_normalize(frames_to_tensor(square[None], self.device), (size, size), self.dtype,
                                  CLIP_MEAN, CLIP_STD, mode="bilinear")
        text = self.processor(queries, padding="max_length", max_length=16, truncation=True, return_tensors="pt")
        out = self.model(input_ids=text["input_ids"].to(self.device),
                         attention_mask=text["attention_mask"].to(self.device), pixel_values=pixels)
        scores = torch.sigmoid(out.logits[0].float()).amax(dim=-1)  # (patches,)
        return scores.cpu().numpy(), _corners((out.pred_boxes[0].float() * side).cpu().numpy(), 1.0, 1.0)

    def _grounding_dino(self, frame: np.ndarray, queries: list[str]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        height, width = frame.shape[:2]
        new_h, new_w = fit_multiple(height, width, 800, 1, keep="short")
        if max(new_h, new_w) > 1333:
            new_h, new_w = fit_multiple(height, width, 1333, 1, keep="long")
        pixels = resize_normalize(frames_to_tensor(frame[None], self.device), (new_h, new_w), self.dtype,
                                  IMAGENET_MEAN, IMAGENET_STD, mode="bilinear")
        prompt = " . ".join(q.lower().strip(". ") for q in queries) + " ."  # Grounding DINO's phrase format
        text = self.processor([prompt], return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in text.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        out = self.model(pixel_values=pixels, **inputs)
        logits = torch.sigmoid(out.logits[0].float())  # (queries, text positions)
        valid = inputs["attention_mask"][0].bool()
        scores = logits[:, : valid.numel()][:, valid].amax(dim=-1)
        return scores.cpu().numpy(), _corners(out.pred_boxes[0].float().cpu().numpy(), width, height)
