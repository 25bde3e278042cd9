"""Shared model loading: settings validation, device/dtype choice, offline errors that say what to do."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from pvtt.models import ModelNotAvailable, ModelSettings


def test_importing_pvtt_and_model_stage_packages_does_not_import_torch():
    code = ("import sys, pvtt, pvtt.models, pvtt.depth, pvtt.embed, pvtt.vlm, pvtt.models.loading; "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_device_setting_rejects_unknown_names():
    assert ModelSettings(device="CUDA:1").device == "cuda:1"
    with pytest.raises(ValueError, match="device"):
        ModelSettings(device="tpu")
    from pvtt.embed import EmbedSettings

    with pytest.raises(ValueError, match="batch_size"):
        EmbedSettings(batch_size=0)


def test_missing_hub_model_names_the_model_and_how_to_provide_it(tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    from pvtt.models.loading import resolve_source

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailable) as err:
        resolve_source("facebook/sam2.1-hiera-large", allow_download=False, stage="segment")
    message = str(err.value)
    assert "facebook/sam2.1-hiera-large" in message
    assert "huggingface-cli download facebook/sam2.1-hiera-large --local-dir" in message
    assert "segment.model:" in message and "segment.allow_download" in message


def test_missing_or_empty_local_directory_is_a_clear_error(tmp_path):
    from pvtt.models.loading import resolve_source

    with pytest.raises(ModelNotAvailable, match="does not exist"):
        resolve_source(str(tmp_path / "nowhere"), False, "depth")
    with pytest.raises(ModelNotAvailable, match="no config.json"):
        resolve_source(str(tmp_path), False, "depth")
    with pytest.raises(ModelNotAvailable, match="depth.model is empty"):
        resolve_source("", False, "depth")


def test_auto_device_and_dtype_on_cpu():
    torch = pytest.importorskip("torch")
    from pvtt.models.loading import resolve_device, resolve_dtype

    device = resolve_device("cpu")
    assert resolve_dtype("auto", device) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype("fp16", device) == torch.float16
    if not torch.cuda.is_available():
        assert resolve_device("auto").type == "cpu"
        with pytest.raises(ModelNotAvailable, match="no CUDA"):
            resolve_device("cuda")


def test_backends_pickle_without_their_weights():
    pytest.importorskip("torch")
    from tiny_models import tiny_dinov2

    from pvtt.embed.dinov2 import Dinov2Embedder

    backend = Dinov2Embedder(device="cpu", batch_size=3)
    backend.setup(model=tiny_dinov2())
    clone = pickle.loads(pickle.dumps(backend))
    assert clone.settings == backend.settings and clone.model is None


def test_missing_weights_name_the_full_config_key(tmp_path):
    """The error names the key a user edits (segment.sam2.model), not the stage's top section."""
    from pvtt.locate.detector import DetectorLocator
    from pvtt.segment.sam2 import Sam2Segmenter

    with pytest.raises(ModelNotAvailable, match=r"segment\.sam2\.model: directory .* does not exist"):
        Sam2Segmenter(model=str(tmp_path / "nowhere"), device="cpu").setup()
    with pytest.raises(ModelNotAvailable, match=r"locate\.detector\.model: directory .* does not exist"):
        DetectorLocator(model=str(tmp_path / "nowhere"), device="cpu").setup()
