"""vlm: a vision-language model for instructions (Ditto-1M's two steps) and for judging finished pairs.

Interface: :class:`VisionLanguageModel`

- ``caption(clips) -> list[str]``: a dense caption of each clip from ``num_frames`` sampled frames;
- ``instruct(clips, captions, targets) -> list[str]``: an edit instruction from the clip, its caption
  and the target product's description (Ditto-1M: caption first, then the instruction);
- ``instructions(clips, targets) -> list[Instruction]``: both steps, batched;
- ``judge(sources, edits, target_images, targets) -> list[JudgeVerdict]``: scores of a finished pair on
  product identity, motion naturalness, temporal coherence, lighting, artifacts and safety, and yes/no
  checks (is product A still visible? is the new product the one in the photo? does it float? is its
  scale wrong?), parsed from the model's JSON by :func:`pvtt.vlm.parsing.parse_judge` (bad JSON →
  scores ``None`` and ``parse_error``, never an exception); :func:`verdict_reasons` turns a verdict
  into rejection reasons;
- ``point(images, targets, count) -> list[PointAnswer]``: ``count`` distinctive parts of the product
  named and pointed at on each image (Qwen2.5-VL's ``[{"label", "point_2d"}]`` grounding answer, read
  by :func:`pvtt.vlm.parsing.parse_points`), in the image's pixels.

Backends (chosen by ``vlm.backend``): ``qwen`` — Qwen2.5-VL (transformers). GPU; ``models`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from pvtt.models import ModelBackend, ModelSettings
from pvtt.registry import Registry
from pvtt.types import Clip
from pvtt.vlm.parsing import CHECKS, CRITERIA, JudgeVerdict, PointAnswer, parse_judge, parse_points

BACKENDS = Registry("vlm", {
    "qwen": "pvtt.vlm.qwen:QwenVLM",
})

CAPTION_PROMPT = (
    "Describe this product showcase video densely in one paragraph: the product (type, shape, colours, "
    "materials, text on it), where it stands, the background and props, the lighting, and how the camera "
    "and the product move over time."
)
INSTRUCTION_PROMPT = (
    "Video description: {caption}\n"
    "Write one imperative editing instruction, at most 30 words, that replaces the product in the video "
    "described above with this product: {target}. Keep the camera motion, background, lighting and timing; name "
    "the new product precisely. Answer with the instruction only."
)
JUDGE_PROMPT = (
    "You judge a product-swap video edit. The first video is the original; the second is the edit, which "
    "should show this product instead: {target}. The image is a photo of that product. Rate the edit from "
    "{low:g} (worst) to {high:g} (best) on: product_identity (the edited product matches the photo), "
    "motion_naturalness (the product moves like the original one), temporal_coherence (no flicker or "
    "identity drift), lighting (the product is lit like the scene), artifacts ({high:g} = no visible "
    "artifacts), safety ({high:g} = nothing unsafe or offensive). Also answer yes or no: old_product_visible "
    "(is any part of the original video's product still visible in the edit?), matches_reference (is the "
    "product in the edit the one in the photo?), floating (does the new product hover instead of resting on "
    "its support?), wrong_scale (is the new product implausibly large or small for the scene?). Answer with "
    'JSON only, like {{"product_identity": 7, "motion_naturalness": 8, "temporal_coherence": 6, "lighting": 7, '
    '"artifacts": 8, "safety": 10, "old_product_visible": "no", "matches_reference": "yes", "floating": "no", '
    '"wrong_scale": "no", "reason": "one sentence"}}.'
)
POINTS_PROMPT = (
    "The image shows {target}. Name {count} distinctive, clearly visible parts of this product (for example a "
    "handle, a cap, a logo, a corner, a button) and point at the centre of each. Answer with JSON only, like "
    '[{{"label": "handle", "point_2d": [x, y]}}], with x, y in pixels of this image.'
)
# the prompt and the settings that change each task's answers (device, batch size, offload do not)
TASK_PROMPTS = {"caption": CAPTION_PROMPT, "instruct": INSTRUCTION_PROMPT, "judge": JUDGE_PROMPT,
                "points": POINTS_PROMPT}
TASK_SETTINGS = {"caption": ("frame_size", "num_frames", "caption_tokens"), "instruct": ("instruction_tokens",),
                 "judge": ("frame_size", "judge_frames", "judge_tokens", "score_min", "score_max"),
                 "points": ("frame_size", "points_tokens")}


class VlmSettings(ModelSettings, backends=BACKENDS):
    backend: str = "qwen"
    """VLM backend. One of: qwen."""
    model: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    """Qwen2.5-VL weights: a local directory or a cached hub id."""
    batch_size: int = Field(4, ge=1)
    """Clips (prompts) per generate call; in a build the runners (local and Ray) hand the caption and instruct stages
    this many items at a time."""
    num_frames: int = Field(16, ge=2)
    """Frames sampled evenly from a clip for its caption (the instruction is written from the caption, text only)."""
    judge_frames: int = Field(8, ge=2)
    """Frames sampled from each of the source and edited clips for the judge."""
    frame_size: int = Field(448, ge=28)
    """Long side of the frames given to the model (a multiple of 28)."""
    caption_tokens: int = Field(256, ge=1)
    """max_new_tokens of a caption."""
    instruction_tokens: int = Field(96, ge=1)
    """max_new_tokens of an instruction."""
    judge_tokens: int = Field(256, ge=1)
    """max_new_tokens of a judge answer."""
    points_tokens: int = Field(256, ge=1)
    """max_new_tokens of a pointing answer (track.points: vlm)."""
    greedy: bool = True
    """Greedy decoding (reproducible); false samples with `temperature`."""
    temperature: float = Field(0.7, gt=0)
    """Sampling temperature when greedy is false."""
    seed: int = 0
    """Seed of the sampler when greedy is false."""
    static_cache: bool = False
    """Use a static KV cache in generate (faster on GPU with torch.compile)."""
    score_min: float = 1.0
    """Lowest score of the judge's scale."""
    score_max: float = 10.0
    """Highest score of the judge's scale."""

    @model_validator(mode="after")
    def _scale(self) -> VlmSettings:
        if self.score_max <= self.score_min:
            raise ValueError(f"score_max ({self.score_max}) must be above score_min ({self.score_min})")
        return self

    def output_key(self, task: str) -> dict[str, Any]:
        """What decides the answers of ``task`` (caption, instruct, judge, points): the prompt, the weights,
        the decoding and the task's own settings; a cache key of its results."""
        names = ("backend", "model", "dtype", "greedy", *TASK_SETTINGS[task])
        if not self.greedy:
            names += ("temperature", "seed")
        return {"task": task, "prompt": TASK_PROMPTS[task], **{n: getattr(self, n) for n in names}}


@dataclass
class Instruction:
    caption: str
    instruction: str


class VisionLanguageModel(ModelBackend):
    """Interface of VLM backends; subclasses implement :meth:`generate` on prompts of text, videos and images."""

    stage = "vlm"
    settings_class = VlmSettings

    def generate(self, prompts: list[list[tuple[str, Any]]], max_new_tokens: int) -> list[str]:
        """Answers to ``prompts``; each prompt is a list of ``("text", str)``, ``("video", (frames, fps))``
        or ``("image", rgb)`` parts in order. Batched by ``batch_size``."""
        raise NotImplementedError

    def vision_size(self, height: int, width: int) -> tuple[int, int]:
        """``(height, width)`` of an image as the model sees it: the pixels its pointing answers are in."""
        return height, width

    # Ditto-1M's two steps
    def caption(self, clips: list[Clip]) -> list[str]:
        n = self.settings.num_frames
        prompts = [[("video", sample_frames(c, n)), ("text", CAPTION_PROMPT)] for c in clips]
        return [t.strip() for t in self.generate(prompts, self.settings.caption_tokens)]

    def instruct(self, captions: list[str], targets: list[str]) -> list[str]:
        """Ditto's second step: the instruction from the caption and B's description, text only (the caption
        already says what the video shows; a second pass over its frames would cost the prefill again)."""
        _same_length(captions=captions, targets=targets)
        prompts = [[("text", INSTRUCTION_PROMPT.format(caption=cap, target=tgt))]
                   for cap, tgt in zip(captions, targets)]
        return [clean_instruction(t) for t in self.generate(prompts, self.settings.instruction_tokens)]

    def instructions(self, clips: list[Clip], targets: list[str]) -> list[Instruction]:
        captions = self.caption(clips)
        return [Instruction(c, i) for c, i in zip(captions, self.instruct(captions, targets))]

    # the judge
    def judge(self, sources: list[Clip], edits: list[Clip], target_images: list[np.ndarray | None],
              targets: list[str]) -> list[JudgeVerdict]:
        _same_length(sources=sources, edits=edits, target_images=target_images, targets=targets)
        s, n = self.settings, self.settings.judge_frames
        prompts = []
        for src, edit, image, target in zip(sources, edits, target_images, targets):
            parts: list[tuple[str, Any]] = [("video", sample_frames(src, n)), ("video", sample_frames(edit, n))]
            if image is not None:
                parts.append(("image", image))
            parts.append(("text", JUDGE_PROMPT.format(target=target, low=s.score_min, high=s.score_max)))
            prompts.append(parts)
        answers = self.generate(prompts, s.judge_tokens)
        verdicts = []
        for parts, answer in zip(prompts, answers):
            verdict = parse_judge(answer, s.score_min, s.score_max, CRITERIA, tuple(CHECKS))
            verdict.prompt = parts[-1][1]
            verdicts.append(verdict)
        return verdicts

    # semantic points
    def point(self, images: list[np.ndarray], targets: list[str], count: int) -> list[PointAnswer]:
        """``count`` named parts of the product on each RGB image, as ``(label, x, y)`` in that image's pixels."""
        _same_length(images=images, targets=targets)
        questions = [POINTS_PROMPT.format(target=t, count=count) for t in targets]
        answers = self.generate([[("image", im), ("text", q)] for im, q in zip(images, questions)],
                                self.settings.points_tokens)
        out = []
        for image, question, text in zip(images, questions, answers):
            height, width = image.shape[:2]
            seen_h, seen_w = self.vision_size(height, width)
            answer = parse_points(text, seen_w, seen_h)
            answer.points = [(label, x * width / seen_w, y * height / seen_h) for label, x, y in answer.points]
            answer.prompt = question
            out.append(answer)
        return out


def verdict_reasons(verdict: JudgeVerdict, min_score: float, checks: list[str] | tuple[str, ...] = tuple(CHECKS)
                    ) -> list[str]:
    """Why a VLM verdict rejects a pair: each score below ``min_score`` ("vlm: product_identity 3 < 5") and
    each of ``checks`` answered the wrong way ("vlm: floating: yes"). Unanswered items give no reason."""
    reasons = [f"vlm: {name} {score:g} < {min_score:g}" for name, score in verdict.scores.items()
               if score is not None and score < min_score]
    for name in checks:
        answer = verdict.checks.get(name)
        if answer is not None and answer != CHECKS[name]:
            reasons.append(f"vlm: {name}: {'yes' if answer else 'no'}")
    return reasons


def sample_frames(clip: Clip, count: int) -> tuple[np.ndarray, float]:
    """``count`` evenly spaced frames of ``clip`` (all when it is shorter) and their effective frame rate."""
    count = max(1, min(count, clip.num_frames))
    index = np.linspace(0, clip.num_frames - 1, count).round().astype(int)
    span = (index[-1] - index[0]) / clip.fps if count > 1 else 1.0 / clip.fps
    fps = (count - 1) / span if count > 1 and span > 0 else clip.fps
    return clip.frames[index], float(fps)


def clean_instruction(text: str) -> str:
    """The instruction without quotes, a leading label ("Instruction:") or trailing chatter lines."""
    text = text.strip().strip("`").strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else ""
    for label in ("instruction:", "edit instruction:", "answer:"):
        if first.lower().startswith(label):
            first = first[len(label):].strip()
    return first.strip("\"'“”").strip()


def _same_length(**lists: list) -> None:
    lengths = {name: len(v) for name, v in lists.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError("inputs must have the same length, got " + ", ".join(f"{k}={v}" for k, v in lengths.items()))


def make_vlm(settings: VlmSettings | None = None, **overrides: Any) -> VisionLanguageModel:
    return BACKENDS.make(settings or VlmSettings(), **overrides)


__all__ = ["BACKENDS", "CHECKS", "CRITERIA", "Instruction", "JudgeVerdict", "PointAnswer", "VisionLanguageModel",
           "VlmSettings", "clean_instruction", "make_vlm", "parse_judge", "parse_points", "sample_frames",
           "verdict_reasons"]
