"""DINOv2 image embeddings (transformers ``Dinov2Model``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pvtt.embed import Embedder, l2_normalize
from pvtt.models.loading import batches, load_pretrained
from pvtt.models.preprocess import frames_to_tensor, resize_normalize


def _square_crop(image: np.ndarray) -> np.ndarray:
    """The centred square of ``image`` (DINOv2's evaluation crop, without the 256/224 margin)."""
    height, width = image.shape[:2]
    side = min(height, width)
    y0, x0 = (height - side) // 2, (width - side) // 2
    return image[y0:y0 + side, x0:x0 + side]


class Dinov2Embedder(Embedder):
    """CLS / mean-patch embedding of each image's centred square, resized to ``input_size``."""

    name = "dinov2"

    def load(self) -> tuple[Any, Any]:
        from transformers import AutoModel

        s = self.settings
        return load_pretrained(AutoModel, s.model, s.allow_download, self.stage, dtype=self.dtype), None

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        import torch

        self._require_setup()
        size = (self.settings.input_size, self.settings.input_size)
        vectors = []
        with torch.inference_mode():
            for sl in batches(len(images), self.settings.batch_size):
                pixels = torch.cat([
                    resize_normalize(frames_to_tensor(_square_crop(_rgb(img))[None], self.device), size, self.dtype)
                    for img in images[sl]
                ])
                hidden = self.model(pixel_values=pixels).last_hidden_state  # (N, 1 + patches, C)
                cls, patches = hidden[:, 0], hidden[:, 1:].mean(dim=1)
                pooling = self.settings.pooling
                vec = cls if pooling == "cls" else patches if pooling == "mean" else torch.cat([cls, patches], dim=-1)
                vectors.append(vec.float().cpu().numpy())
        if not vectors:
            return np.zeros((0, 0), np.float32)
        return l2_normalize(np.concatenate(vectors))


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=-1)
    if image.ndim == 3 and image.shape[-1] == 4:
        return np.ascontiguousarray(image[..., :3])
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"images must be (H, W, 3) RGB, got shape {image.shape}")
    return image
