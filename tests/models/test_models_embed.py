"""embed: DINOv2 embeddings are unit vectors, stable for near-duplicates, loadable from a saved model."""

from __future__ import annotations

import numpy as np
import pytest

from pvtt.embed import EmbedSettings, make_embedder

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tiny_models import tiny_clip, tiny_dinov2  # noqa: E402


@pytest.mark.parametrize("pooling,dim", [("cls", 32), ("mean", 32), ("cls+mean", 64)])
def test_embeddings_are_l2_normalised_rows(pooling, dim):
    clip = tiny_clip()
    embedder = make_embedder(EmbedSettings(device="cpu", batch_size=2, input_size=28, pooling=pooling))
    embedder.setup(model=tiny_dinov2())
    images = [clip.frames[0], clip.frames[1][:30, :40], np.zeros((20, 20, 3), np.uint8)]
    vectors = embedder.embed_images(images)
    assert vectors.shape == (3, dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_near_duplicate_clip_is_closer_than_a_different_one():
    embedder = make_embedder(EmbedSettings(device="cpu", input_size=28))
    embedder.setup(model=tiny_dinov2())
    a = tiny_clip(kind=0, seed=0)
    a_dup = tiny_clip(kind=0, seed=0)
    a_dup.frames = np.clip(a_dup.frames.astype(int) + 3, 0, 255).astype(np.uint8)
    b = tiny_clip(kind=2, seed=5)
    ea, ed, eb = (embedder.embed_clip(c) for c in (a, a_dup, b))
    assert float(ea @ ed) > float(ea @ eb)
    assert float(ea @ ed) > 0.99


def test_dinov2_loads_a_saved_model_through_its_settings(tmp_path):
    tiny_dinov2().save_pretrained(tmp_path / "dino")
    embedder = make_embedder(EmbedSettings(model=str(tmp_path / "dino"), device="cpu", input_size=28))
    embedder.setup()
    assert embedder.embed_images([tiny_clip().frames[0]]).shape == (1, 32)
