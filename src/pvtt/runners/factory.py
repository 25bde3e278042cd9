"""Choose the runner from the config: ``runner.kind`` is ``local`` (default) or ``ray``.

Ray is imported only when the Ray runner runs, so the core install does not need it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from rich.console import Console

from pvtt.errors import ConfigError
from pvtt.runners.local import LocalRunner
from pvtt.stage import Stage
from pvtt.types import ItemRecord

if TYPE_CHECKING:
    from pvtt.runners.ray import RayRunner


class Runner(Protocol):
    """What the pipeline needs of a runner."""

    def run(self, stage: Stage, items: Sequence[Any], description: str | None = None) -> list[ItemRecord]: ...


def make_runner(settings: Any, console: Console | None = None) -> LocalRunner | RayRunner:
    """The runner that ``settings`` (a ``RunnerSettings``) asks for.

    Reads ``kind`` (``"local"`` when absent), ``workers``, ``progress`` and ``ray`` (a ``RaySettings``).
    Raises :class:`ConfigError` naming ``runner.kind`` when the Ray runner is asked for and Ray is not installed.
    """
    kind = getattr(settings, "kind", "local")
    progress = getattr(settings, "progress", True)
    if kind == "local":
        return LocalRunner(getattr(settings, "workers", 1), progress, console)
    if kind == "ray":
        if importlib.util.find_spec("ray") is None:
            raise ConfigError("runner.kind: 'ray' needs Ray, which is not installed; pip install 'pvtt[ray]'")
        from pvtt.runners.ray import RayRunner, RaySettings

        return RayRunner(getattr(settings, "ray", None) or RaySettings(), progress=progress, console=console)
    raise ConfigError(f"runner.kind: unknown runner {kind!r}; one of: local, ray")
