"""Per-pair stage: insert B on the first frame → propagate through the clip → judge → encode.

The pair's clip-level inputs (background, masks, tracks, box) and the product's cutout come from
their cached records, so a clip crossed with many products is analysed and erased once.
A pair the judge rejects is recorded as *rejected* with its reasons, and keeps its video so the
review page can show why.
"""

from __future__ import annotations

import time
from typing import Any

from pvtt import artifacts
from pvtt.artifacts import save_masks_b, write_mp4
from pvtt.config import settings_key
from pvtt.errors import RejectItem
from pvtt.locate.query import product_query
from pvtt.media.image import write_png
from pvtt.pairing import PairItem
from pvtt.review_media import pair_overlay
from pvtt.stage import Stage
from pvtt.store import Workspace, atomic_path

CLIP_EXTRAS = ("depth", "motion_lora", "points_registration")  # clip artifacts only some strategies need


class SynthesizeStage(Stage[PairItem]):
    name = "synthesize"
    version = "10"  # 3: the pair's instruction, B's cutout, the clip's depth video and motion LoRA go to the backends
    # 4: the judge measures floating over all of A's columns (verdicts change with no setting changed)
    # 5: B's contact shadow is not drawn inside B's holes (composite insert); 6: 2 px past a frame edge A stays clear
    # of count as rounding (insert.max_outside_clear); 7: the judge's blocks only where a third of the frames measure;
    # 8: a contact shadow under each part of B standing on the floor (composite insert); 9: the ring B is harmonised
    # to grown by pvtt.compose.dilate (a few rim pixels differ); 10: an occluder must reach into A's footprint
    # (propagate.occlusion_depth)

    def __init__(self, workspace: Workspace, insert: Any, propagate: Any, judge: Any, retry_failed: bool = True,
                 crf: int = 18, embed: Any = None, vlm: Any = None):
        from pvtt.insert import make_inserter
        from pvtt.propagate import make_propagator

        super().__init__(workspace, retry_failed)
        self.insert_settings, self.propagate_settings, self.judge_settings = insert, propagate, judge
        self.crf = crf
        self._inserter = make_inserter(insert)
        self._propagator = make_propagator(propagate)
        # the DINOv2 identity score (judge.identity dinov2 / both) embeds with the `embed` settings
        self.embed_settings, self._embedder = None, None
        if getattr(judge, "identity", "histogram") != "histogram":
            from pvtt.embed import EmbedSettings, make_embedder

            self.embed_settings = embed or EmbedSettings()
            self._embedder = make_embedder(self.embed_settings)
        # the VLM judge (judge.vlm) with the `vlm` settings, asked after the metric judge
        self.vlm_settings, self._vlm = None, None
        if getattr(judge, "vlm", False):
            from pvtt.vlm import VlmSettings, make_vlm

            self.vlm_settings = vlm or VlmSettings()
            self._vlm = make_vlm(self.vlm_settings)

    def backends(self):
        return (self._inserter, self._propagator) + ((self._embedder,) if self._embedder is not None else ()) \
            + ((self._vlm,) if self._vlm is not None else ())

    def key(self, pair: PairItem) -> str:
        ws = self.workspace
        upstream_keys = [artifacts.record(ws, s, pair.clip.id).key for s in ("locate", "segment", "track", "erase")]
        optional = [artifacts.record(ws, s, pair.clip.id, required=False) for s in CLIP_EXTRAS]
        return settings_key(self.name, self.version, pair.clip.key, *upstream_keys, *[o and o.key for o in optional],
                            artifacts.target(ws, pair.product.id).key, pair.instruction, self.insert_settings,
                            self.propagate_settings, self.judge_settings, self.crf,
                            *((self.embed_settings,) if self._embedder is not None else ()),
                            *((self.vlm_settings.output_key("judge"),) if self._vlm is not None else ()))

    def run(self, pair: PairItem, key: str):
        from pvtt.judge import judge

        ws, clip_id = self.workspace, pair.clip.id
        clock = _Phases()
        # 1. inputs: the clip and its cached clip-level artifacts, the product's cutout
        video = pair.clip.load(ws)
        background = artifacts.background(ws, clip_id)
        masks_a = artifacts.masks(ws, clip_id)
        tracks_a = artifacts.tracks(ws, clip_id)
        box_a = artifacts.box(ws, clip_id)
        product = artifacts.cutout(ws, pair.product.id)
        depth = artifacts.depth(ws, clip_id, required=False)  # the clip artifacts the strategy made, if any
        lora = artifacts.lora_path(ws, clip_id, required=False)
        registration = artifacts.registration_path(ws, clip_id, required=False)
        clock("inputs")
        # 2. first-frame edit
        b = pair.product
        inserted = self._inserter.insert(video.frames[0], background[0], masks_a.data[0], box_a, product,
                                         instruction=pair.instruction,
                                         description=product_query(b.category, b.subcategory, b.description)[0])
        clock("insert")
        # 3. carry it through the clip
        result = self._propagator.propagate(video, background, masks_a, tracks_a, inserted,
                                            instruction=pair.instruction, product=product,
                                            depth=depth, lora=lora,
                                            **({"registration": registration} if registration else {}))
        clock("propagate")
        # 4. judge (B's DINOv2 vector, when the judge asks for it, is computed once per product and cached)
        identity = None
        if self._embedder is not None:
            from pvtt.stages.embed import product_embedding

            identity = product_embedding(ws, pair.product.id, self._embedder)
        verdict = judge(video.frames, result.frames, masks_a, result.masks, product, tracks_a, self.judge_settings,
                        background=background, embedder=self._embedder, product_embedding=identity)
        clock("judge")
        # 4b. the VLM judge (judge.vlm): its scores join the pair's (vlm_*), and either judge rejects
        vlm = None
        if self._vlm is not None:
            from pvtt.judge.vlm import judge_with_vlm
            from pvtt.stages.vlm import target_text

            vlm = judge_with_vlm(self._vlm, video, result.frames, product, target_text(pair), self.judge_settings)
            verdict.scores.update(vlm.scores)
            verdict.reasons += vlm.reasons
            verdict.verdict = "reject" if vlm.reasons else verdict.verdict
        if vlm is not None:
            clock("vlm_judge")
        # 5. write
        out_dir = ws.artifact_dir(self.name, pair.id, key)
        write_mp4(out_dir / "edited.mp4", result.frames, pair.clip.fps, crf=self.crf)
        with atomic_path(out_dir / "keyframe.png") as tmp:
            write_png(tmp, result.frames[0])
        save_masks_b(out_dir / "masks_b.npz", result.masks)
        write_mp4(out_dir / "overlay.mp4", pair_overlay(result.frames, masks_a.data, result.masks),
                  pair.clip.fps, crf=23)
        outputs = {name + "_path": ws.rel(out_dir / file) for name, file in
                   (("edited", "edited.mp4"), ("keyframe", "keyframe.png"), ("masks_b", "masks_b.npz"),
                    ("overlay", "overlay.mp4"))}
        clock("write")
        info = result.info or {}
        metrics = {
            "scores": {k: round(float(v), 5) for k, v in verdict.scores.items() if v is not None},
            "verdict": verdict.verdict,
            "reasons": list(verdict.reasons),
            "strategy": info.get("strategy", self.propagate_settings.backend),
            "strategy_reason": info.get("reason", ""),
            "box_b": [round(float(v), 2) for v in inserted.box.as_tuple()],
            "phase_seconds": clock.seconds,  # where the pair's time went (model loading is not in any phase)
        }
        details = {k: v for k, v in info.items() if k not in ("strategy", "reason")
                   and (v is None or isinstance(v, (bool, int, float, str)))}
        if details:  # the strategy's own figures (e.g. i2vedit's chunks and preserved share)
            metrics["propagate"] = details
        if "prompt" in (inserted.info or {}):  # a generative insert: what the model saw and was told
            metrics["insert"] = {k: inserted.info[k] for k in ("backend", "reference", "canvas", "prompt")
                                 if k in inserted.info}
        if vlm is not None:  # the question, the raw answer, the yes/no checks, vlm_error when it was not judged
            metrics.update(vlm.metrics)
        if verdict.verdict != "keep":
            raise RejectItem("; ".join(verdict.reasons) or "rejected by the judge", metrics=metrics, outputs=outputs)
        return outputs, metrics


class _Phases:
    """Wall-clock seconds of consecutive phases: ``clock("insert")`` closes the phase that ran since the last call."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._last, 3)
        self._last = now
