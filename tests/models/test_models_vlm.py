"""vlm: the judge's JSON parser on messy answers, and the Qwen2.5-VL backend end to end on a tiny model."""

from __future__ import annotations

import numpy as np
import pytest

from pvtt.vlm import VlmSettings, clean_instruction, make_vlm, sample_frames
from pvtt.vlm.parsing import CRITERIA, coerce_score, parse_json_object, parse_judge


@pytest.mark.parametrize("text", [
    '```json\n{"product_identity": 8, "lighting": 7}\n```',
    'Here is my rating:\n{"product_identity": 8, "lighting": 7}\nLet me know!',
    "{'product_identity': 8, 'lighting': 7,}",
    '{product_identity: "8/10", lighting: "7 out of 10"}',
    '{"scores": {"Product Identity": {"score": 8}, "lighting": "7"}, "reason": "fine"}',
])
def test_parser_reads_messy_answers(text):
    verdict = parse_judge(text, 1, 10)
    assert verdict.ok, verdict.parse_error
    assert verdict.scores["product_identity"] == 8 and verdict.scores["lighting"] == 7
    assert verdict.scores["safety"] is None and verdict.overall == 7.5


def test_scores_are_coerced_and_clamped_to_the_scale():
    verdict = parse_judge('{"motion": 14, "artifacts": -3, "safety": true, "temporal consistency": "0.5/1", '
                          '"overall": "9"}', 1, 10)
    assert verdict.scores["motion_naturalness"] == 10 and verdict.scores["artifacts"] == 1
    assert verdict.scores["safety"] == 10 and verdict.scores["temporal_coherence"] == pytest.approx(5.5)
    assert verdict.overall == 9
    assert coerce_score("n/a", 1, 10) is None and coerce_score(float("nan"), 1, 10) is None


@pytest.mark.parametrize("text,error", [
    ("I cannot rate this video.", "no JSON object"),
    ("{not json at all", "no valid JSON"),
    ('{"colour": "red"}', "none of the expected scores"),
    ("", "no JSON object"),
])
def test_unparseable_answers_fall_back_to_no_scores_with_a_reason(text, error):
    verdict = parse_judge(text)
    assert not verdict.ok and error in verdict.parse_error
    assert all(v is None for v in verdict.scores.values()) and verdict.overall is None
    assert set(verdict.scores) == set(CRITERIA)


def test_first_object_wins_and_braces_inside_strings_are_ignored():
    assert parse_json_object('x {"reason": "a } b", "lighting": 3} {"lighting": 9}') == {"reason": "a } b", "lighting": 3}


def test_instruction_cleanup():
    assert clean_instruction('Instruction: "Replace the mug with a red bottle."\nHope it helps') == \
        "Replace the mug with a red bottle."


def test_settings_reject_an_inverted_scale():
    with pytest.raises(ValueError, match="score_max"):
        VlmSettings(score_min=5, score_max=1)


def _tiny_vlm(**kw):
    from tiny_models import tiny_qwen, tiny_tokenizer

    vlm = make_vlm(VlmSettings(device="cpu", batch_size=2, num_frames=4, judge_frames=2, frame_size=56,
                               caption_tokens=6, instruction_tokens=5, judge_tokens=6, **kw))
    vlm.setup(model=tiny_qwen(), processor=tiny_tokenizer())
    return vlm


def test_qwen_two_step_instructions_and_batching_on_a_tiny_model():
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_models import tiny_clip

    vlm = _tiny_vlm()
    clips = [tiny_clip(num_frames=5, kind=k, seed=k) for k in range(3)]  # odd frame count: temporal padding
    result = vlm.instructions(clips, ["a red glass bottle", "a blue mug", "a green box"])
    assert len(result) == 3 and all(isinstance(r.caption, str) and isinstance(r.instruction, str) for r in result)
    # batching does not change greedy answers
    alone = vlm.caption(clips[:1])
    assert alone[0] == result[0].caption


def test_qwen_judge_with_garbage_text_falls_back():
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_models import tiny_clip

    vlm = _tiny_vlm()
    src, edit = tiny_clip(kind=0), tiny_clip(kind=1)
    photo = np.full((40, 30, 3), 200, np.uint8)
    verdicts = vlm.judge([src, src], [edit, edit], [photo, None], ["a green glass bottle"] * 2)
    assert len(verdicts) == 2
    for v in verdicts:
        assert not v.ok and v.parse_error and all(s is None for s in v.scores.values())


def test_qwen_judge_parses_the_models_json(monkeypatch):
    pytest.importorskip("torch")
    from tiny_models import tiny_clip

    vlm = _tiny_vlm()
    seen = {}

    def fake_generate(prompts, max_new_tokens):
        seen["parts"] = [kind for kind, _ in prompts[0]]
        return ['```json\n{"product_identity": 9, "motion_naturalness": 8, "temporal_coherence": 7, '
                '"lighting": 6, "artifacts": 5, "safety": 10, "reason": "ok"}\n```']

    monkeypatch.setattr(vlm, "generate", fake_generate)
    clip = tiny_clip()
    [verdict] = vlm.judge([clip], [clip], [np.zeros((8, 8, 3), np.uint8)], ["a mug"])
    assert seen["parts"] == ["video", "video", "image", "text"]
    assert verdict.ok and verdict.scores["product_identity"] == 9 and verdict.overall == pytest.approx(7.5)


def test_sample_frames_spreads_over_the_clip():
    from tiny_models import tiny_clip

    frames, fps = sample_frames(tiny_clip(num_frames=9), 3)
    assert len(frames) == 3 and fps == pytest.approx(20.0 / 4)


def test_qwen_loads_from_a_saved_directory(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_models import tiny_clip, tiny_qwen, tiny_tokenizer

    tiny_qwen().save_pretrained(tmp_path / "qwen")
    tiny_tokenizer().save_pretrained(tmp_path / "qwen")
    vlm = make_vlm(VlmSettings(model=str(tmp_path / "qwen"), device="cpu", num_frames=2, frame_size=56,
                               caption_tokens=3))
    vlm.setup()
    assert len(vlm.caption([tiny_clip()])) == 1
