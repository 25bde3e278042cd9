"""The local runner: a loop over ``setup()`` / ``process()``, in-process or in a process pool."""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from pvtt.stage import Stage
from pvtt.types import ItemRecord, Status

log = logging.getLogger("pvtt")

_worker_stage: Stage | None = None  # the stage of this pool worker process, set up once by _init_worker


def _init_worker(stage: Stage) -> None:
    global _worker_stage
    stage.setup()
    _worker_stage = stage


def _process_in_worker(item: Any) -> ItemRecord:
    assert _worker_stage is not None
    return _worker_stage.process(item)


class LocalRunner:
    """Run a stage over items on this machine; ``workers > 1`` uses a spawn-started process pool."""

    def __init__(self, workers: int = 1, progress: bool = True, console: Console | None = None):
        self.workers = workers
        self.progress = progress
        self.console = console or Console(stderr=True)

    def run(self, stage: Stage, items: Sequence[Any], description: str | None = None) -> list[ItemRecord]:
        """Records for ``items`` in input order."""
        if not items:
            return []
        description = description or stage.name
        results: list[ItemRecord | None] = [None] * len(items)
        with Progress(
            TextColumn("[bold]{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[last]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.progress,
            transient=False,
        ) as bar:
            task = bar.add_task(description, total=len(items), last="")

            def done(index: int, record: ItemRecord) -> None:
                results[index] = record
                note = "cached" if record.metrics.get("cached") else record.status.value
                bar.update(task, advance=1, last=f"{record.item_id}: {note}")
                if record.status is Status.FAILED:
                    log.warning("%s failed on %s: %s", stage.name, record.item_id, record.reason)

            if self.workers <= 1 or len(items) == 1:
                stage.setup()
                for index, item in enumerate(items):
                    done(index, stage.process(item))
            else:
                context = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(
                    max_workers=min(self.workers, len(items)),
                    mp_context=context,
                    initializer=_init_worker,
                    initargs=(stage,),
                ) as pool:
                    futures = {pool.submit(_process_in_worker, item): i for i, item in enumerate(items)}
                    for future in as_completed(futures):
                        done(futures[future], future.result())
        return [r for r in results if r is not None]
