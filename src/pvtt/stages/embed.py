"""DINOv2 embeddings of clips and products (``embed`` settings), computed once and cached in the workspace.

- :class:`EmbedStage` (``embed``): one vector per curated clip, for the near-duplicate check with
  ``curate.dedup: embedding`` (:func:`pvtt.stages.clip.mark_near_duplicates` reads its ``embedding_path``).
- :func:`product_embedding`: B's cutout as the judge's DINOv2 identity score sees it
  (:func:`pvtt.judge.metrics.product_view`), embedded once per product and embed settings and reused by every
  pair of that product.

The embedder is built from the settings only where a setting asks for it, so the CPU defaults never import torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pvtt import artifacts
from pvtt.artifacts import save_array
from pvtt.config import settings_key
from pvtt.errors import BadInput
from pvtt.items import ClipItem
from pvtt.stages.clip import ClipStage
from pvtt.store import Workspace

PRODUCT_DIR = "embed_product"  # workspace folder of the cached product vectors
PRODUCT_VERSION = "1"


class EmbedStage(ClipStage):
    """The clip's DINOv2 vector: the normalised mean of ``embed.clip_frames`` evenly spaced frame embeddings
    (``Embedder.embed_clip``), keyed on the clip and the embed settings, so a re-run neither recomputes it nor
    loads the weights."""

    name = "embed"

    def run(self, clip: ClipItem, key: str):
        vector = np.asarray(self.backend.embed_clip(clip.load(self.workspace)), np.float32)
        path = self.out(clip, key, "embedding.npz")
        save_array(path, embedding=vector)
        return {"embedding_path": self.workspace.rel(path)}, {"dim": int(vector.shape[0])}


def product_embedding(ws: Workspace, product_id: str, embedder: Any) -> np.ndarray:
    """B's identity vector (unit, ``(D,)`` float32): its target image (:func:`pvtt.artifacts.target`) composited on grey
    and cropped to its alpha box, embedded by ``embedder`` once per target image and embed settings and cached as
    ``embed_product/<product_id>/<key>/embedding.npz``; later calls (every other pair of the product) read it."""
    from pvtt.judge.metrics import product_view

    record = artifacts.target(ws, product_id)
    key = settings_key(PRODUCT_DIR, PRODUCT_VERSION, record.outputs["source"], record.key,
                       record.outputs["cutout_path"], embedder.settings)
    path = ws.artifact_dir(PRODUCT_DIR, product_id, key) / "embedding.npz"
    if path.is_file():
        try:
            with np.load(path) as data:
                return np.asarray(data["embedding"], np.float32)
        except (OSError, ValueError, KeyError):
            pass  # a damaged file is recomputed
    view = product_view(artifacts.cutout(ws, product_id))
    if view is None:
        raise BadInput(f"product {product_id}: its target image has an empty alpha, nothing to embed")
    vector = np.asarray(embedder.embed_images([view])[0], np.float32)
    save_array(path, embedding=vector)
    return vector


__all__ = ["EmbedStage", "product_embedding"]
