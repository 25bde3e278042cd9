"""`pvtt build` with the generative strategies, through the real loading path: tiny random pipelines are saved
with ``save_pretrained`` and named in the config like real weights.

- ``motion-lora``: the LoRA is a clip artifact, trained once per clip and reused by every pair of that clip;
  changing a generation setting re-synthesizes the pairs without retraining.
- ``vace-depth``: the depth stage writes the clip's depth video once; the pairs are conditioned on it and it
  is exported as ``depth/<clip_id>.mp4``.
- every generated pair has B's masks (estimated from its first-frame mask), judge scores and a strategy.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers")

from pvtt.config import load_config  # noqa: E402
from pvtt.demo import make_demo_catalog  # noqa: E402
from pvtt.pipeline import build  # noqa: E402
from pvtt.store import Workspace  # noqa: E402
from pvtt.types import Status  # noqa: E402

SMALL = ["normalize.short_side=128", "normalize.max_frames=9", "normalize.min_frames=9", "insert.max_scale_change=6",
         "media.preset=ultrafast", "runner.progress=false",
         "pairing.strategy=all"]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """Two rendered templates (two shots each) and a third product photo, so every clip has two pairs."""
    from PIL import Image

    from pvtt.demo import product_photo

    root = make_demo_catalog(tmp_path_factory.mktemp("gen-catalog"), count=2)
    Image.fromarray(product_photo(2, 5)).save(root / "images" / "extra.jpg", quality=92)
    meta = json.loads((root / "annotations" / "metadata.json").read_text())
    meta["samples"].append({"id": "EXTRA", "category": "home", "subcategory": "lamp",
                            "source_product": {"image_path": "images/extra.jpg", "description": "a lamp"}})
    (root / "annotations" / "metadata.json").write_text(json.dumps(meta))
    return root


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Tiny SVD, Wan VACE and Depth Anything pipelines saved to disk, as weights are on a real machine."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "models"))  # the tiny transformers models' builders
    from tiny_models import tiny_depth_anything
    from tiny_pipelines import tiny_svd, tiny_wan_vace

    root = tmp_path_factory.mktemp("weights")
    tiny_svd().save_pretrained(root / "svd")
    tiny_wan_vace().save_pretrained(root / "vace")
    tiny_depth_anything().save_pretrained(root / "depth")
    return root


def _stage_counts(ws: Workspace, stage: str) -> Counter:
    return Counter(r.status.value for r in ws.records(stage))


def test_motion_lora_is_trained_once_per_clip_and_reused_by_its_pairs(catalog, saved, tmp_path, monkeypatch):
    from pvtt.propagate.motion_lora import MotionLoraPropagator

    trained = Counter()
    real_train = MotionLoraPropagator.train_lora

    def counting(self, clip, on_step=None):
        trained[clip.id] += 1
        return real_train(self, clip, on_step)

    monkeypatch.setattr(MotionLoraPropagator, "train_lora", counting)
    lora = {"model": str(saved / "svd"), "device": "cpu", "train_steps": 2, "train_frames": 4, "height": 32,
            "width": 32, "num_frames": 5, "inference_steps": 2, "decode_chunk_size": 2, "rank": 4}
    overrides = SMALL + ["propagate.backend=motion-lora", f"propagate.motion_lora={json.dumps(lora)}"]
    summary = build(catalog, tmp_path / "dataset", load_config(None, overrides), workspace=tmp_path / "ws")
    ws = Workspace(tmp_path / "ws")

    lora_records = [r for r in ws.records("motion_lora") if r.status is Status.DONE]
    pairs = [r for r in ws.records("synthesize") if r.status is not Status.FAILED]
    assert lora_records and len(pairs) >= 2 * len(lora_records), (summary.counts, [r.reason for r in ws.records("synthesize")])
    assert dict(trained) == {r.item_id: 1 for r in lora_records}  # never retrained inside a pair
    for record in lora_records:
        assert ws.abs(record.outputs["lora_path"]).stat().st_size > 0 and record.metrics["steps"] == 2
    for record in pairs:
        assert record.metrics["strategy"] == "motion-lora" and "background_psnr" in record.metrics["scores"]
        masks = np.load(ws.abs(record.outputs["masks_b_path"]))
        assert masks["masks"].any()  # B's estimated region, not an empty placeholder

    # a generation setting changes the pairs, not the LoRA: the re-run trains nothing
    pair_keys = {r.key for r in pairs}
    trained.clear()
    lora["inference_steps"] = 1
    overrides = SMALL + ["propagate.backend=motion-lora", f"propagate.motion_lora={json.dumps(lora)}"]
    summary = build(catalog, tmp_path / "dataset", load_config(None, overrides), workspace=tmp_path / "ws")
    assert not trained and {r.key for r in ws.records("motion_lora")} == {r.key for r in lora_records}
    redone = [r for r in ws.records("synthesize") if r.status is not Status.FAILED]
    assert len(redone) == len(pairs) and not pair_keys & {r.key for r in redone}


def test_vace_depth_uses_the_clip_depth_video_and_exports_it(catalog, saved, tmp_path, monkeypatch):
    from pvtt.propagate.vace import VaceDepthPropagator

    estimated_in_pair = []
    monkeypatch.setattr(VaceDepthPropagator, "clip_depth", lambda self, clip: estimated_in_pair.append(clip.id))
    vace = {"model": str(saved / "vace"), "device": "cpu", "steps": 2, "max_area": 32 * 48, "max_sequence_length": 16,
            "negative_prompt": "low quality"}
    depth = {"model": str(saved / "depth"), "device": "cpu", "input_size": 28}
    overrides = SMALL + ["propagate.backend=vace-depth", f"propagate.vace={json.dumps(vace)}",
                         f"depth={json.dumps(depth)}", "export.include_rejected=true"]  # random weights: rejected
    build(catalog, tmp_path / "dataset", load_config(None, overrides), workspace=tmp_path / "ws")
    ws = Workspace(tmp_path / "ws")

    depth_done = [r for r in ws.records("depth") if r.status is Status.DONE]
    pairs = [r for r in ws.records("synthesize") if r.status is not Status.FAILED]
    assert depth_done and pairs, [r.reason for r in ws.records("synthesize")]
    assert not estimated_in_pair  # every pair got its clip's depth video from the depth stage
    assert {r.metrics["strategy"] for r in pairs} == {"vace-depth"}
    rows = [json.loads(line) for line in (tmp_path / "dataset/annotations/pairs.jsonl").read_text().splitlines()]
    assert {row["pair_id"] for row in rows} == {r.item_id for r in pairs}
    for clip_id in {row["clip_id"] for row in rows}:
        assert (tmp_path / "dataset" / "depth" / f"{clip_id}.mp4").stat().st_size > 0


def test_auto_without_depth_weights_chooses_points_and_says_why(small_clip):
    """auto chose depth (same silhouette) but there is no depth video and no depth model: vace-points."""
    from pvtt.propagate import make_propagator
    from pvtt.types import Masks
    from tiny_pipelines import moving_tracks, product_mask, tiny_wan_vace

    masks = product_mask(small_clip.frames)
    backend = make_propagator(backend="auto", vace={"device": "cpu", "steps": 1, "max_area": 32 * 32,
                                                     "max_sequence_length": 16, "depth_model": "/no/such/depth"})
    backend.setup(model=tiny_wan_vace())
    alpha = masks[0].astype(np.float32)  # B's alpha has A's shape: depth would be the choice
    from pvtt.compose import box_of_mask
    from pvtt.types import InsertResult

    insert = InsertResult(small_clip.frames[0], alpha, box_of_mask(masks[0]))
    result = backend.propagate(small_clip, None, Masks(masks), moving_tracks(masks), insert)
    assert result.strategy == "vace-points"
    assert "no depth video" in result.reason and "/no/such/depth" in result.reason
    assert result.frames.shape == small_clip.frames.shape and result.masks.shape == masks.shape


def test_stages_with_model_backends_ask_for_a_gpu(tmp_path):
    from pvtt.config import load_config
    from pvtt.stages.clip import DepthStage, MotionLoraStage, SegmentStage
    from pvtt.stages.pair import SynthesizeStage

    ws = Workspace(tmp_path / "ws")
    config = load_config(None, ["propagate.backend=vace-points"])
    assert SegmentStage(ws, config.segment).resources.gpus == 0  # classical
    assert SegmentStage(ws, load_config(None, ["segment.backend=sam2"]).segment).resources.gpus == 1
    assert DepthStage(ws, config.depth).resources.gpus == 1
    assert DepthStage(ws, load_config(None, ["depth.device=cpu"]).depth).resources.gpus == 0
    assert MotionLoraStage(ws, config.propagate).resources.gpus == 1
    assert SynthesizeStage(ws, config.insert, config.propagate, config.judge).resources.gpus == 1
    warp = load_config(None, [])
    assert SynthesizeStage(ws, warp.insert, warp.propagate, warp.judge).resources.gpus == 0


def test_missing_weights_stop_the_build_with_their_name_and_keep_finished_work(catalog, tmp_path, monkeypatch):
    from pvtt.models import ModelNotAvailable

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))  # an empty hub cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    overrides = SMALL + ["propagate.backend=vace-depth", "depth.model=nobody/no-such-depth"]
    with pytest.raises(ModelNotAvailable, match="nobody/no-such-depth.*huggingface-cli download"):
        build(catalog, tmp_path / "dataset", load_config(None, overrides), workspace=tmp_path / "ws")
    ws = Workspace(tmp_path / "ws")
    assert [r for r in ws.records("erase") if r.status is Status.DONE]  # the clips' work so far is kept
    assert not ws.records("depth") and not ws.records("synthesize")  # no item was charged with the missing model


def test_auto_goes_on_without_any_weights(catalog, tmp_path, monkeypatch):
    """auto's depth is optional and its VACE falls back to warp: a build without weights still makes pairs."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    summary = build(catalog, tmp_path / "dataset", load_config(None, SMALL + ["propagate.backend=auto"]),
                    workspace=tmp_path / "ws")
    ws = Workspace(tmp_path / "ws")
    assert "depth" not in summary.counts  # its weights are missing: skipped, with a warning
    pairs = [r for r in ws.records("synthesize") if r.metrics.get("strategy")]
    assert pairs and all(r.metrics["strategy"] == "warp" and "VACE weights missing" in r.metrics["strategy_reason"]
                         for r in pairs)


def test_i2vedit_builds_pairs_from_the_clips_loras(catalog, saved, tmp_path):
    """``i2vedit`` in a build: the LoRA stage trains the clip's LoRA once (i2vedit's settings), every pair
    inverts and edits its clip chunk by chunk and records the strategy and its chunk count."""
    settings = {"model": str(saved / "svd"), "device": "cpu", "dtype": "fp32", "train_steps": 1, "train_frames": 3,
                "height": 32, "width": 32, "num_frames": 5, "inference_steps": 2, "decode_chunk_size": 4, "rank": 4}
    overrides = SMALL + ["propagate.backend=i2vedit", f"propagate.i2vedit={json.dumps(settings)}"]
    summary = build(catalog, tmp_path / "dataset", load_config(None, overrides), workspace=tmp_path / "ws")
    ws = Workspace(tmp_path / "ws")
    loras = [r for r in ws.records("motion_lora") if r.status is Status.DONE]
    pairs = [r for r in ws.records("synthesize") if r.status is not Status.FAILED]
    assert loras and pairs, (summary.counts, [r.reason for r in ws.records("synthesize")])
    for record in pairs:
        assert record.metrics["strategy"] == "i2vedit" and record.metrics["scores"]
        assert record.metrics["propagate"]["chunks"] == 2 and record.metrics["propagate"]["loras"] == 1


def test_svd_points_registers_each_clip_once_and_its_pairs_reuse_it(catalog, saved, tmp_path, monkeypatch):
    from pvtt.propagate.videoswap import SvdPointsPropagator

    fitted = Counter()
    real = SvdPointsPropagator.train_points

    def counting(self, frames, *args, **kwargs):
        fitted[len(frames)] += 1
        return real(self, frames, *args, **kwargs)

    monkeypatch.setattr(SvdPointsPropagator, "train_points", counting)
    settings = {"model": str(saved / "svd"), "device": "cpu", "dtype": "fp32", "train_steps": 1, "train_frames": 3,
                "height": 32, "width": 32, "num_frames": 5, "inference_steps": 2, "decode_chunk_size": 4,
                "blocks": [0, 1], "mlp_width": 8, "match_step": 2, "min_similarity": -1.0}
    overrides = SMALL + ["propagate.backend=svd-points", f"propagate.svd_points={json.dumps(settings)}"]
    summary = build(catalog, tmp_path / "dataset", load_config(None, overrides), workspace=tmp_path / "ws")
    ws = Workspace(tmp_path / "ws")
    registrations = [r for r in ws.records("points_registration") if r.status is Status.DONE]
    pairs = [r for r in ws.records("synthesize") if r.status is not Status.FAILED]
    assert registrations and len(pairs) >= 2 * len(registrations), (summary.counts,
                                                                     [r.reason for r in ws.records("synthesize")])
    assert sum(fitted.values()) == len(registrations)  # fitted once per clip, never inside a pair
    for record in pairs:
        assert record.metrics["strategy"] == "svd-points" and record.metrics["propagate"]["matched"] >= 0
