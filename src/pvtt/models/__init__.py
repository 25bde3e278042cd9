"""Shared loading of model backends: device, dtype, local weights, offline errors.

Every model backend (SAM2, Depth Anything, DINOv2, OWLv2, Grounding DINO, Qwen2.5-VL, …) takes a
:class:`ModelSettings` subclass and derives from :class:`ModelBackend`: cheap to construct and to
pickle, weights loaded once per worker in :meth:`ModelBackend.setup`. Weights come from a local
directory or a hub id that is already in the local cache; the network is used only when the
settings say ``allow_download: true``. A missing weight raises :class:`ModelNotAvailable`, whose
message names the model and the command that fetches it.

Nothing here imports torch or transformers at import time: :mod:`pvtt.models.loading` does, inside
its functions, so ``import pvtt`` stays light and the classical pipeline never needs the extra.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator

from pvtt.settings import Settings
from pvtt.errors import PvttError
from pvtt.registry import Backend
from pvtt.types import Resources


class ModelNotAvailable(PvttError):
    """The weights of a model backend are neither a local directory nor in the local hub cache."""


class ModelSettings(Settings):
    """Settings every model backend shares; each backend adds its own and sets a default ``model``."""

    model: str = ""
    """Local directory of the weights, or a hub id found in the local cache."""
    device: str = "auto"
    """'auto' (cuda when available, else cpu), 'cpu', 'cuda' or 'cuda:N'."""
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    """Weights and activations: 'auto' is bf16 on a GPU and fp32 on the CPU."""
    allow_download: bool = False
    """Fetch missing weights from the hub (off: local files only)."""
    cpu_offload: bool = False
    """Keep weights in CPU memory and move each layer to the GPU when used."""

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        value = value.strip().lower()
        head, _, index = value.partition(":")
        if head not in ("auto", "cpu", "cuda", "mps") or (index and (head != "cuda" or not index.isdigit())):
            raise ValueError(f"must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {value!r}")
        return value


class ModelBackend(Backend):
    """Base of model backends: settings in, weights loaded in :meth:`setup`, picklable before and after.

    Subclasses set ``stage`` (the config section, used in error messages), ``settings_class``, and
    implement :meth:`load` (read weights through :func:`pvtt.models.loading.load_pretrained`).
    Tests and callers that already hold a model pass it to ``setup(model=..., processor=...)``.
    """

    stage: str = ""
    settings_class: type[ModelSettings] = ModelSettings

    def __init__(self, settings: ModelSettings | dict[str, Any] | None = None, **overrides: Any):
        super().__init__(settings, **overrides)
        self.model: Any = None
        self.processor: Any = None
        self.device: Any = None
        self.dtype: Any = None

    # 1. construction and pickling stay cheap: loaded state never travels
    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self.settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["settings"])

    @property
    def resources(self) -> Resources:
        """One GPU unless the settings pin the model to the CPU (or Apple's MPS, which runners do not count)."""
        on_cpu = self.settings.device.split(":")[0] in ("cpu", "mps")
        return Resources(cpus=1.0, gpus=0.0 if on_cpu else 1.0)

    @property
    def ready(self) -> bool:
        return self.model is not None

    # 2. heavy setup, once per worker
    def setup(self, model: Any = None, processor: Any = None) -> None:
        """Load the weights (or take ``model``/``processor`` already built) and place them on the device."""
        from pvtt.models.loading import place_model, resolve_device, resolve_dtype

        self.device = resolve_device(self.settings.device)
        self.dtype = resolve_dtype(self.settings.dtype, self.device)
        if model is None:
            model, loaded_processor = self.load()
            processor = processor if processor is not None else loaded_processor
        self.model = place_model(model, self.device, self.dtype, self.settings.cpu_offload)
        self.processor = processor

    def load(self) -> tuple[Any, Any]:
        """Read the weights named by ``settings.model``; return ``(model, processor_or_None)``."""
        raise NotImplementedError

    def _require_setup(self) -> None:
        if self.model is None:
            self.setup()


__all__ = ["ModelBackend", "ModelNotAvailable", "ModelSettings"]
