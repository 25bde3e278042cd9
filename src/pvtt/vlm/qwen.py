"""Qwen2.5-VL (transformers ``Qwen2_5_VLForConditionalGeneration``): captions, instructions, judging.

Frames are resized and cut into Qwen's vision patches here, on the model's device (the layout of
``Qwen2VLVideoProcessor.patchify``), so only the tokenizer is loaded besides the model and no
torchvision is needed. A prompt is the chat template written out: system turn, user turn with the
vision blocks (``<|vision_start|>`` + one pad token per merged patch + ``<|vision_end|>``) and the
text, then the assistant turn. Prompts are left-padded and generated in batches of ``batch_size``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pvtt.models.loading import batches, load_pretrained
from pvtt.models.preprocess import frames_to_tensor, resize_normalize
from pvtt.vlm import VisionLanguageModel

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
ASSISTANT = "<|im_end|>\n<|im_start|>assistant\n"


class QwenVLM(VisionLanguageModel):
    name = "qwen"

    def load(self) -> tuple[Any, Any]:
        from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

        s = self.settings
        model = load_pretrained(Qwen2_5_VLForConditionalGeneration, s.model, s.allow_download, self.stage,
                                dtype=self.dtype)
        tokenizer = load_pretrained(AutoTokenizer, s.model, s.allow_download, self.stage)
        return model, tokenizer

    # 1. vision inputs
    def vision_size(self, height: int, width: int) -> tuple[int, int]:
        """Long side ``frame_size``, both sides rounded to a multiple of patch × merge size (28 for Qwen2.5-VL)."""
        self._require_setup()
        vision = self.model.config.vision_config
        factor = vision.patch_size * vision.spatial_merge_size
        scale = self.settings.frame_size / max(height, width)
        return (max(factor, int(round(height * scale / factor)) * factor),
                max(factor, int(round(width * scale / factor)) * factor))

    def _patches(self, frames: np.ndarray, fps: float, image: bool) -> tuple[Any, list[int], float, int]:
        """Qwen vision patches of ``frames``: ``(patches, [t, h, w] grid, seconds per temporal patch, tokens)``."""
        import torch

        vision = self.model.config.vision_config
        ps, ms, tp = vision.patch_size, vision.spatial_merge_size, vision.temporal_patch_size
        new_h, new_w = self.vision_size(*frames.shape[1:3])
        video = resize_normalize(frames_to_tensor(frames, self.device), (new_h, new_w), torch.float32,
                                 CLIP_MEAN, CLIP_STD)
        if image:
            video = video[:1].expand(tp, -1, -1, -1)
        if pad := -len(video) % tp:
            video = torch.cat([video, video[-1:].expand(pad, -1, -1, -1)])
        gt, gh, gw = len(video) // tp, new_h // ps, new_w // ps
        patches = video.reshape(gt, tp, 3, gh // ms, ms, ps, gw // ms, ms, ps)
        patches = patches.permute(0, 3, 6, 4, 7, 2, 1, 5, 8).reshape(gt * gh * gw, 3 * tp * ps * ps)
        return patches.to(self.dtype), [gt, gh, gw], tp / fps, gt * gh * gw // (ms * ms)

    # 2. one prompt → token ids and its vision tensors
    def _encode(self, parts: list[tuple[str, Any]]) -> dict[str, Any]:
        config, tok = self.model.config, self.processor
        ids: list[int] = tok(SYSTEM, add_special_tokens=False)["input_ids"]
        enc: dict[str, Any] = {"videos": [], "video_grid": [], "seconds": [], "images": [], "image_grid": []}
        for kind, value in parts:
            if kind == "text":
                ids += tok(value, add_special_tokens=False)["input_ids"]
            elif kind in ("video", "image"):
                frames, fps = (value[None], 1.0) if kind == "image" else value
                patches, grid, seconds, tokens = self._patches(np.asarray(frames), fps, image=kind == "image")
                pad_id = config.video_token_id if kind == "video" else config.image_token_id
                ids += [config.vision_start_token_id] + [pad_id] * tokens + [config.vision_end_token_id]
                if kind == "video":
                    enc["videos"].append(patches)
                    enc["video_grid"].append(grid)
                    enc["seconds"].append(seconds)
                else:
                    enc["images"].append(patches)
                    enc["image_grid"].append(grid)
            else:
                raise ValueError(f"unknown prompt part {kind!r} (expected text, video or image)")
        ids += tok(ASSISTANT, add_special_tokens=False)["input_ids"]
        enc["ids"] = ids
        return enc

    # 3. batched generation
    def generate(self, prompts: list[list[tuple[str, Any]]], max_new_tokens: int) -> list[str]:
        import torch

        self._require_setup()
        s, tok = self.settings, self.processor
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        answers: list[str] = []
        for sl in batches(len(prompts), s.batch_size):
            with torch.inference_mode():
                encoded = [self._encode(p) for p in prompts[sl]]
                length = max(len(e["ids"]) for e in encoded)
                ids = torch.full((len(encoded), length), pad_id, dtype=torch.long)
                mask = torch.zeros((len(encoded), length), dtype=torch.long)
                for row, e in enumerate(encoded):  # left padding: the answers start at one column
                    ids[row, length - len(e["ids"]):] = torch.tensor(e["ids"])
                    mask[row, length - len(e["ids"]):] = 1
                inputs: dict[str, Any] = {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device)}
                videos = [v for e in encoded for v in e["videos"]]
                if videos:
                    inputs["pixel_values_videos"] = torch.cat(videos)
                    inputs["video_grid_thw"] = torch.tensor([g for e in encoded for g in e["video_grid"]],
                                                            device=self.device)
                    inputs["second_per_grid_ts"] = torch.tensor([x for e in encoded for x in e["seconds"]],
                                                                device=self.device)
                images = [v for e in encoded for v in e["images"]]
                if images:
                    inputs["pixel_values"] = torch.cat(images)
                    inputs["image_grid_thw"] = torch.tensor([g for e in encoded for g in e["image_grid"]],
                                                            device=self.device)
                options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": pad_id,
                                           "do_sample": not s.greedy}
                if s.greedy:
                    options.update(temperature=None, top_p=None, top_k=None)
                else:
                    options["temperature"] = s.temperature
                    torch.manual_seed(s.seed)
                if s.static_cache:
                    options["cache_implementation"] = "static"
                out = self.model.generate(**inputs, **options)
            answers += tok.batch_decode(out[:, length:], skip_special_tokens=True)
        return answers
