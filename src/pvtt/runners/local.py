"""The local runner: a loop over ``setup()`` / ``process()``, in-process or in a process pool."""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from rich.console import Console

from pvtt.runners.progress import stage_run
from pvtt.stage import Stage
from pvtt.types import ItemRecord, Status

log = logging.getLogger("pvtt")

_worker_stage: Stage | None = None  # the stage of this pool worker process, set up once by _init_worker


def _init_worker(stage: Stage) -> None:
    # no setup here: Stage.process sets up on the first item that is not cached (a failing initializer would
    # only say "broken pool"; raised from process, the error reaches the caller with its message)
    global _worker_stage
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
        with stage_run(stage.name, len(items), description, self.console, self.progress) as run:
            if self.workers <= 1 or len(items) == 1 or stage.resources.gpus > 0:
                # in this process; a stage that needs a GPU too: its model is loaded once, not once per worker.
                # A stage that batches across items gets up to batch_size at a time
                size = max(1, stage.batch_size)
                for start in range(0, len(items), size):
                    for offset, record in enumerate(stage.process_batch(list(items[start:start + size]))):
                        run.done(start + offset, record)
            else:
                self._run_pool(stage, items, run.done)
        return run.records()

    def _run_pool(self, stage: Stage, items: Sequence[Any], done) -> None:
        """Process items in a spawn-started pool, at most ``workers`` in flight (none when every item is cached).

        If a worker process dies (out of memory, a crash in a native library), the pool is rebuilt
        and the items that were in flight are tried again; an item in flight at two crashes is
        recorded as failed, so one poisonous file cannot stop the run.
        """
        context = multiprocessing.get_context("spawn")
        pending = []  # the items with work to do; cached ones are answered here, without starting a pool
        for index, item in enumerate(items):
            record = stage.finished(item)
            if record is None:
                pending.append(index)
            else:
                done(index, record)
        crashes: dict[int, int] = {}
        while pending:
            in_flight: dict[Any, int] = {}
            with ProcessPoolExecutor(max_workers=min(self.workers, len(pending)), mp_context=context,
                                     initializer=_init_worker, initargs=(stage,)) as pool:
                try:
                    while pending or in_flight:
                        # items that were in flight at a crash run alone, so the culprit is found
                        suspects = any(i in crashes for i in [*pending[:1], *in_flight.values()])
                        limit = 1 if suspects else self.workers
                        while pending and len(in_flight) < limit:
                            index = pending.pop(0)
                            in_flight[pool.submit(_process_in_worker, items[index])] = index
                        finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                        for future in finished:
                            record = future.result()
                            done(in_flight.pop(future), record)
                except BrokenProcessPool:
                    for index in in_flight.values():
                        crashes[index] = crashes.get(index, 0) + 1
                        if crashes[index] >= 2:
                            record = ItemRecord(stage.name, stage.item_id(items[index]), "", Status.FAILED,
                                                reason="the worker process died twice while processing this item "
                                                       "(out of memory or a crash in a native library)")
                            stage.workspace.write_record(record)
                            done(index, record)
                        else:
                            pending.insert(0, index)
                    log.warning("%s: a worker process died; restarting the pool", stage.name)
