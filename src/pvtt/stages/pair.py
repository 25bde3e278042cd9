"""Per-pair stage: insert B on the first frame → propagate through the clip → judge → encode.

The pair's clip-level inputs (background, masks, tracks, box) and the product's cutout come from
their cached records, so a clip crossed with many products is analysed and erased once.
A pair the judge rejects is recorded as *rejected* with its reasons, and keeps its video so the
review page can show why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pvtt import artifacts
from pvtt.artifacts import save_masks_b, write_mp4
from pvtt.config import settings_key
from pvtt.errors import RejectItem
from pvtt.items import ClipItem, ProductItem
from pvtt.locate.query import product_query
from pvtt.media.image import write_png
from pvtt.stage import Stage
from pvtt.stages.clip import half_size
from pvtt.store import Workspace, atomic_path

CLIP_EXTRAS = ("depth", "motion_lora", "points_registration")  # clip artifacts only some strategies need


@dataclass
class PairItem:
    id: str
    clip: ClipItem
    product: ProductItem
    difficulty: str
    shape_similarity: float
    instruction: str
    caption: str | None = None  # the clip's dense caption (pairing.instruction: vlm)


def review_overlay(edited: np.ndarray, masks_a: np.ndarray, masks_b: np.ndarray) -> np.ndarray:
    """The edited clip with B's region tinted green and A's outline drawn in red, at half size."""
    out = edited.astype(np.float32)
    tint = np.array([40, 220, 90], np.float32)
    out[masks_b] = out[masks_b] * 0.6 + tint * 0.4
    out = out.astype(np.uint8)
    for t in range(len(out)):
        contours, _ = cv2.findContours(masks_a[t].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out[t], contours, -1, (230, 40, 40), 2)
    return half_size(out)


class SynthesizeStage(Stage[PairItem]):
    name = "synthesize"
    version = "3"  # 3: the pair's instruction, B's cutout, the clip's depth video and motion LoRA go to the backends

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
        write_mp4(out_dir / "overlay.mp4", review_overlay(result.frames, masks_a.data, result.masks),
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


def make_pair_items(ws: Workspace, clips: list[ClipItem], products: list[ProductItem], config: Any) -> list[PairItem]:
    """Cross the surviving clips with the cut-out products (``pairing`` settings), with an instruction each."""
    from pvtt.instruction import make_instruction
    from pvtt.pairing import PairClip, PairProduct, make_pairs

    pair_clips = []
    for clip in clips:
        mask = artifacts.masks(ws, clip.id).data[0]
        ys, xs = np.nonzero(mask)
        silhouette = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1] if len(xs) else None
        pair_clips.append(PairClip(clip.id, clip.template_id, clip.category, clip.subcategory, silhouette))
    pair_products = []
    for product in products:
        alpha = artifacts.cutout(ws, product.id)[..., 3] > 127
        pair_products.append(PairProduct(product.id, product.template_id, product.category, product.subcategory,
                                         alpha))
    by_clip = {c.id: c for c in clips}
    by_product = {p.id: p for p in products}
    items = []
    for n, pair in enumerate(make_pairs(pair_clips, pair_products, config.pairing)):
        clip, product = by_clip[pair.clip_id], by_product[pair.product_id]
        source = clip.description or clip.subcategory or clip.category
        target = product.description or product.subcategory or product.category
        instruction = make_instruction(source, target, seed=config.pairing.seed + n)
        items.append(PairItem(pair.pair_id, clip, product, pair.difficulty, round(float(pair.shape_similarity), 4),
                              instruction))
    return items


def pair_rows(ws: Workspace, pairs: list[PairItem], config: Any) -> list[dict]:
    """Manifest rows of every synthesized pair in each of ``config.export.modes``, with their artifacts."""
    from pvtt.export import dataset_path
    from pvtt.types import Status

    def clip_artifacts(clip: ClipItem) -> dict:
        art = {"source_video": (ws.abs(clip.path), dataset_path("source_video", clip.id))}
        for stage, key, field in (("erase", "background_path", "background_video"),
                                  ("segment", "mask_video_path", "mask_video"), ("track", "tracks_path", "tracks"),
                                  ("depth", "depth_path", "depth_video")):
            record = ws.read_record(stage, clip.id)
            if record is not None and key in record.outputs:
                art[field] = (ws.abs(record.outputs[key]), dataset_path(field, clip.id))
        return art

    def target_artifacts(target, product_id: str) -> dict:
        """The target image and, for a video product, its extra views (``images/target/<id>_view<k>.png``)."""
        if target is None:
            return {}
        art = {"target_image": (ws.abs(target.outputs["cutout_path"]), dataset_path("target_image", product_id))}
        for k, path in enumerate(target.outputs.get("view_paths", []), 1):
            art[f"target_view_{k}"] = (ws.abs(path), dataset_path("target_view", f"{product_id}_view{k}"))
        return art

    replace: dict[str, dict] = {}
    for pair in pairs:
        record = ws.read_record("synthesize", pair.id)
        if record is None or record.status is Status.FAILED:
            continue
        clip, product = pair.clip, pair.product
        target = artifacts.target(ws, product.id, required=False)  # B's image: the photo's cutout, else the video's
        own = artifacts.target(ws, clip.product_id, required=False) if clip.product_id else None
        metrics = record.metrics
        row = {
            "pair_id": pair.id, "mode": "replace", "clip_id": clip.id, "template_id": clip.template_id,
            "product_id": product.id, "source_product_id": clip.product_id,
            "source_category": clip.category, "source_subcategory": clip.subcategory,
            "target_category": product.category, "target_subcategory": product.subcategory,
            "difficulty": pair.difficulty, "shape_similarity": pair.shape_similarity,
            "instruction": pair.instruction, "strategy": metrics.get("strategy"),
            "strategy_reason": metrics.get("strategy_reason"), "scores": metrics.get("scores", {}),
            "box_b": metrics.get("box_b"),
            "verdict": "keep" if record.status is Status.DONE else "reject",
            "reasons": metrics.get("reasons") or ([record.reason] if record.reason else []),
            "num_frames": clip.num_frames, "fps": clip.fps, "width": clip.width, "height": clip.height,
            "settings_hash": record.key,
        }
        if pair.caption:  # pairing.instruction: vlm — the VLM's caption of the source clip
            row["caption"] = pair.caption
        art = clip_artifacts(clip)
        row["target_source"] = target.outputs["source"] if target is not None else None
        art.update(target_artifacts(target, product.id))
        out = record.outputs
        if "edited_path" in out:
            art["edited_video"] = (ws.abs(out["edited_path"]), dataset_path("edited_video", pair.id))
            art["keyframe"] = (ws.abs(out["keyframe_path"]), dataset_path("keyframe", pair.id))
            art["overlay_video"] = (ws.abs(out["overlay_path"]), dataset_path("overlay_video", pair.id))
        row["artifacts"] = art
        replace[pair.id] = row
        if "reversed" in config.export.modes and "edited_path" in out and own is not None:
            # the edited clip is the source and the real footage the target, so the target side is never synthetic
            rev_id = f"{pair.id}__reversed"
            rev = dict(row, pair_id=rev_id, mode="reversed", product_id=clip.product_id,
                       source_product_id=product.id, target_category=clip.category,
                       target_subcategory=clip.subcategory, source_category=product.category,
                       source_subcategory=product.subcategory, target_source=own.outputs["source"],
                       instruction=_reverse_instruction(pair, config))
            rev.pop("caption", None)  # it describes the real clip, the target side here
            rev["artifacts"] = {
                "source_video": (ws.abs(out["edited_path"]), dataset_path("edited_video", pair.id)),
                "edited_video": (ws.abs(clip.path), dataset_path("source_video", clip.id)),
                **target_artifacts(own, clip.product_id),
                "overlay_video": art.get("overlay_video"),
            }
            replace[rev_id] = rev
    rows = list(replace.values())
    if "double-insert" in config.export.modes:
        rows += _double_insert_rows(ws, pairs, replace)
    return rows


def _reverse_instruction(pair: PairItem, config: Any) -> str:
    from pvtt.instruction import make_instruction

    source = pair.product.description or pair.product.subcategory or pair.product.category
    target = pair.clip.description or pair.clip.subcategory or pair.clip.category
    return make_instruction(source, target, seed=config.pairing.seed + 7919)


def _double_insert_rows(ws: Workspace, pairs: list[PairItem], rows: dict[str, dict]) -> list[dict]:
    """(video with B → video with C) for two products B, C synthesized on the same clip: both sides synthetic,
    identical background and motion, so a model cannot learn to spot erase artifacts."""
    from pvtt.export import dataset_path
    from pvtt.instruction import make_instruction

    by_clip: dict[str, list[PairItem]] = {}
    for pair in pairs:
        row = rows.get(pair.id)
        if row is not None and "edited_video" in row["artifacts"]:
            by_clip.setdefault(pair.clip.id, []).append(pair)
    out = []
    for clip_pairs in by_clip.values():
        for b, c in zip(clip_pairs, clip_pairs[1:]):
            rb, rc = rows[b.id], rows[c.id]
            pair_id = f"{c.clip.id}__{b.product.id}__{c.product.id}"
            row = dict(rc, pair_id=pair_id, mode="double-insert", source_product_id=b.product.id,
                       source_category=b.product.category, source_subcategory=b.product.subcategory,
                       verdict="keep" if rb["verdict"] == rc["verdict"] == "keep" else "reject",
                       reasons=[f"source side: {r}" for r in rb["reasons"]] + rc["reasons"],
                       instruction=make_instruction(b.product.description or b.product.subcategory,
                                                    c.product.description or c.product.subcategory, seed=len(out)))
            row.pop("caption", None)  # it describes the real clip, on neither side here
            row["artifacts"] = dict(rc["artifacts"])
            row["artifacts"]["source_video"] = (rb["artifacts"]["edited_video"][0], dataset_path("edited_video", b.id))
            row["artifacts"]["edited_video"] = (rc["artifacts"]["edited_video"][0], dataset_path("edited_video", c.id))
            row["artifacts"].pop("keyframe", None)
            out.append(row)
    return out
