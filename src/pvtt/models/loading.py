"""Device, dtype and weight resolution for model backends (imports torch inside the functions)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pvtt.models import ModelNotAvailable

log = logging.getLogger("pvtt")

_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def resolve_device(device: str) -> Any:
    """``'auto'`` → ``cuda`` when a GPU is visible, else ``cpu``; anything else as given (checked)."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ModelNotAvailable(f"device {device!r} was asked for but torch sees no CUDA GPU (use device: auto or cpu)")
    return resolved


def resolve_dtype(dtype: str, device: Any) -> Any:
    """``'auto'`` → bfloat16 on a GPU, float32 on the CPU; ``bf16``/``fp16``/``fp32`` as named."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if getattr(device, "type", str(device)) == "cuda" else torch.float32
    return getattr(torch, _DTYPES[dtype])


def how_to_get(model: str, stage: str) -> str:
    """The sentence that tells a user how to provide the weights of ``model`` for config section ``stage``."""
    name = model.rstrip("/").split("/")[-1] or "model"
    return (f"download it once with `huggingface-cli download {model} --local-dir /models/{name}` "
            f"(or `hf download …`) and set `{stage}.model: /models/{name}`, "
            f"or allow downloads with `{stage}.allow_download: true`")


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or "\\" in model


def resolve_source(model: str, allow_download: bool, stage: str, marker: str = "config.json") -> str:
    """A local directory holding the weights, or a hub id when downloads are allowed.

    A local directory must hold ``marker``: ``config.json`` for a transformers model, ``model_index.json``
    for a diffusers pipeline. A hub id without ``allow_download`` resolves to its snapshot in the local hub
    cache; when it is not there, :class:`ModelNotAvailable` names the model and how to fetch it. Nothing
    touches the network unless ``allow_download`` is true.
    """
    what = "a saved diffusers pipeline" if marker == "model_index.json" else "a saved model"
    if not model:
        raise ModelNotAvailable(f"{stage}.model is empty: set it to a local directory of weights or a hub id")
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / marker).is_file():
            raise ModelNotAvailable(f"{stage}.model: directory {path} holds no {marker}, so it is not {what} "
                                    f"(expected the output of save_pretrained or a hub snapshot); "
                                    + how_to_get(model, stage))
        return str(path)
    if _looks_like_path(model):
        raise ModelNotAvailable(f"{stage}.model: directory {path} does not exist")
    if allow_download:
        return model
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(model, local_files_only=True)
    except Exception:  # LocalEntryNotFoundError, an offline hub, a bad id: all mean "not here"
        raise ModelNotAvailable(f"{stage} model {model!r} is not available locally and downloads are off: "
                                + how_to_get(model, stage)) from None


def load_pretrained(cls: Any, model: str, allow_download: bool, stage: str, **kwargs: Any) -> Any:
    """``cls.from_pretrained`` on the resolved source, offline unless allowed; errors name the model."""
    source = resolve_source(model, allow_download, stage)
    try:
        return cls.from_pretrained(source, local_files_only=not allow_download, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelNotAvailable(f"{stage} model {model!r} could not be loaded from {source}: {exc}; "
                                + how_to_get(model, stage)) from None


def place_model(model: Any, device: Any, dtype: Any, cpu_offload: bool = False) -> Any:
    """Eval mode, cast to ``dtype`` and move to ``device``, or offload layer by layer to the GPU."""
    import torch

    if not isinstance(model, torch.nn.Module):
        return model
    model.eval()
    if cpu_offload and device.type == "cuda":
        from accelerate import cpu_offload as offload

        model.to(dtype=dtype)
        offload(model, execution_device=device)
        return model
    return model.to(device=device, dtype=dtype)


def batches(count: int, size: int) -> list[slice]:
    """``count`` items cut into consecutive slices of at most ``size``."""
    return [slice(i, min(i + size, count)) for i in range(0, count, size)]
