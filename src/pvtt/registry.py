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

from pvtt.types import Resources


class Backend:
    """Base class of every stage backend."""

    name: str = ""

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
