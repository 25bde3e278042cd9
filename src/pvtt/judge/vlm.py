"""The VLM judge of a finished pair, combined with the metric judge (``judge.vlm``).

The source clip, the edited clip and B's cutout (on white) go to :meth:`pvtt.vlm.VisionLanguageModel.judge`
with B's description. Each criterion scored below ``judge.vlm_min_score`` and each of ``judge.vlm_checks``
answered the wrong way is a reason ("vlm: product_identity 3 < 5", "vlm: old_product_visible: yes"); the
pair is rejected when the metric judge or the VLM gives one. An answer that cannot be read is *not judged*:
the pair is left to the metric judge and the record says why (``vlm_error``) — a model's formatting slip
should not throw away a pair the metrics passed, and the review can still find these pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pvtt.types import Clip


@dataclass
class VlmJudgement:
    reasons: list[str] = field(default_factory=list)  # empty: the VLM does not reject
    scores: dict[str, float] = field(default_factory=dict)  # "vlm_<criterion>" → score, for the pair's scores
    metrics: dict[str, Any] = field(default_factory=dict)  # question, answer, checks, error: kept in the record


def on_white(rgba: np.ndarray) -> np.ndarray:
    """An RGBA cutout composited on white (RGB uint8); an RGB image as it is."""
    if rgba.ndim == 3 and rgba.shape[2] == 4:
        alpha = rgba[..., 3:4].astype(np.float32) / 255.0
        return (rgba[..., :3].astype(np.float32) * alpha + 255.0 * (1 - alpha)).round().astype(np.uint8)
    return np.ascontiguousarray(rgba[..., :3])


def judge_with_vlm(vlm: Any, source: Clip, edited: np.ndarray, product_rgba: np.ndarray | None, target: str,
                   settings: Any) -> VlmJudgement:
    """Ask ``vlm`` about one pair; ``settings`` is the ``judge`` section (vlm_min_score, vlm_checks)."""
    from pvtt.vlm import verdict_reasons

    edit = Clip(f"{source.id}-edit", edited, source.fps, source.template_id)
    image = on_white(product_rgba) if product_rgba is not None else None
    [verdict] = vlm.judge([source], [edit], [image], [target])
    out = VlmJudgement()
    out.metrics = {"vlm_question": verdict.prompt, "vlm_answer": verdict.raw,
                   "vlm_checks": {k: v for k, v in verdict.checks.items() if v is not None}}
    if verdict.reason:
        out.metrics["vlm_reason"] = verdict.reason
    if not verdict.ok:
        out.metrics["vlm_error"] = f"not judged by the VLM: {verdict.parse_error}"
        return out
    out.scores = {f"vlm_{k}": round(float(v), 3) for k, v in verdict.scores.items() if v is not None}
    if verdict.overall is not None:
        out.scores["vlm_overall"] = round(float(verdict.overall), 3)
    out.reasons = verdict_reasons(verdict, settings.vlm_min_score, settings.vlm_checks)
    return out


__all__ = ["VlmJudgement", "judge_with_vlm", "on_white"]
