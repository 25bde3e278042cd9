"""embed: image embeddings for near-duplicate clip curation and the judge's product-identity score.

Interface: :class:`Embedder` — ``embed_images(list of (H, W, 3) uint8 RGB) -> (N, D) float32``, each row
L2-normalised, so a dot product is a cosine similarity. ``embed_clip`` averages a few evenly spaced
frames into one clip vector.

Backends (chosen by ``embed.backend``):

- ``dinov2``: DINOv2 (transformers ``Dinov2Model``), CLS token and mean patch token. GPU; ``models`` extra.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from pvtt.models import ModelBackend, ModelSettings
from pvtt.registry import Registry
from pvtt.types import Clip

BACKENDS = Registry("embed", {
    "dinov2": "pvtt.embed.dinov2:Dinov2Embedder",
})


class EmbedSettings(ModelSettings, backends=BACKENDS):
    backend: str = "dinov2"
    """Embedding backend. One of: dinov2."""
    model: str = "facebook/dinov2-base"
    """DINOv2 weights: a local directory or a cached hub id."""
    batch_size: int = Field(32, ge=1)
    """Images per forward pass."""
    input_size: int = Field(224, ge=14)
    """Side of the square network input (a multiple of 14)."""
    pooling: Literal["cls", "mean", "cls+mean"] = "cls"
    """Image vector: the CLS token, the mean patch token, or both concatenated."""
    clip_frames: int = Field(4, ge=1)
    """Evenly spaced frames averaged by embed_clip."""


class Embedder(ModelBackend):
    """Interface of embedding backends."""

    stage = "embed"
    settings_class = EmbedSettings

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        """``(N, D)`` float32, L2-normalised rows, for ``N`` RGB uint8 images of any sizes."""
        raise NotImplementedError

    def embed_clip(self, clip: Clip) -> np.ndarray:
        """``(D,)`` float32 unit vector: the normalised mean of ``clip_frames`` evenly spaced frame embeddings."""
        count = min(self.settings.clip_frames, clip.num_frames)
        index = np.linspace(0, clip.num_frames - 1, count).round().astype(int)
        vectors = self.embed_images([clip.frames[i] for i in index])
        return l2_normalize(vectors.mean(axis=0, keepdims=True))[0]


def l2_normalize(vectors: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    vectors = np.asarray(vectors, np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), eps)


def make_embedder(settings: EmbedSettings | None = None, **overrides: Any) -> Embedder:
    return BACKENDS.make(settings or EmbedSettings(), **overrides)


__all__ = ["BACKENDS", "EmbedSettings", "Embedder", "l2_normalize", "make_embedder"]
