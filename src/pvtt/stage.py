"""The unit a runner executes: a stage applied to one item.

A :class:`Stage` says what it does (:meth:`run`), what identifies an item's output (:meth:`key`)
and what it needs (:attr:`resources`), and nothing about where it runs. It is cheap to construct
and picklable; :meth:`setup` loads heavy state once per worker. :meth:`process_batch` (and
:meth:`process`, a batch of one) is the same for every stage and every runner: return the cached
record when the item's key is unchanged, otherwise run, turn exceptions into a record, and write the
record after the artifacts. A stage whose model batches across items (``batch_size`` > 1) overrides
:meth:`run_batch`; runners hand such a stage up to ``batch_size`` items at a time.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any, Generic, TypeVar

from pvtt.errors import BadInput, RejectItem
from pvtt.store import Workspace
from pvtt.types import ItemRecord, Resources, Status

log = logging.getLogger("pvtt")

Item = TypeVar("Item")

STAGE_NAMES = ("normalize", "product", "locate", "segment", "track", "points", "curate", "embed", "caption",
               "instruct", "depth", "motion_lora", "points_registration", "erase", "cutout", "video_cutout",
               "synthesize")
"""Every stage's :attr:`Stage.name`: what per-stage runner settings (``runner.ray.actors``,
``runner.ray.actors_per_gpu``) may name."""


class Stage(Generic[Item]):
    """Base of every stage. A stage that calls backends lists them in :meth:`backends`: they are
    constructed (cheaply) with the stage, set up once per worker, and their needs are the stage's
    :attr:`resources`."""

    name: str = ""

    def __init__(self, workspace: Workspace, retry_failed: bool = True):
        self.workspace = workspace
        self.retry_failed = retry_failed
        self._ready = False

    def backends(self) -> tuple[Any, ...]:
        """The backend objects this stage calls (none by default)."""
        return ()

    @property
    def resources(self) -> Resources:
        """What one call needs: one CPU, plus whatever its backends need (a model backend: a GPU)."""
        needs = Resources()
        for backend in self.backends():
            needs = needs | backend.resources
        return needs

    def setup(self) -> None:
        """Load heavy state (the backends' weights) once per worker; later calls do nothing."""
        if not self._ready:
            for backend in self.backends():
                backend.setup()
            self._ready = True

    def item_id(self, item: Item) -> str:
        return str(item.id)  # type: ignore[attr-defined]

    def key(self, item: Item) -> str:
        """Hash of the item's inputs and the settings that affect this stage's output."""
        raise NotImplementedError

    def run(self, item: Item, key: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Do the work; return ``(outputs, metrics)``. Raise RejectItem / BadInput for item-level problems."""
        raise NotImplementedError

    @property
    def batch_size(self) -> int:
        """How many uncached items one :meth:`run_batch` call takes. 1 unless the stage's model gains from
        batching across items (the VLM's captions: one ``generate`` for several clips)."""
        return 1

    def run_batch(self, jobs: list[tuple[Item, str]]) -> list[tuple[dict[str, Any], dict[str, Any]] | Exception]:
        """Run several ``(item, key)`` at once: per job ``(outputs, metrics)`` or the exception it raised.
        The default runs them one by one; a stage with ``batch_size`` > 1 overrides it."""
        results: list[tuple[dict[str, Any], dict[str, Any]] | Exception] = []
        for item, key in jobs:
            try:
                results.append(self.run(item, key))
            except Exception as exc:  # noqa: BLE001 - turned into the item's record by process_batch
                log.debug("%s failed on %s:\n%s", self.name, self.item_id(item), traceback.format_exc())
                results.append(exc)
        return results

    def finished(self, item: Item) -> ItemRecord | None:
        """The item's record when there is nothing to compute, with no setup: cached under an unchanged key, or
        failed because its key cannot be computed (its inputs are missing); None when :meth:`process` has work.
        A runner answers these items without starting a worker."""
        return self._key_or_record(item)[1]

    def process(self, item: Item) -> ItemRecord:
        return self.process_batch([item])[0]

    def process_batch(self, items: list[Item]) -> list[ItemRecord]:
        """Records of ``items`` in order: cached ones as they are, the rest run together by :meth:`run_batch`
        (each record's ``seconds`` is its share of the call), every record written after its artifacts."""
        records: list[ItemRecord | None] = [None] * len(items)
        jobs: list[tuple[int, Item, str]] = []
        for index, item in enumerate(items):
            key, records[index] = self._key_or_record(item)
            if records[index] is None:
                jobs.append((index, item, key))
        if jobs:
            start = time.perf_counter()
            # weights load on the first item that is not cached; a setup that fails (weights missing) is a broken
            # precondition of the whole stage, not of this item: it stops the run, with its message
            self.setup()
            outcomes = self.run_batch([(item, key) for _, item, key in jobs])
            seconds = round((time.perf_counter() - start) / len(jobs), 3)
            for (index, item, key), outcome in zip(jobs, outcomes):
                record = self._record(self.item_id(item), key, outcome)
                record.seconds = seconds
                if len(jobs) > 1:
                    record.metrics["batch"] = len(jobs)
                self.workspace.write_record(record)
                records[index] = record
        return records  # type: ignore[return-value]

    def _record(self, item_id: str, key: str, outcome: Any) -> ItemRecord:
        """The record of one job's outcome; one bad item never stops the run."""
        if isinstance(outcome, RejectItem):
            return ItemRecord(self.name, item_id, key, Status.REJECTED, reason=str(outcome), outputs=outcome.outputs,
                              metrics=outcome.metrics)
        if isinstance(outcome, BadInput):
            return ItemRecord(self.name, item_id, key, Status.FAILED, reason=str(outcome))
        if isinstance(outcome, Exception):
            return ItemRecord(self.name, item_id, key, Status.FAILED, reason=f"{type(outcome).__name__}: {outcome}")
        outputs, metrics = outcome
        return ItemRecord(self.name, item_id, key, Status.DONE, outputs=outputs, metrics=metrics)

    def _key_or_record(self, item: Item) -> tuple[str, ItemRecord | None]:
        """The item's key and its record when it needs no work (see :meth:`finished`)."""
        item_id = self.item_id(item)
        try:
            key = self.key(item)
        except (BadInput, OSError) as exc:
            record = ItemRecord(self.name, item_id, "", Status.FAILED, reason=str(exc))
            self.workspace.write_record(record)
            return "", record
        cached = self.workspace.cached(self.name, item_id, key, self.retry_failed)
        if cached is not None:
            cached.metrics["cached"] = True
        return key, cached
