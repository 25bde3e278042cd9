"""Stages that ask the vision-language model (``vlm`` settings), each cached like every stage.

- :class:`CaptionStage` (``caption``, per clip): Ditto-1M's first step, a dense caption of the clip, written to
  ``caption.json``; keyed on the clip and what decides the answer (:meth:`VlmSettings.output_key`).
- :class:`InstructStage` (``instruct``, per pair): the second step, the edit instruction from the clip, its
  caption and B's description; keyed on the caption's record and B's description, so a pair's instruction is
  stable across re-runs (and with ``vlm.greedy: false`` is sampled once, not on every run).
- :class:`PointsStage` (``points``, per clip, ``track.points: vlm``): the VLM names ``track.vlm_parts`` parts
  of the product on a crop of frame 0 around its mask and points at them; points outside the mask are dropped.
  :func:`tracker_points` gives the track stage those points, or ``None`` and why it falls back to features.

Why instructions are a stage over pairs before synthesize, not part of :func:`pvtt.pairing.make_pair_items` or of
synthesize: the pairing runs in the driver, where no model should load; the VLM's answer has to be fixed before
synthesize because it enters synthesize's key and the inserter's prompt; and a separate stage keeps the VLM off the
GPU while the video models run, and lets a re-run read every instruction from its record without loading the VLM.
The caption and instruct stages share one backend object, so the weights load once for both (once per worker).
The runners call a stage per item, so each item is one ``generate`` call (``vlm.batch_size`` applies only
within a call).

Missing weights: :func:`check_vlm_weights` runs when a build (or analyze) starts and raises
:class:`~pvtt.models.ModelNotAvailable` naming the settings that need the VLM, before any work — never a
silent fall-back to templates, which would build another dataset than the config describes.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from pvtt import artifacts
from pvtt.compose import box_of_mask
from pvtt.config import settings_key
from pvtt.errors import MissingArtifact, RejectItem
from pvtt.items import ClipItem
from pvtt.stage import Stage
from pvtt.stages.clip import ClipStage
from pvtt.store import Workspace, write_json
from pvtt.types import Status

log = logging.getLogger("pvtt")


class _OneLoad:
    """Set up only the backends not set up yet, so stages sharing one VLM object load its weights once."""

    def setup(self) -> None:
        if not self._ready:  # type: ignore[attr-defined]
            for backend in self.backends():  # type: ignore[attr-defined]
                if not getattr(backend, "ready", False):
                    backend.setup()
            self._ready = True


class _Batched:
    """A stage whose VLM answers several items in one batched ``generate`` (``vlm.batch_size`` per call): the
    stage says how to read an item's inputs (``inputs``), ask the VLM for a list of them (``ask``) and store one
    answer (``finish``); an item whose inputs cannot be read, or whose answer is refused, fails alone, and an
    error of the call fails every item of it."""

    @property
    def batch_size(self) -> int:
        return self.settings.batch_size  # type: ignore[attr-defined]

    def run(self, item: Any, key: str):
        [result] = self.run_batch([(item, key)])
        if isinstance(result, Exception):
            raise result
        return result

    def run_batch(self, jobs: list) -> list:
        results: list = [None] * len(jobs)
        ready, where = [], []
        for index, (item, _) in enumerate(jobs):
            try:
                ready.append(self.inputs(item))  # type: ignore[attr-defined]
                where.append(index)
            except Exception as exc:  # noqa: BLE001 - the item's own record says why
                results[index] = exc
        try:
            answers = self.ask(ready) if ready else []  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - every item of the call fails with it
            answers = [exc] * len(ready)
        for index, answer in zip(where, answers):
            item, key = jobs[index]
            try:
                if isinstance(answer, Exception):
                    raise answer
                results[index] = self.finish(item, key, answer)  # type: ignore[attr-defined]
            except Exception as exc:  # noqa: BLE001
                results[index] = exc
        return results


def _describe(*names: str | None, fallback: str) -> str:
    return next((n.strip() for n in names if n and n.strip()), fallback)


def target_text(pair: Any) -> str:
    """B as the instruction and the judge name it: its description, else its (sub)category."""
    p = pair.product
    return _describe(p.description, p.subcategory, p.category, fallback="the new product")


class CaptionStage(_Batched, _OneLoad, ClipStage):
    """A dense caption of the clip (``caption.json``: ``caption``, ``question``)."""

    name = "caption"
    version = "1"

    def key(self, clip: ClipItem) -> str:
        return settings_key(self.name, self.version, clip.key, clip.path, self.settings.output_key("caption"))

    def inputs(self, clip: ClipItem) -> Any:
        return clip.load(self.workspace)

    def ask(self, videos: list) -> list[str]:
        return self.backend.caption(videos)

    def finish(self, clip: ClipItem, key: str, caption: str):
        from pvtt.vlm import CAPTION_PROMPT

        if not caption:
            raise RejectItem("the VLM gave an empty caption")
        path = self.out(clip, key, "caption.json")
        write_json(path, {"caption": caption, "question": CAPTION_PROMPT})
        return {"caption_path": self.workspace.rel(path)}, {"caption_chars": len(caption)}


class InstructStage(_Batched, _OneLoad, Stage):
    """The pair's edit instruction from its clip's caption and B's description, text only (``instruction.json``)."""

    name = "instruct"
    version = "2"

    def __init__(self, workspace: Workspace, settings: Any, retry_failed: bool = True, backend: Any = None):
        from pvtt.vlm import make_vlm

        super().__init__(workspace, retry_failed)
        self.settings = settings
        self.backend = backend if backend is not None else make_vlm(settings)

    def backends(self):
        return (self.backend,)

    def key(self, pair: Any) -> str:
        caption = artifacts.record(self.workspace, "caption", pair.clip.id)
        return settings_key(self.name, self.version, caption.key, target_text(pair),
                            self.settings.output_key("instruct"))

    def inputs(self, pair: Any) -> Any:
        return artifacts.caption(self.workspace, pair.clip.id), target_text(pair)

    def ask(self, inputs: list) -> list[str]:
        captions, targets = (list(column) for column in zip(*inputs))
        return self.backend.instruct(captions, targets)

    def finish(self, pair: Any, key: str, instruction: str):
        from pvtt.vlm import INSTRUCTION_PROMPT

        ws = self.workspace
        caption, target = artifacts.caption(ws, pair.clip.id), target_text(pair)
        if not instruction:
            raise RejectItem("the VLM gave an empty instruction")
        path = ws.artifact_dir(self.name, pair.id, key) / "instruction.json"
        write_json(path, {"instruction": instruction, "caption": caption, "target": target,
                          "question": INSTRUCTION_PROMPT.format(caption=caption, target=target)})
        outputs = {"instruction": instruction, "instruction_path": ws.rel(path)}
        return outputs, {"instruction_words": len(instruction.split())}


def vlm_instructions(ws: Workspace, config: Any, runner: Any, summary: Any, pairs: list) -> list:
    """``pairing.instruction: vlm``: caption the pairs' clips, then instruct each pair; the pairs with their VLM
    instruction and caption. A pair whose caption or instruction failed is left out (its record says why)."""
    retry = config.runner.retry_failed
    clips = list({p.clip.id: p.clip for p in pairs}.values())
    captions = CaptionStage(ws, config.vlm, retry)
    records = runner.run(captions, clips, "caption")
    summary.add(records)
    captioned = {r.item_id for r in records if r.status is Status.DONE}
    todo = [p for p in pairs if p.clip.id in captioned]
    records = runner.run(InstructStage(ws, config.vlm, retry, backend=captions.backend), todo, "instruct")
    summary.add(records)
    out = [dataclasses.replace(p, instruction=r.outputs["instruction"], caption=artifacts.caption(ws, p.clip.id))
           for p, r in zip(todo, records) if r.status is Status.DONE]
    if len(out) < len(pairs):
        log.warning("instruct: %d of %d pairs have no VLM instruction and are not synthesized (see the caption and "
                    "instruct records)", len(pairs) - len(out), len(pairs))
    return out


class PointsStage(_OneLoad, ClipStage):
    """``track.vlm_parts`` named points on the product on frame 0 (``points.json``), inside its mask."""

    name = "points"
    version = "1"
    after = ("segment",)
    margin = 0.25  # the crop shown to the VLM: the mask's box grown by this fraction of its size on each side

    def __init__(self, workspace: Workspace, settings: Any, vlm: Any = None, retry_failed: bool = True):
        from pvtt.vlm import VlmSettings

        self.vlm_settings = vlm or VlmSettings()
        super().__init__(workspace, settings, retry_failed)

    def make_backend(self, settings: Any):
        from pvtt.vlm import make_vlm

        return make_vlm(self.vlm_settings)

    def key(self, clip: ClipItem) -> str:
        segment = artifacts.record(self.workspace, "segment", clip.id).key
        return settings_key(self.name, self.version, clip.key, clip.path, segment, self.settings.vlm_parts,
                            self.vlm_settings.output_key("points"))

    def run(self, clip: ClipItem, key: str):
        frame = clip.load(self.workspace).frames[0]
        mask = artifacts.masks(self.workspace, clip.id).data[0]
        x0, y0, x1, y1 = crop_box(mask, self.margin)
        target = _describe(clip.description, clip.subcategory, clip.category, fallback="a product")
        [answer] = self.backend.point([np.ascontiguousarray(frame[y0:y1, x0:x1])], [target], self.settings.vlm_parts)
        kept, dropped = inside_mask([(label, x + x0, y + y0) for label, x, y in answer.points], mask,
                                    self.settings.vlm_parts)
        path = self.out(clip, key, "points.json")
        write_json(path, {"question": answer.prompt, "answer": answer.raw, "coords": answer.coords,
                          "crop": [x0, y0, x1, y1], "error": answer.parse_error,
                          "points": [{"label": lab, "x": round(x, 2), "y": round(y, 2)} for lab, x, y in kept],
                          "dropped": answer.dropped + dropped})
        metrics = {"num_points": len(kept), "dropped": len(answer.dropped) + len(dropped), "coords": answer.coords}
        if answer.parse_error:
            metrics["parse_error"] = answer.parse_error
        return {"points_path": self.workspace.rel(path)}, metrics


def crop_box(mask: np.ndarray, margin: float) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of the mask's box grown by ``margin`` of its size per side (at least 8 px), in the frame."""
    height, width = mask.shape
    box = box_of_mask(mask)
    if box is None:
        return 0, 0, width, height
    mx, my = max(8, int(margin * box.width)), max(8, int(margin * box.height))
    return (max(0, int(box.x0) - mx), max(0, int(box.y0) - my), min(width, int(box.x1) + mx),
            min(height, int(box.y1) + my))


def inside_mask(points: list[tuple[str, float, float]], mask: np.ndarray, limit: int, min_distance: float = 3.0
                ) -> tuple[list[tuple[str, float, float]], list[str]]:
    """The first ``limit`` points on the mask and at least ``min_distance`` px from those kept; the others with why."""
    height, width = mask.shape
    kept: list[tuple[str, float, float]] = []
    dropped: list[str] = []
    for label, x, y in points:
        xi, yi = int(round(x)), int(round(y))
        if not (0 <= xi < width and 0 <= yi < height and mask[yi, xi]):
            dropped.append(f"{label} ({x:.0f}, {y:.0f}): outside the product mask")
        elif any(np.hypot(x - kx, y - ky) < min_distance for _, kx, ky in kept):
            dropped.append(f"{label} ({x:.0f}, {y:.0f}): on top of another point")
        elif len(kept) >= limit:
            dropped.append(f"{label} ({x:.0f}, {y:.0f}): more than the {limit} asked for")
        else:
            kept.append((label, x, y))
    return kept, dropped


def tracker_points(ws: Workspace, clip_id: str, min_count: int
                   ) -> tuple[tuple[np.ndarray, list[str]] | None, dict[str, Any]]:
    """The VLM's points of ``clip_id`` as ``((K, 2), ["vlm:<label>", …])`` for the tracker, and what to record:
    ``points_source`` (``vlm`` or ``features``) and, on a fall-back, ``points_fallback`` with the reason."""
    try:
        data = artifacts.vlm_points(ws, clip_id)
    except MissingArtifact as exc:
        record = exc.record
        reason = "no points record" if record is None else f"points {record.status.value}: {record.reason}"
        return None, {"points_source": "features", "points_fallback": reason}
    points = data["points"]
    if len(points) < min_count:
        why = f" ({data['error']})" if data.get("error") else ""
        return None, {"points_source": "features",
                      "points_fallback": f"the VLM gave {len(points)} points inside the mask, fewer than "
                                         f"track.min_vlm_points {min_count}{why}"}
    xy = np.array([[p["x"], p["y"]] for p in points], np.float32)
    return (xy, [f"vlm:{p['label']}" for p in points]), {"points_source": "vlm", "vlm_points": len(points)}


def check_vlm_weights(config: Any, sections: tuple[str, ...] = ("pairing", "judge", "track")) -> None:
    """Raise :class:`~pvtt.models.ModelNotAvailable` now when a setting of ``sections`` asks for the VLM (the
    rules of :data:`pvtt.weights.required.RULES`) and its weights are not there, instead of on the first item
    after hours of other stages."""
    from pvtt.models import ModelNotAvailable
    from pvtt.models.loading import resolve_source
    from pvtt.weights.required import RULES

    uses = [need.reason for section in sections for need in RULES[section](config) if need.key == "vlm.model"]
    if not uses:
        return
    try:
        resolve_source(config.vlm.model, config.vlm.allow_download, "vlm")
    except ModelNotAvailable as exc:
        raise ModelNotAvailable(f"{', '.join(uses)} needs the VLM, but {exc}") from None


__all__ = ["CaptionStage", "InstructStage", "PointsStage", "check_vlm_weights", "crop_box", "inside_mask",
           "target_text", "tracker_points", "vlm_instructions"]
