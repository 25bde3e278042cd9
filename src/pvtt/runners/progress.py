"""The progress bar every runner shows: one line per stage with items done / total and the last item."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from pvtt.types import ItemRecord, Status

log = logging.getLogger("pvtt")


def progress_bar(console: Console, enabled: bool) -> Progress:
    """A rich progress display; add one task per stage with ``add_task(description, total=n, last="")``."""
    return Progress(
        TextColumn("[bold]{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )


def note(record: ItemRecord) -> str:
    """``"<item>: <status>"`` (or ``cached``) for the progress bar's last column."""
    return f"{record.item_id}: {'cached' if record.metrics.get('cached') else record.status.value}"


class StageRun:
    """What every runner keeps while running one stage: records in input order and one progress line."""

    def __init__(self, stage_name: str, count: int, bar: Progress, description: str):
        self.stage_name = stage_name
        self.results: list[ItemRecord | None] = [None] * count
        self._bar = bar
        self._task = bar.add_task(description, total=count, last="")

    def done(self, index: int, record: ItemRecord) -> None:
        self.results[index] = record
        self._bar.update(self._task, advance=1, last=note(record))
        if record.status is Status.FAILED:
            log.warning("%s failed on %s: %s", self.stage_name, record.item_id, record.reason)

    def say(self, text: str) -> None:
        """Replace the progress line's last column (e.g. a retry notice)."""
        self._bar.update(self._task, last=text)

    def records(self) -> list[ItemRecord]:
        return [r for r in self.results if r is not None]


@contextlib.contextmanager
def stage_run(stage_name: str, count: int, description: str | None, console: Console,
              enabled: bool) -> Iterator[StageRun]:
    with progress_bar(console, enabled) as bar:
        yield StageRun(stage_name, count, bar, description or stage_name)
