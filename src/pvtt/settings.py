"""The base of every settings model (kept apart from :mod:`pvtt.config` so stage packages can import it)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError


class Settings(BaseModel):
    """Unknown keys are rejected and assignments are validated.

    A section with a ``backend`` field names its stage and that stage's registry (``stage = "erase"``,
    ``backends = BACKENDS``); the name is then checked against the registry's keys when the settings
    load, so a typo stops a run before any work. Only names are compared: no backend is imported.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    stage: ClassVar[str] = ""
    backends: ClassVar[dict[str, str] | None] = None

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
