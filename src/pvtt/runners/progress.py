"""The progress bar every runner shows: one line per stage with items done / total and the last item."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from pvtt.types import ItemRecord


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
