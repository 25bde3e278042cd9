"""Loading of diffusers pipelines for the generative backends (FLUX-Fill, SVD, Wan VACE).

A diffusers pipeline is a folder with ``model_index.json`` (not ``config.json`` as a transformers
model): :func:`pvtt.models.loading.resolve_source` checks for that marker; hub ids, the offline rule
and the error messages are those of transformers models: nothing touches the network unless
``allow_download`` is true, and a missing pipeline raises :class:`~pvtt.models.ModelNotAvailable`
naming the model and how to fetch it.
"""

from __future__ import annotations

from typing import Any

from pvtt.models import ModelNotAvailable


def load_pipeline(cls: Any, model: str, allow_download: bool, stage: str, dtype: Any, **kwargs: Any) -> Any:
    """``cls.from_pretrained`` on the resolved source in ``dtype``, offline unless allowed; errors name the model."""
    from pvtt.models.loading import how_to_get, resolve_source

    source = resolve_source(model, allow_download, stage, marker="model_index.json")
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
