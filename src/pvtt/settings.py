"""The base of every settings model (kept apart from :mod:`pvtt.config` so stage packages can import it)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

from pvtt.registry import Registry


class Settings(BaseModel):
    """Unknown keys are rejected and assignments are validated.

    A section with a ``backend`` field names its stage's registry (``class EraseSettings(Settings,
    backends=BACKENDS)``: a :class:`~pvtt.registry.Registry`, which also names the stage); the name is then
    checked against the registry's keys when the settings load, so a typo stops a run before any work. Only
    names are compared: no backend is imported.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    stage: ClassVar[str] = ""
    backends: ClassVar[Registry | None] = None
    backend_sections: ClassVar[dict[str, tuple[str, ...]]] = {}
    """Sub-sections only some backends read (``{"sam2": ("sam2",)}``): a stage's cache key leaves them out while
    another backend runs, so a new default for a GPU model does not re-run a CPU build's stage. Declared only
    where the other backends are known not to read them."""

    def __init_subclass__(cls, backends: Registry | None = None, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if backends is not None:
            cls.backends, cls.stage = backends, backends.stage

    @field_validator("backend", check_fields=False)
    @classmethod
    def _known_backend(cls, name: str) -> str:
        if cls.backends is not None and name not in cls.backends:
            # pvtt.config reports this as "<section>.backend: unknown backend '<name>'; known: <names>"
            raise PydanticCustomError(
                "unknown_backend", "unknown {stage} backend {name}; known: {known}",
                {"stage": cls.stage, "name": repr(name), "known": ", ".join(sorted(cls.backends))},
            )
        return name

    def key_dump(self) -> dict[str, Any]:
        """The settings as a cache key sees them: every field but the sub-sections only other backends read
        (``backend_sections``)."""
        data = self.model_dump(mode="json")
        backend = getattr(self, "backend", None)
        for section, users in self.backend_sections.items():
            if backend not in users:
                data.pop(section, None)
        return data
