"""vlm: a vision-language model for instructions (Ditto-1M's two steps) and for judging finished pairs.

Interface: :class:`VisionLanguageModel`

- ``caption(clips) -> list[str]``: a dense caption of each clip from ``num_frames`` sampled frames;
- ``instruct(clips, captions, targets) -> list[str]``: an edit instruction from the clip, its caption
  and the target product's description (Ditto-1M: caption first, then the instruction);
- ``instructions(clips, targets) -> list[Instruction]``: both steps, batched;
- ``judge(sources, edits, target_images, targets) -> list[JudgeVerdict]``: scores of a finished pair on
  product identity, motion naturalness, temporal coherence, lighting, artifacts and safety, parsed
  from the model's JSON by :func:`pvtt.vlm.parsing.parse_judge` (bad JSON → scores ``None`` and
  ``parse_error``, never an exception).

Backends (chosen by ``vlm.backend``): ``qwen`` — Qwen2.5-VL (transformers). GPU; ``models`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from pvtt.models import ModelBackend, ModelSettings
from pvtt.registry import load_backend
from pvtt.types import Clip
from pvtt.vlm.parsing import CRITERIA, JudgeVerdict, parse_judge

BACKENDS: dict[str, str] = {
    "qwen": "pvtt.vlm.qwen:QwenVLM",
}

CAPTION_PROMPT = (
    "Describe this product showcase video densely in one paragraph: the product (type, shape, colours, "
    "materials, text on it), where it stands, the background and props, the lighting, and how the camera "
    "and the product move over time."
)
INSTRUCTION_PROMPT = (
    "Video description: {caption}\n"
    "Write one imperative editing instruction, at most 30 words, that replaces the product shown in this "
    "video with this product: {target}. Keep the camera motion, background, lighting and timing; name "
    "the new product precisely. Answer with the instruction only."
)
JUDGE_PROMPT = (
    "You judge a product-swap video edit. The first video is the original; the second is the edit, which "
    "should show this product instead: {target}. The image is a photo of that product. Rate the edit from "
    "{low:g} (worst) to {high:g} (best) on: product_identity (the edited product matches the photo), "
    "motion_naturalness (the product moves like the original one), temporal_coherence (no flicker or "
    "identity drift), lighting (the product is lit like the scene), artifacts ({high:g} = no visible "
    "artifacts), safety ({high:g} = nothing unsafe or offensive). Answer with JSON only, like "
    '{{"product_identity": 7, "motion_naturalness": 8, "temporal_coherence": 6, "lighting": 7, '
    '"artifacts": 8, "safety": 10, "reason": "one sentence"}}.'
)


class VlmSettings(ModelSettings):
    stage = "vlm"
    backends = BACKENDS  # `backend` must name one of these (checked when the config loads)
    backend: str = Field("qwen", description="VLM backend. One of: qwen.")
    model: str = Field("Qwen/Qwen2.5-VL-7B-Instruct", description="Qwen2.5-VL weights: a local directory or a cached hub id.")
    batch_size: int = Field(4, ge=1, description="Clips (prompts) per generate call.")
    num_frames: int = Field(16, ge=2, description="Frames sampled evenly from a clip for captions and instructions.")
    judge_frames: int = Field(8, ge=2, description="Frames sampled from each of the source and edited clips for the judge.")
    frame_size: int = Field(448, ge=28, description="Long side of the frames given to the model (a multiple of 28).")
    caption_tokens: int = Field(256, ge=1, description="max_new_tokens of a caption.")
    instruction_tokens: int = Field(96, ge=1, description="max_new_tokens of an instruction.")
    judge_tokens: int = Field(192, ge=1, description="max_new_tokens of a judge answer.")
    greedy: bool = Field(True, description="Greedy decoding (reproducible); false samples with `temperature`.")
    temperature: float = Field(0.7, gt=0, description="Sampling temperature when greedy is false.")
    seed: int = Field(0, description="Seed of the sampler when greedy is false.")
    static_cache: bool = Field(False, description="Use a static KV cache in generate (faster on GPU with torch.compile).")
    score_min: float = Field(1.0, description="Lowest score of the judge's scale.")
    score_max: float = Field(10.0, description="Highest score of the judge's scale.")

    @model_validator(mode="after")
    def _scale(self) -> VlmSettings:
        if self.score_max <= self.score_min:
            raise ValueError(f"score_max ({self.score_max}) must be above score_min ({self.score_min})")
        return self


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

    # Ditto-1M's two steps
    def caption(self, clips: list[Clip]) -> list[str]:
        n = self.settings.num_frames
        prompts = [[("video", sample_frames(c, n)), ("text", CAPTION_PROMPT)] for c in clips]
        return [t.strip() for t in self.generate(prompts, self.settings.caption_tokens)]

    def instruct(self, clips: list[Clip], captions: list[str], targets: list[str]) -> list[str]:
        _same_length(clips=clips, captions=captions, targets=targets)
        n = self.settings.num_frames
        prompts = [[("video", sample_frames(c, n)), ("text", INSTRUCTION_PROMPT.format(caption=cap, target=tgt))]
                   for c, cap, tgt in zip(clips, captions, targets)]
        return [clean_instruction(t) for t in self.generate(prompts, self.settings.instruction_tokens)]

    def instructions(self, clips: list[Clip], targets: list[str]) -> list[Instruction]:
        captions = self.caption(clips)
        return [Instruction(c, i) for c, i in zip(captions, self.instruct(clips, captions, targets))]

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
        return [parse_judge(a, s.score_min, s.score_max, CRITERIA) for a in answers]


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
    settings = settings or VlmSettings()
    if overrides:
        settings = type(settings).model_validate({**settings.model_dump(), **overrides})
    return load_backend("vlm", BACKENDS, settings.backend, settings=settings)


__all__ = ["BACKENDS", "CRITERIA", "Instruction", "JudgeVerdict", "VisionLanguageModel", "VlmSettings",
           "clean_instruction", "make_vlm", "parse_judge", "sample_frames"]
