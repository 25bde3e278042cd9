"""Named backends chosen from config.

Each stage package keeps one :class:`Registry`: backend name → :class:`Entry`, the ``"module:attribute"`` that
builds the backend and the settings it takes (the stage's section, or a section inside it: ``propagate``'s
``vace-depth`` takes ``propagate.vace``). The stage's settings class names its registry
(``class EraseSettings(Settings, backends=BACKENDS)``), so a backend name is checked when the config loads,
and :meth:`Registry.make` builds the backend that a section names from the sections its entry declares.

The import happens only when a backend is chosen, so heavy libraries (torch, transformers, diffusers) are
imported by the model backends that need them and by nothing else.

A backend object is cheap to construct and picklable; anything expensive (weights, large tables) is created
in :meth:`Backend.setup`, which a runner calls once per worker.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Entry:
    """One backend of a registry: what builds it and which settings it takes.

    ``section`` is the field of the stage's settings passed as the backend's ``settings`` ("" the stage's
    section itself); ``context`` names more of them, passed by keyword (``{"composite": ""}``: the stage's
    section as ``composite=``).
    """

    target: str  # "module:attribute", imported only when the backend is chosen
    section: str = ""
    context: dict[str, str] = field(default_factory=dict)


class Registry(dict[str, Entry]):
    """The backends of one stage by name: a plain dict of :class:`Entry` (a ``"module:attribute"`` string is an
    entry that takes the stage's section)."""

    def __init__(self, stage: str, entries: dict[str, str | Entry]):
        super().__init__({name: e if isinstance(e, Entry) else Entry(e) for name, e in entries.items()})
        self.stage = stage

    def entry(self, name: str) -> Entry:
        try:
            return self[name]
        except KeyError:
            known = ", ".join(sorted(self))
            raise ValueError(f"unknown {self.stage} backend {name!r}; known backends: {known}") from None

    def settings_of(self, settings: BaseModel, name: str | None = None) -> Any:
        """The settings backend ``name`` (by default the one ``settings.backend`` names) takes: the section of
        the stage's ``settings`` that its entry declares."""
        return _section(settings, self.entry(name or settings.backend).section)  # type: ignore[attr-defined]

    def make(self, settings: BaseModel, **overrides: Any) -> Any:
        """The backend ``settings.backend`` names, built from the sections its entry declares; ``overrides``
        update the stage's settings first (validated)."""
        if overrides:
            settings = type(settings).model_validate({**settings.model_dump(), **overrides})
        entry = self.entry(settings.backend)  # type: ignore[attr-defined]
        module_name, _, attribute = entry.target.partition(":")
        build = getattr(importlib.import_module(module_name), attribute)
        context = {keyword: _section(settings, section) for keyword, section in entry.context.items()}
        return build(settings=_section(settings, entry.section), **context)


def _section(settings: BaseModel, section: str) -> Any:
    return getattr(settings, section) if section else settings
