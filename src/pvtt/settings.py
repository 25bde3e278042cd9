"""The base of every settings model (kept apart from :mod:`pvtt.config` so stage packages can import it)."""

from pydantic import BaseModel, ConfigDict


class Settings(BaseModel):
    """Unknown keys are rejected and assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
