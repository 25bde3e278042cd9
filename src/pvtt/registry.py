"""Named backends chosen from config.

Each stage package keeps a plain dict ``name -> "module:Class"`` and calls :func:`load_backend`.
The import happens only when a backend is chosen, so heavy libraries (torch, transformers,
diffusers) are imported by the model backends that need them and by nothing else.

A backend object is cheap to construct and picklable; anything expensive (weights, large
tables) is created in :meth:`Backend.setup`, which a runner calls once per worker.
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import BaseModel

from pvtt.types import Resources


class Backend:
    """Base class of every stage backend: settings in (validated by ``settings_class``), heavy state in
    :meth:`setup`.

    ``Backend(settings, **overrides)`` takes a settings model or a dict, applies ``overrides`` (``make_x(s,
    threshold=0.2)``, tests) and validates the result, so every backend holds a complete, checked settings model.
    """

    name: str = ""
    stage: str = ""  # the config section, named in error messages
    settings_class: type[BaseModel] | None = None

    def __init__(self, settings: BaseModel | dict[str, Any] | None = None, **overrides: Any):
        if self.settings_class is None:
            raise TypeError(f"{type(self).__name__} sets no settings_class")
        if isinstance(settings, BaseModel):
            settings = settings.model_dump()
        self.settings = self.settings_class.model_validate({**(settings or {}), **overrides})

    @property
    def resources(self) -> Resources:
        """What one call needs; the stage that holds the backend declares it to the runners. Default: one CPU."""
        return Resources()

    def setup(self) -> None:
        """Load heavy state once per worker. The default has nothing to load."""


def load_backend(stage: str, registry: dict[str, str], name: str, **settings: Any) -> Any:
    """Instantiate backend ``name`` of ``stage`` from ``registry`` with ``settings``."""
    try:
        target = registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise ValueError(f"unknown {stage} backend {name!r}; known backends: {known}") from None
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)(**settings)
