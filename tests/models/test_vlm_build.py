"""The VLM in `pvtt build`: Ditto's caption → instruction steps (cached stages), the VLM judge combined with the
metric judge, and VLM-named points for the tracker. A tiny random Qwen2.5-VL is saved and loaded through the real
loader; its answers are gibberish, so realistic answers are canned by patching ``generate`` on the backend class."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from pvtt import artifacts
from pvtt.config import PipelineConfig, load_config
from pvtt.errors import ConfigError
from pvtt.items import ClipItem, ProductItem
from pvtt.media.image import write_png
from pvtt.media.video import write_video
from pvtt.models import ModelNotAvailable
from pvtt.pipeline import RunSummary
from pvtt.runners.local import LocalRunner
from pvtt.store import Workspace
from pvtt.types import ItemRecord, Masks, Status, Tracks
from pvtt.vlm import VlmSettings, make_vlm
from pvtt.vlm.parsing import parse_judge, parse_points

H, W, T = 48, 64, 6
MASK = (10, 16, 40, 50)  # y0, x0, y1, x1 of product A's first-frame mask
CAPTION = ("A white ceramic mug with a blue logo stands on a wooden table; the camera pans slowly to the left "
           "under soft daylight.")
INSTRUCTION = 'Instruction: "Replace the white mug with the red glass bottle, keeping the slow pan and the light."'
GOOD_JUDGE = ('```json\n{"product_identity": 8, "motion_naturalness": 7, "temporal_coherence": 8, "lighting": 7, '
              '"artifacts": 8, "safety": 10, "old_product_visible": "no", "matches_reference": "yes", '
              '"floating": "no", "wrong_scale": "no", "reason": "clean swap"}\n```')
BAD_IDENTITY = ('{"product_identity": 2, "motion_naturalness": 7, "temporal_coherence": 8, "lighting": 7, '
                '"artifacts": 8, "safety": 10, "old_product_visible": "no", "matches_reference": "no", '
                '"floating": "no", "wrong_scale": "no", "reason": "a different bottle"}')


# -- parsing ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,expected,coords", [
    ('```json\n[\n  {"point_2d": [120, 45], "label": "cap"},\n  {"point_2d": [98, 210], "label": "label"}\n]\n```',
     [("cap", 120, 45), ("label", 98, 210)], "absolute"),
    ('Here are the parts:\n[{"label": "handle", "point_2d": [30, 40]}]\nThe handle is on the right side.',
     [("handle", 30, 40)], "absolute"),
    ("[{'label': 'lid', 'point_2d': [10, 20],}]", [("lid", 10, 20)], "absolute"),
    ('{"points": [{"x": 11, "y": 22, "name": "logo"}, {"bbox_2d": [0, 0, 40, 20], "label": "base"}]}',
     [("logo", 11, 22), ("base", 20, 10)], "absolute"),
    ('[{"label": "cap", "point_2d": [10, 20]}, {"label": "ha', [("cap", 10, 20)], "absolute"),  # truncated
    ('{"handle": [50, 60], "spout": [70, 80]}', [("handle", 50, 60), ("spout", 70, 80)], "absolute"),
    # normalised: 0-1000 (a point beyond the 224x280 image, none beyond 1000) and 0-1
    ('[{"label": "cap", "point_2d": [500, 900]}, {"label": "base", "point_2d": [250, 100]}]',
     [("cap", 112, 252), ("base", 56, 28)], "norm1000"),
    ('[{"label": "cap", "point": [0.5, 0.25]}]', [("cap", 112, 70)], "norm1"),
])
def test_points_parser_reads_realistic_answers(text, expected, coords):
    answer = parse_points(text, 224, 280)
    assert answer.ok, answer.parse_error
    assert answer.coords == coords
    assert [(lab, round(x, 3), round(y, 3)) for lab, x, y in answer.points] == expected


def test_points_parser_drops_points_outside_and_never_raises():
    answer = parse_points('[{"label": "a", "point_2d": [10, 10]}, {"label": "b", "point_2d": [400, 10]}]', 224, 280,
                          coords="absolute")
    assert [p[0] for p in answer.points] == ["a"] and "b (400, 10): outside the 224x280 image" in answer.dropped
    for text in ("I cannot point at parts of this product.", "", "[{\"label\": \"cap\"}]"):
        bad = parse_points(text, 224, 280)
        assert not bad.ok and bad.points == [] and "no point" in bad.parse_error


def test_judge_parser_reads_the_yes_no_checks():
    verdict = parse_judge(GOOD_JUDGE.replace('"no", "matches', '"Yes, the mug is still there", "matches'))
    assert verdict.ok and verdict.checks == {"old_product_visible": True, "matches_reference": True,
                                             "floating": False, "wrong_scale": False}
    only_checks = parse_judge('{"floating": true}')  # checks alone are an answer, with no scores
    assert only_checks.ok and only_checks.checks["floating"] is True and only_checks.overall is None


# -- settings and missing weights ---------------------------------------------------------------------------------


def test_the_vlm_settings_load_and_bad_values_name_their_key():
    config = load_config(None, ["pairing.instruction=vlm", "judge.vlm=true", "judge.vlm_min_score=6",
                                "judge.vlm_checks=[floating]", "track.points=vlm", "track.min_vlm_points=2"])
    assert (config.pairing.instruction, config.judge.vlm, config.track.points) == ("vlm", True, "vlm")
    defaults = PipelineConfig()
    assert (defaults.pairing.instruction, defaults.judge.vlm, defaults.track.points) == ("template", False,
                                                                                         "features")
    for bad, key in (("pairing.instruction=llm", "pairing.instruction"), ("track.points=grid", "track.points"),
                     ("judge.vlm_checks=[wobbly]", "judge.vlm_checks")):
        with pytest.raises(ConfigError, match=key):
            load_config(None, [bad])


def test_missing_vlm_weights_stop_the_build_before_any_work(tmp_path):
    from pvtt.pipeline import build
    from pvtt.stages.vlm import check_vlm_weights

    missing = str(tmp_path / "no-such-qwen")
    check_vlm_weights(load_config(None, [f"vlm.model={missing}"]))  # nothing asks for the VLM: no check
    config = load_config(None, ["pairing.instruction=vlm", "judge.vlm=true", f"vlm.model={missing}"])
    with pytest.raises(ModelNotAvailable, match=r"pairing.instruction: vlm, judge.vlm: true needs the VLM.*"
                                                r"does not exist"):
        build(tmp_path / "no-catalog", tmp_path / "out", config)  # raised before the catalog is even read
    assert not (tmp_path / "out").exists()


# -- the tiny Qwen through the real loader ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_models import tiny_qwen, tiny_tokenizer

    path = tmp_path_factory.mktemp("qwen") / "tiny-qwen"
    tiny_qwen().save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return path


def vlm_settings(qwen_dir, **kw) -> VlmSettings:
    base = dict(model=str(qwen_dir), device="cpu", num_frames=2, judge_frames=2, frame_size=56, caption_tokens=4,
                instruction_tokens=4, judge_tokens=3, points_tokens=4)
    return VlmSettings(**{**base, **kw})


def canned(monkeypatch, answers: dict[str, str]) -> list:
    """Patch ``QwenVLM.generate``: the answer whose key starts the prompt's text; returns the prompts seen."""
    from pvtt.vlm.qwen import QwenVLM

    seen = []

    def generate(self, prompts, max_new_tokens):
        assert self.ready, "generate before setup"
        out = []
        for parts in prompts:
            seen.append(parts)
            text = parts[-1][1]
            out.append(next(v(self, parts) if callable(v) else v for k, v in answers.items() if text.startswith(k)))
        return out

    monkeypatch.setattr(QwenVLM, "generate", generate)
    return seen


def count_loads(monkeypatch) -> list:
    from pvtt.vlm.qwen import QwenVLM

    calls, original = [], QwenVLM.load

    def load(self):
        calls.append(1)
        return original(self)

    monkeypatch.setattr(QwenVLM, "load", load)
    return calls


def write_clip(ws: Workspace, clip_id: str = "c0", kind: int = 0, **meta) -> ClipItem:
    from tiny_models import tiny_clip

    folder = ws.root / "clips"
    folder.mkdir(parents=True, exist_ok=True)
    write_video(folder / f"{clip_id}.mp4", tiny_clip(num_frames=T, height=H, width=W, kind=kind).frames, 20.0,
                preset="ultrafast")
    return ClipItem(clip_id, "tpl", f"clips/{clip_id}.mp4", f"norm-{clip_id}", 20.0, W, H, T, 0, 0, 0.0, **meta)


def write_masks(ws: Workspace, clip_id: str) -> Masks:

    y0, x0, y1, x1 = MASK
    data = np.zeros((T, H, W), bool)
    data[:, y0:y1, x0:x1] = True
    masks = Masks(data)
    (ws.root / "seg").mkdir(exist_ok=True)
    artifacts.save_masks(ws.root / f"seg/{clip_id}.npz", masks)
    ws.write_record(ItemRecord("segment", clip_id, f"seg-{clip_id}", Status.DONE,
                               outputs={"masks_path": f"seg/{clip_id}.npz"}))
    return masks


# -- Ditto's two steps ----------------------------------------------------------------------------------------------


def test_vlm_instructions_come_from_caption_then_instruct_and_a_rerun_loads_nothing(tmp_path, qwen_dir, monkeypatch):
    from pvtt.export import pair_rows
    from pvtt.pairing import PairItem
    from pvtt.stages.vlm import CaptionStage, InstructStage, vlm_instructions

    ws = Workspace(tmp_path / "ws")
    clip = write_clip(ws, description="a white ceramic mug")
    products = [ProductItem("B", "b.png", "kb", "kitchen", "bottle", "a red glass bottle"),
                ProductItem("C", "c.png", "kc", "home", "vase", None)]
    pairs = [PairItem(f"c0__{p.id}", clip, p, "medium", 0.5, "template instruction") for p in products]
    config = load_config(None, ["pairing.instruction=vlm", "runner.progress=false"]).model_copy(
        update={"vlm": vlm_settings(qwen_dir)})
    loads = count_loads(monkeypatch)
    seen = canned(monkeypatch, {"Describe this product": CAPTION, "Video description:": INSTRUCTION})
    summary = RunSummary(ws.root)
    out = vlm_instructions(ws, config, LocalRunner(progress=False), summary, pairs)
    # one load for both stages (they share the backend), one caption for the clip, one instruction per pair
    assert len(loads) == 1 and len(seen) == 3
    assert [p.instruction for p in out] == ["Replace the white mug with the red glass bottle, keeping the slow pan "
                                            "and the light."] * 2
    assert all(p.caption == CAPTION for p in out) and summary.counts["instruct"]["done"] == 2
    # the instruction's prompt is text only (Ditto's second step): the caption and B's description (or subcategory)
    kinds, texts = [[k for k, _ in parts] for parts in seen[1:]], [parts[-1][1] for parts in seen[1:]]
    assert kinds == [["text"]] * 2
    assert CAPTION in texts[0] and "a red glass bottle" in texts[0] and "with this product: vase." in texts[1]
    caption_file = ws.abs(ws.read_record("caption", "c0").outputs["caption_path"])
    assert json.loads(caption_file.read_text())["caption"] == CAPTION
    keys = {p.id: ws.read_record("instruct", p.id).key for p in pairs}

    # a re-run reads every record: no load, no generate, the same instructions and keys
    monkeypatch.setattr("pvtt.vlm.qwen.QwenVLM.generate", lambda *a: pytest.fail("generate on a cached re-run"))
    again = vlm_instructions(ws, config, LocalRunner(progress=False), RunSummary(ws.root), pairs)
    assert len(loads) == 1 and [p.instruction for p in again] == [p.instruction for p in out]
    assert {p.id: ws.read_record("instruct", p.id).key for p in pairs} == keys
    # what decides an answer is in the key; what does not (device, batch size) is not
    assert InstructStage(ws, config.vlm.model_copy(update={"instruction_tokens": 9})).key(pairs[0]) != keys["c0__B"]
    assert CaptionStage(ws, config.vlm.model_copy(update={"batch_size": 8})).key(clip) == \
        ws.read_record("caption", "c0").key
    assert InstructStage(ws, config.vlm.model_copy(update={"frame_size": 224})).key(pairs[0]) == keys["c0__B"]
    renamed = PairItem("c0__B", clip, ProductItem("B", "b.png", "kb", description="a blue bottle"), "medium", 0.5, "")
    assert InstructStage(ws, config.vlm).key(renamed) != keys["c0__B"]

    # the caption is in the pair's export row (replace mode only: it describes the real clip)
    ws.write_record(ItemRecord("synthesize", out[0].id, "k", Status.DONE, metrics={"scores": {}}))
    [row] = pair_rows(ws, out[:1], config)
    assert row["caption"] == CAPTION and row["instruction"] == out[0].instruction


def test_an_empty_vlm_instruction_leaves_the_pair_out_with_a_reason(tmp_path, qwen_dir, monkeypatch):
    from pvtt.pairing import PairItem
    from pvtt.stages.vlm import vlm_instructions

    ws = Workspace(tmp_path / "ws")
    clip = write_clip(ws)
    pair = PairItem("c0__B", clip, ProductItem("B", "b.png", "kb", description="a bottle"), "easy", 1.0, "t")
    config = PipelineConfig().model_copy(update={"vlm": vlm_settings(qwen_dir)})
    canned(monkeypatch, {"Describe this product": CAPTION, "Video description:": '""\n'})
    assert vlm_instructions(ws, config, LocalRunner(progress=False), RunSummary(ws.root), [pair]) == []
    record = ws.read_record("instruct", pair.id)
    assert record.status is Status.REJECTED and record.reason == "the VLM gave an empty instruction"


# -- the VLM judge with the metric judge ----------------------------------------------------------------------------


LENIENT = dict(min_background_psnr=0.0, min_background_ssim=-1.0, max_temporal_ratio=1e9, min_identity=0.0,
               max_motion_error=1e9, max_remnant=1.0, min_fill_texture=0.0, max_floating=1.0, stride=1)


def pair_workspace(ws: Workspace) -> object:
    """One clip with its locate / segment / track / erase records and product B's cutout: a pair to synthesize."""
    from pvtt.pairing import PairItem

    clip = write_clip(ws)
    write_masks(ws, "c0")
    y0, x0, y1, x1 = MASK
    points = np.repeat(np.array([[24.0, 20.0], [40.0, 30.0], [30.0, 35.0]], np.float32)[None], T, axis=0)
    artifacts.save_tracks(ws.root / "seg/tracks.npz", Tracks(points, np.ones((T, 3), bool), ["feature"] * 3))
    cutout = np.zeros((y1 - y0, x1 - x0, 4), np.uint8)
    cutout[..., 0], cutout[..., 3] = 200, 255
    write_png(ws.root / "seg/cutout.png", cutout)
    for stage, outputs in (("locate", {"box": [x0, y0, x1, y1], "confidence": 1.0, "source": "test"}),
                           ("track", {"tracks_path": "seg/tracks.npz"}), ("erase", {"background_path": clip.path}),
                           ("cutout", {"cutout_path": "seg/cutout.png"})):
        ws.write_record(ItemRecord(stage, "B" if stage == "cutout" else "c0", stage, Status.DONE, outputs=outputs))
    return PairItem("c0__B", clip, ProductItem("B", "seg/cutout.png", "kb", description="a red glass bottle"),
                    "easy", 1.0, "Replace the mug with the red glass bottle.")


def synthesize(ws, pair, qwen_dir, **judge):
    from pvtt.insert import InsertSettings
    from pvtt.judge import JudgeSettings
    from pvtt.propagate import PropagateSettings
    from pvtt.stages.pair import SynthesizeStage

    stage = SynthesizeStage(ws, InsertSettings(), PropagateSettings(), JudgeSettings(**{**LENIENT, **judge}),
                            vlm=vlm_settings(qwen_dir))
    return stage, stage.process(pair)


def test_the_vlm_judge_rejects_a_pair_the_metrics_keep_and_keeps_its_question_and_answer(tmp_path, qwen_dir,
                                                                                          monkeypatch):
    ws = Workspace(tmp_path / "ws")
    pair = pair_workspace(ws)
    # the metric judge alone keeps this pair (the precondition of the test)
    _, plain = synthesize(ws, pair, qwen_dir)
    assert plain.status is Status.DONE, plain.reason
    seen = canned(monkeypatch, {"You judge a product-swap": BAD_IDENTITY})
    stage, record = synthesize(ws, pair, qwen_dir, vlm=True)
    assert record.status is Status.REJECTED
    assert record.reason == "vlm: product_identity 2 < 5; vlm: matches_reference: no"
    assert record.metrics["reasons"] == ["vlm: product_identity 2 < 5", "vlm: matches_reference: no"]
    assert record.metrics["scores"]["vlm_product_identity"] == 2 and "background_psnr" in record.metrics["scores"]
    assert record.metrics["vlm_answer"] == BAD_IDENTITY and record.metrics["vlm_question"] == seen[0][-1][1]
    assert "a red glass bottle" in record.metrics["vlm_question"]
    assert record.metrics["vlm_checks"]["matches_reference"] is False
    # the source, the edit and B's photo reach the model
    assert [k for k, _ in seen[0]] == ["video", "video", "image", "text"] and seen[0][2][1].shape[-1] == 3
    assert record.key != plain.key and "edited_path" in record.outputs  # the video is kept for the review
    # a good answer keeps the pair; the checks that are switched off do not reject
    canned(monkeypatch, {"You judge a product-swap": GOOD_JUDGE})
    _, good = synthesize(ws, pair, qwen_dir, vlm=True, vlm_min_score=7.5)
    assert good.status is Status.REJECTED and good.reason == "vlm: motion_naturalness 7 < 7.5; vlm: lighting 7 < 7.5"
    canned(monkeypatch, {"You judge a product-swap": BAD_IDENTITY})
    _, lenient = synthesize(ws, pair, qwen_dir, vlm=True, vlm_min_score=1, vlm_checks=["floating"])
    assert lenient.status is Status.DONE and lenient.metrics["scores"]["vlm_overall"] == pytest.approx(42 / 6, 1e-3)


def test_a_vlm_answer_that_cannot_be_read_leaves_the_pair_to_the_metric_judge(tmp_path, qwen_dir):
    ws = Workspace(tmp_path / "ws")
    pair = pair_workspace(ws)
    # the tiny random model's real answer (3 tokens): never a JSON object with a score
    stage, record = synthesize(ws, pair, qwen_dir, vlm=True)
    assert stage._vlm.ready  # loaded through the real loader from the saved directory
    assert record.status is Status.DONE, record.reason
    assert record.metrics["vlm_error"].startswith("not judged by the VLM: ")
    assert "vlm_answer" in record.metrics and "You judge a product-swap" in record.metrics["vlm_question"]
    assert not any(k.startswith("vlm_") for k in record.metrics["scores"])


def test_vlm_stages_pickle_without_weights(tmp_path, qwen_dir):
    from pvtt.insert import InsertSettings
    from pvtt.judge import JudgeSettings
    from pvtt.propagate import PropagateSettings
    from pvtt.stages.pair import SynthesizeStage
    from pvtt.stages.vlm import CaptionStage, InstructStage, PointsStage
    from pvtt.track import TrackSettings

    ws, settings = Workspace(tmp_path), vlm_settings(qwen_dir)
    for stage in (CaptionStage(ws, settings), InstructStage(ws, settings), PointsStage(ws, TrackSettings(), settings),
                  SynthesizeStage(ws, InsertSettings(), PropagateSettings(), JudgeSettings(vlm=True), vlm=settings)):
        copy = pickle.loads(pickle.dumps(stage))
        assert [b.settings for b in copy.backends()] == [b.settings for b in stage.backends()]
        assert not any(getattr(b, "ready", False) for b in copy.backends())
    assert len(SynthesizeStage(ws, InsertSettings(), PropagateSettings(), JudgeSettings()).backends()) == 2


# -- VLM points for the tracker -------------------------------------------------------------------------------------


def test_vlm_points_are_scaled_back_from_what_the_model_saw(qwen_dir, monkeypatch):
    vlm = make_vlm(vlm_settings(qwen_dir))
    vlm.setup()
    image = np.zeros((48, 64, 3), np.uint8)
    assert vlm.vision_size(48, 64) == (56, 56)  # long side 56, both sides multiples of 28
    canned(monkeypatch, {"The image shows": '```json\n[{"label": "cap", "point_2d": [28, 14]}]\n```'})
    [answer] = vlm.point([image], ["a mug"], 4)
    assert answer.points == [("cap", pytest.approx(32.0), pytest.approx(12.0))]
    assert "Name 4 distinctive" in answer.prompt and "a mug" in answer.prompt


def _crop_answer(fractions):
    """An absolute-pixel answer at fractions of the crop the model was shown (as it saw it)."""
    def answer(self, parts):
        h, w = parts[0][1].shape[:2]
        sh, sw = self.vision_size(h, w)
        return json.dumps([{"label": f"part {i}", "point_2d": [round(fx * sw, 1), round(fy * sh, 1)]}
                           for i, (fx, fy) in enumerate(fractions)])
    return answer


def test_the_tracker_follows_the_vlm_points_inside_the_mask(tmp_path, qwen_dir, monkeypatch):
    from pvtt.stages.clip import TrackStage
    from pvtt.stages.vlm import PointsStage
    from pvtt.track import TrackSettings

    ws = Workspace(tmp_path / "ws")
    clip = write_clip(ws, description="a mug")
    write_masks(ws, "c0")
    settings = TrackSettings(points="vlm", num_points=8, min_vlm_points=3)
    # three parts on the product, one on the background left of it (the crop's margin)
    canned(monkeypatch, {"The image shows": _crop_answer([(0.3, 0.3), (0.5, 0.5), (0.7, 0.6), (0.03, 0.5)])})
    points = PointsStage(ws, settings, vlm_settings(qwen_dir)).process(clip)
    assert points.status is Status.DONE and points.metrics["num_points"] == 3 and points.metrics["dropped"] == 1
    saved = json.loads(ws.abs(points.outputs["points_path"]).read_text())
    assert "outside the product mask" in saved["dropped"][0] and saved["answer"].startswith("[")
    x0, y0, x1, y1 = saved["crop"]
    expected = [(x0 + fx * (x1 - x0), y0 + fy * (y1 - y0)) for fx, fy in [(0.3, 0.3), (0.5, 0.5), (0.7, 0.6)]]
    assert np.allclose([[p["x"], p["y"]] for p in saved["points"]], expected, atol=0.6)
    track = TrackStage(ws, settings).process(clip)
    assert track.status is Status.DONE and track.metrics["points_source"] == "vlm", track.metrics
    tracks = artifacts.tracks(ws, "c0")
    assert tracks.labels[:3] == ["vlm:part 0", "vlm:part 1", "vlm:part 2"] and tracks.num_points == 8
    assert np.allclose(tracks.points[0, :3], [[p["x"], p["y"]] for p in saved["points"]], atol=1e-3)
    assert "extremal" in tracks.labels and "feature" in tracks.labels  # features fill up to num_points
    assert TrackStage(ws, TrackSettings(num_points=8)).key(clip) != track.key  # the points enter the key


def test_too_few_vlm_points_fall_back_to_features_with_the_reason(tmp_path, qwen_dir, monkeypatch):
    from pvtt.stages.clip import TrackStage
    from pvtt.stages.vlm import PointsStage
    from pvtt.track import TrackSettings

    ws = Workspace(tmp_path / "ws")
    clip = write_clip(ws)
    write_masks(ws, "c0")
    settings = TrackSettings(points="vlm", num_points=8, min_vlm_points=3)
    canned(monkeypatch, {"The image shows": "I see a mug, but I cannot give coordinates."})
    points = PointsStage(ws, settings, vlm_settings(qwen_dir)).process(clip)
    assert points.status is Status.DONE and points.metrics == {"num_points": 0, "dropped": 0, "coords": "",
                                                               "parse_error": "no point in the model's answer"}
    track = TrackStage(ws, settings).process(clip)
    assert track.metrics["points_source"] == "features"
    assert track.metrics["points_fallback"] == ("the VLM gave 0 points inside the mask, fewer than "
                                                "track.min_vlm_points 3 (no point in the model's answer)")
    labels = artifacts.tracks(ws, "c0").labels
    assert set(labels) == {"feature", "extremal"}
    # no points record at all (the stage never ran): features, and why
    ws2 = Workspace(tmp_path / "ws2")
    clip2 = write_clip(ws2)
    write_masks(ws2, "c0")
    assert TrackStage(ws2, settings).process(clip2).metrics["points_fallback"] == "no points record"


def test_captions_and_instructions_are_batched_across_items_by_vlm_batch_size(tmp_path, qwen_dir, monkeypatch):
    """The runner hands the caption and instruct stages ``vlm.batch_size`` items at a time and each stage asks
    the VLM once per batch; an unreadable clip fails alone, the others of its batch are answered."""
    from pvtt.pairing import PairItem
    from pvtt.stages.vlm import CaptionStage, InstructStage

    ws = Workspace(tmp_path / "ws")
    clips = [write_clip(ws, f"c{i}", kind=i % 2) for i in range(3)]
    broken = ClipItem("c9", "tpl", "clips/missing.mp4", "norm-c9", 20.0, W, H, T, 0, 0, 0.0)
    calls = []
    seen = canned(monkeypatch, {"Describe this product": CAPTION, "Video description:": INSTRUCTION})
    from pvtt.vlm.qwen import QwenVLM

    batched = QwenVLM.generate

    def generate(self, prompts, max_new_tokens):
        calls.append(len(prompts))
        return batched(self, prompts, max_new_tokens)

    monkeypatch.setattr(QwenVLM, "generate", generate)
    settings = vlm_settings(qwen_dir, batch_size=2)
    captions = CaptionStage(ws, settings)
    records = LocalRunner(workers=1, progress=False).run(captions, [clips[0], broken, *clips[1:]])
    assert calls == [1, 2]  # [c0, c9 (unreadable)], [c1, c2]
    assert [r.status for r in records] == [Status.DONE, Status.FAILED, Status.DONE, Status.DONE]
    assert records[0].metrics["batch"] == 2 and records[2].metrics["batch"] == 2
    assert all(json.loads(ws.abs(r.outputs["caption_path"]).read_text())["caption"] == CAPTION
               for r in records if r.status is Status.DONE)

    products = [ProductItem(p, f"{p}.png", f"k{p}", "home", "vase", f"a {p} vase") for p in ("B", "C", "D")]
    pairs = [PairItem(f"{c.id}__{p.id}", c, p, "medium", 0.5, "") for c in clips for p in products]  # 9 pairs
    calls.clear()
    records = LocalRunner(workers=1, progress=False).run(InstructStage(ws, settings, backend=captions.backend), pairs)
    assert calls == [2, 2, 2, 2, 1] and all(r.status is Status.DONE for r in records)
    assert [r.outputs["instruction"] for r in records] == [records[0].outputs["instruction"]] * 9
    texts = [parts[-1][1] for parts in seen[-9:]]
    assert [p.product.description in t for p, t in zip(pairs, texts)] == [True] * 9  # each answer its own pair
    # cached on a re-run: no VLM call
    calls.clear()
    LocalRunner(workers=1, progress=False).run(InstructStage(ws, settings, backend=captions.backend), pairs)
    assert calls == []
