"""Loading of diffusers pipelines for the generative backends (FLUX-Fill, SVD, Wan VACE).

A diffusers pipeline is a folder with ``model_index.json`` (not ``config.json`` as a transformers
model), so the local-directory check differs from :func:`pvtt.models.loading.resolve_source`; hub
ids, the offline rule and the error messages are the same: nothing touches the network unless
``allow_download`` is true, and a missing pipeline raises :class:`~pvtt.models.ModelNotAvailable`
naming the model and how to fetch it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pvtt.models import ModelNotAvailable


def resolve_pipeline_source(model: str, allow_download: bool, stage: str) -> str:
    """A local pipeline folder, a cached hub snapshot, or the hub id itself when downloads are allowed."""
    from pvtt.models.loading import how_to_get, resolve_source

    if not model:
        raise ModelNotAvailable(f"{stage}.model is empty: set it to a local pipeline folder or a hub id")
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelNotAvailable(f"{stage}.model: directory {path} holds no model_index.json, so it is not a "
                                    f"saved diffusers pipeline (expected the output of save_pretrained or a hub "
                                    f"snapshot); " + how_to_get(model, stage))
        return str(path)
    return resolve_source(model, allow_download, stage)


def load_pipeline(cls: Any, model: str, allow_download: bool, stage: str, dtype: Any, **kwargs: Any) -> Any:
    """``cls.from_pretrained`` on the resolved source in ``dtype``, offline unless allowed; errors name the model."""
    from pvtt.models.loading import how_to_get

    source = resolve_pipeline_source(model, allow_download, stage)
    try:
        return cls.from_pretrained(source, dtype=dtype, local_files_only=not allow_download, **kwargs)
    except (OSError, ValueError, EnvironmentError) as exc:
        raise ModelNotAvailable(f"{stage} model {model!r} could not be loaded from {source}: {exc}; "
                                + how_to_get(model, stage)) from None


def place_pipeline(pipe: Any, device: Any, dtype: Any, cpu_offload: bool = False) -> Any:
    """Cast every module of ``pipe`` to ``dtype`` and move it to ``device`` (or offload model by model)."""
    import torch

    for component in pipe.components.values():  # cast only what differs: loaded pipelines keep their fp32 parts
        if isinstance(component, torch.nn.Module) and getattr(component, "dtype", dtype) != dtype:
            component.to(dtype=dtype)
    if cpu_offload and getattr(device, "type", str(device)) == "cuda":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device=device)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    return pipe
