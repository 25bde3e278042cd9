"""DINOv2 in `pvtt build`: near-duplicate clips by embedding cosine (cached `embed` stage) and the judge's DINOv2
product-identity score (B's vector cached per product), with a tiny random DINOv2 saved and loaded by its
settings. Properties that hold for any weights: identical pixels give cosine 1, a cached record loads no model."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from pvtt import artifacts
from pvtt.config import load_config
from pvtt.embed import EmbedSettings, make_embedder
from pvtt.errors import ConfigError
from pvtt.items import ClipItem, ProductItem
from pvtt.judge import JudgeSettings, judge
from pvtt.media.image import write_png
from pvtt.media.video import write_video
from pvtt.pipeline import RunSummary, _dedup_steps
from pvtt.runners.factory import make_runner
from pvtt.store import Workspace
from pvtt.testmedia import textured_background
from pvtt.types import ItemRecord, Masks, Status, Tracks

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tiny_models import tiny_clip, tiny_dinov2  # noqa: E402

H, W, T = 64, 96, 4
BOX = (20, 30, 44, 50)  # y0, x0, y1, x1 of A (and of B, pasted 1:1)


@pytest.fixture(scope="module")
def dino_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("dino") / "tiny-dinov2"
    tiny_dinov2().save_pretrained(path)
    return path


def embed_settings(dino_dir, **kw) -> EmbedSettings:
    return EmbedSettings(model=str(dino_dir), device="cpu", input_size=28, **kw)


def _count(monkeypatch, cls, name: str) -> list:
    calls, original = [], getattr(cls, name)

    def spy(self, *args, **kwargs):
        calls.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, spy)
    return calls


# -- config ----------------------------------------------------------------------------------------------------


def test_the_embedding_settings_load_and_bad_values_name_their_key():
    config = load_config(None, ["curate.dedup=embedding", "curate.embedding_threshold=0.9", "judge.identity=both",
                                "judge.min_identity_dinov2=0.3"])
    assert config.curate.dedup == "embedding" and config.curate.embedding_threshold == 0.9
    assert config.judge.identity == "both" and config.judge.min_identity_dinov2 == 0.3
    defaults = load_config(None, [])
    assert defaults.curate.dedup == "thumbnail" and defaults.judge.identity == "histogram"
    with pytest.raises(ConfigError, match="curate.dedup"):
        load_config(None, ["curate.dedup=dinov2"])
    with pytest.raises(ConfigError, match="judge.identity"):
        load_config(None, ["judge.identity=clip"])


# -- near-duplicate clips by DINOv2 cosine -----------------------------------------------------------------------


def _clips(ws: Workspace) -> list[ClipItem]:
    """Clip a, b (a byte-identical copy of a's file) and c (another rendered product)."""
    (ws.root / "clips").mkdir(parents=True)
    write_video(ws.root / "clips/a.mp4", tiny_clip(kind=0, seed=0).frames, 20.0, preset="ultrafast")
    shutil.copy(ws.root / "clips/a.mp4", ws.root / "clips/b.mp4")
    write_video(ws.root / "clips/c.mp4", tiny_clip(kind=2, seed=5).frames, 20.0, preset="ultrafast")
    return [ClipItem(i, "tpl", f"clips/{i}.mp4", f"norm-{i}", 20.0, 64, 48, 6, 0, n, 0.0)
            for n, i in enumerate("abc")]


def test_embedding_dedup_rejects_an_exact_duplicate_keeps_different_clips_and_caches(tmp_path, dino_dir,
                                                                                      monkeypatch):
    from pvtt.embed.dinov2 import Dinov2Embedder

    ws = Workspace(tmp_path / "ws")
    clips = _clips(ws)
    config = load_config(None, ["curate.dedup=embedding", "curate.embedding_threshold=0.999", "runner.progress=false",
                                f"embed.model={dino_dir}", "embed.device=cpu", "embed.input_size=28"])
    calls = _count(monkeypatch, Dinov2Embedder, "embed_images")
    summary = RunSummary(ws.root)
    kept = _dedup_steps(ws, config, make_runner(config.runner), summary, clips)
    assert len(calls) == 3  # one embed_clip per clip
    vectors = {c.id: np.load(ws.abs(ws.read_record("embed", c.id).outputs["embedding_path"]))["embedding"]
               for c in clips}
    assert float(vectors["a"] @ vectors["c"]) < 0.999  # precondition: the two renders differ for these weights
    assert [c.id for c in kept] == ["a", "c"]
    dup = ws.read_record("dedup", "b")
    assert dup.status is Status.REJECTED
    assert re.fullmatch(r"near-duplicate of a: similarity 1\.000 >= 0\.999", dup.reason), dup.reason
    assert dup.metrics["duplicate_of"] == "a" and dup.metrics["similarity"] >= 0.9999
    assert summary.counts["embed"]["done"] == 3 and summary.counts["dedup"]["rejected"] == 1

    # a re-run reads the cached records: the weights are not even loaded, the vectors are not rewritten
    mtimes = {c.id: ws.abs(ws.read_record("embed", c.id).outputs["embedding_path"]).stat().st_mtime_ns
              for c in clips}
    keys = {c.id: ws.read_record("embed", c.id).key for c in clips}

    def no_load(self):
        raise AssertionError("the model was loaded on a cached re-run")

    monkeypatch.setattr(Dinov2Embedder, "load", no_load)
    summary = RunSummary(ws.root)
    kept = _dedup_steps(ws, config, make_runner(config.runner), summary, clips)
    assert [c.id for c in kept] == ["a", "c"] and len(calls) == 3
    for clip in clips:
        record = ws.read_record("embed", clip.id)
        assert record.key == keys[clip.id]
        assert ws.abs(record.outputs["embedding_path"]).stat().st_mtime_ns == mtimes[clip.id]
    # other embed settings are another key
    from pvtt.stages.embed import EmbedStage

    assert EmbedStage(ws, config.embed.model_copy(update={"pooling": "mean"})).key(clips[0]) != keys["a"]


def test_thumbnail_dedup_is_unchanged_and_runs_no_embed_stage(tmp_path):
    ws = Workspace(tmp_path / "ws")
    clips = _clips(ws)
    for clip in clips:  # curate's thumbnail vectors: b duplicates a
        vec = np.ones(8, np.float32) if clip.id != "c" else np.arange(8, dtype=np.float32) - 3.5
        artifacts.save_array(ws.root / f"curate/{clip.id}/embedding.npz", embedding=vec)
        ws.write_record(ItemRecord("curate", clip.id, "k", Status.DONE,
                                   outputs={"embedding_path": f"curate/{clip.id}/embedding.npz"}))
    config = load_config(None, ["runner.progress=false"])
    kept = _dedup_steps(ws, config, make_runner(config.runner), RunSummary(ws.root), clips)
    assert [c.id for c in kept] == ["a", "c"] and not ws.records("embed")
    assert ws.read_record("dedup", "b").reason == "near-duplicate of a: similarity 1.000 >= 0.95"


# -- the judge's DINOv2 identity ----------------------------------------------------------------------------------


def _cutout() -> np.ndarray:
    """A textured 24x20 product with an elliptic, hard alpha."""
    h, w = BOX[2] - BOX[0], BOX[3] - BOX[1]
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., :3] = textured_background(h, w, 3, detail=20.0)
    yy, xx = np.mgrid[:h, :w]
    rgba[..., 3] = np.where(((yy - h / 2 + 0.5) / (h / 2)) ** 2 + ((xx - w / 2 + 0.5) / (w / 2)) ** 2 <= 1, 255, 0)
    return rgba


def _scene(cutout: np.ndarray, blank_b: bool = False):
    """Source, edited (B = the cutout pasted 1:1 in A's box, or a flat grey B), A's and B's masks, A's tracks."""
    y0, x0, y1, x1 = BOX
    source = np.repeat(textured_background(H, W, 1)[None], T, axis=0)
    masks_a = np.zeros((T, H, W), bool)
    masks_a[:, y0:y1, x0:x1] = True
    inside = cutout[..., 3] > 127
    masks_b = np.zeros((T, H, W), bool)
    masks_b[:, y0:y1, x0:x1] = inside
    edited = source.copy()
    edited[:, y0:y1, x0:x1][:, inside] = 128 if blank_b else cutout[..., :3][inside]
    tracks = Tracks(np.zeros((T, 0, 2), np.float32), np.zeros((T, 0), bool))
    return source, edited, Masks(masks_a), masks_b, tracks


@pytest.fixture(scope="module")
def embedder(dino_dir):
    embedder = make_embedder(embed_settings(dino_dir))
    embedder.setup()
    return embedder


def test_dinov2_identity_of_b_pasted_as_its_cutout_is_one(embedder):
    cutout = _cutout()
    settings = JudgeSettings(identity="dinov2", min_identity_dinov2=0.99, stride=1)
    source, edited, masks_a, masks_b, tracks = _scene(cutout)
    result = judge(source, edited, masks_a, masks_b, cutout, tracks, settings, embedder=embedder)
    assert result.scores["identity_dinov2"] == pytest.approx(1.0, abs=1e-4)
    assert not [r for r in result.reasons if r.startswith("identity")], result.reasons


def test_dinov2_identity_of_a_blank_b_fails_with_a_reason_and_gates_only_what_is_asked(embedder):
    cutout = _cutout()
    source, edited, masks_a, masks_b, tracks = _scene(cutout, blank_b=True)
    dinov2 = judge(source, edited, masks_a, masks_b, cutout, tracks,
                   JudgeSettings(identity="dinov2", min_identity_dinov2=1.0, stride=1), embedder=embedder)
    value = dinov2.scores["identity_dinov2"]
    assert value < 1.0
    assert f"identity_dinov2: {value:.2f} < 1.00" in dinov2.reasons
    assert dinov2.verdict == "reject"
    # identity: dinov2 judges DINOv2 only; the histogram scores are still recorded
    assert "identity" in dinov2.scores and not [r for r in dinov2.reasons if r.startswith("identity: similarity")]
    both = judge(source, edited, masks_a, masks_b, cutout, tracks,
                 JudgeSettings(identity="both", min_identity=1.0, min_identity_dinov2=1.0, stride=1),
                 embedder=embedder)
    assert {r.split(":")[0] for r in both.reasons} >= {"identity", "identity_dinov2"}
    # the default needs no embedder and records no DINOv2 score
    histogram = judge(source, edited, masks_a, masks_b, cutout, tracks, JudgeSettings(stride=1))
    assert "identity_dinov2" not in histogram.scores
    with pytest.raises(ValueError, match="needs an embedder"):
        judge(source, edited, masks_a, masks_b, cutout, tracks, JudgeSettings(identity="dinov2"))


def test_a_given_product_embedding_is_used_instead_of_embedding_the_cutout(embedder):
    cutout = _cutout()
    source, edited, masks_a, masks_b, tracks = _scene(cutout)
    settings = JudgeSettings(identity="dinov2", stride=1)
    own = judge(source, edited, masks_a, masks_b, cutout, tracks, settings, embedder=embedder)
    given = judge(source, edited, masks_a, masks_b, cutout, tracks, settings, embedder=embedder,
                  product_embedding=-embedder.embed_images([edited[0]])[0])
    assert own.scores["identity_dinov2"] == pytest.approx(1.0, abs=1e-4)
    assert given.scores["identity_dinov2"] < 0.999


# -- synthesize: B's vector once per product ------------------------------------------------------------------------


def _pair_workspace(ws: Workspace, cutout: np.ndarray) -> list:
    """Two clips with their locate / segment / track / erase records and one product B with its cutout: two pairs
    of the same product."""
    from pvtt.pairing import PairItem

    y0, x0, y1, x1 = BOX
    ys, xs = np.meshgrid(np.linspace(y0 + 3, y1 - 3, 3), np.linspace(x0 + 3, x1 - 3, 3), indexing="ij")
    points = np.repeat(np.stack([xs.ravel(), ys.ravel()], axis=1)[None], T, axis=0).astype(np.float32)
    tracks = Tracks(points, np.ones(points.shape[:2], bool), ["feature"] * points.shape[1])
    (ws.root / "cutout/B").mkdir(parents=True)
    write_png(ws.root / "cutout/B/cutout.png", cutout)
    ws.write_record(ItemRecord("cutout", "B", "cut", Status.DONE, outputs={"cutout_path": "cutout/B/cutout.png"}))
    product = ProductItem("B", "cutout/B/cutout.png", "prod-B")
    pairs = []
    for n, clip_id in enumerate(("c0", "c1")):
        source, _, masks_a, _, _ = _scene(cutout)
        source = np.roll(source, 4 * n, axis=2)
        folder = ws.root / "clip" / clip_id
        folder.mkdir(parents=True)
        write_video(folder / "clip.mp4", source, 10.0, preset="ultrafast")
        write_video(folder / "background.mp4", source, 10.0, preset="ultrafast")
        artifacts.save_masks(folder / "masks.npz", masks_a)
        artifacts.save_tracks(folder / "tracks.npz", tracks)
        rel = f"clip/{clip_id}/"
        for stage, outputs in (("locate", {"box": [x0, y0, x1, y1], "confidence": 1.0, "source": "test"}),
                               ("segment", {"masks_path": rel + "masks.npz"}),
                               ("track", {"tracks_path": rel + "tracks.npz"}),
                               ("erase", {"background_path": rel + "background.mp4"})):
            ws.write_record(ItemRecord(stage, clip_id, f"{stage}-{clip_id}", Status.DONE, outputs=outputs))
        clip = ClipItem(clip_id, "tpl", rel + "clip.mp4", f"norm-{clip_id}", 10.0, W, H, T, 0, n, 0.0)
        pairs.append(PairItem(f"{clip_id}__B", clip, product, "easy", 1.0, "replace it"))
    return pairs


def test_synthesize_embeds_each_product_once_and_records_the_dinov2_identity(tmp_path, dino_dir, monkeypatch):
    import pvtt.judge.metrics as judge_metrics
    from pvtt.insert import InsertSettings
    from pvtt.propagate import PropagateSettings
    from pvtt.stages.pair import SynthesizeStage

    ws = Workspace(tmp_path / "ws")
    pairs = _pair_workspace(ws, _cutout())
    views = []
    original = judge_metrics.product_view
    monkeypatch.setattr(judge_metrics, "product_view", lambda rgba: views.append(1) or original(rgba))
    judge_settings = JudgeSettings(identity="dinov2", min_identity_dinov2=-1.0)
    stage = SynthesizeStage(ws, InsertSettings(), PropagateSettings(), judge_settings, embed=embed_settings(dino_dir))
    assert any(type(b).__name__ == "Dinov2Embedder" for b in stage.backends())
    records = [stage.process(pair) for pair in pairs]
    for record in records:
        assert record.status is not Status.FAILED, record.reason
        assert -1.0 <= record.metrics["scores"]["identity_dinov2"] <= 1.0
    assert len(views) == 1  # B embedded for the first pair, read from the cache for the second
    cached = list((ws.root / "embed_product" / "B").glob("*/embedding.npz"))
    assert len(cached) == 1
    # the embed settings enter the pair's key only when the judge uses them
    other = SynthesizeStage(ws, InsertSettings(), PropagateSettings(), judge_settings,
                            embed=embed_settings(dino_dir, pooling="mean"))
    assert other.key(pairs[0]) != records[0].key
    plain = SynthesizeStage(ws, InsertSettings(), PropagateSettings(), JudgeSettings(), embed=embed_settings(dino_dir))
    assert plain.embed_settings is None and len(plain.backends()) == 2
