"""The Ray runner: the same stages on a Ray cluster, as a pool of actors with each stage's resources.

:class:`RayRunner` has the interface of :class:`~pvtt.runners.local.LocalRunner`:
``run(stage, items, description) -> list[ItemRecord]`` in input order. Per stage:

1. answer the items with nothing to compute (cached: :meth:`~pvtt.stage.Stage.finished`) here, without a
   worker: a stage whose items are all cached starts no actor; for the rest, connect to a cluster
   (``address="auto"`` or ``"ray://head:10001"``) or start a local Ray instance;
2. put the (cheap, picklable) stage in the object store once and start ``n`` actors, each reserving
   ``stage.resources`` (``num_cpus``, ``num_gpus``: a GPU stage gets GPU actors), each calling
   ``stage.setup()`` once — weights load once per actor, not per item;
3. once an actor is set up, keep one batch in flight on it — up to ``stage.batch_size`` items in one
   ``Stage.process_batch`` call (one item for most stages; the VLM's caption and instruct stages batch
   across items) — and collect the records, in item order, as calls finish (``ray.wait``);
4. when an actor dies (killed, out of memory, node lost), charge one death to every item of the batch it
   had in flight, put them back at the front of the queue and start a new actor in its place. An item
   that died in a batch of several may be innocent: from then on it is sent alone, so one poisonous item
   cannot keep killing its neighbours, and a death in a batch of several never fails an item (it always
   gets a try on its own). ``Stage.process_batch`` writes each record only after its artifacts, each
   atomically, so a retried item either finds its finished record (cached) or redoes the work from
   scratch; nothing is lost and nothing is half-written. An item whose worker died more than
   ``max_retries`` times is recorded as failed (like the local runner), so one poisonous file cannot
   stop the run;
5. kill the stage's actors, releasing their CPUs/GPUs for the next stage.

Why plain actors and not Ray Data's ``map_batches``: pvtt's items are few and coarse (a template
video, a clip, a pair: seconds to minutes each), records must come back per item and in input
order, and a worker death must be charged to the items it was processing, one by one. Ray Data is
built for streams of many small rows: items would become pickled blobs in Arrow blocks, its retries
re-run whole blocks without a per-item limit, and its progress is its own. Batches are handed to the
actors here too, but as the stage's own small lists of items (``batch_size``), with the culprit of a
death isolated by retrying alone. ``ray.util.ActorPool`` does not replace a dead actor or resubmit its
work. A small scheduler over ``ray.wait`` does exactly what is needed and is easy to test.

Ray is imported only when a :class:`RayRunner` runs; :class:`RaySettings` needs only pydantic.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from rich.console import Console

from pvtt.errors import ConfigError
from pvtt.runners.progress import stage_run
from pvtt.stage import STAGE_NAMES, Stage
from pvtt.types import ItemRecord, Status

log = logging.getLogger("pvtt")

WAIT_WARN_SECONDS = 120.0  # warn when no actor of a stage has started for this long (resources busy or missing)


class RaySettings(BaseModel):
    """Where the Ray runner runs and how it retries (``runner.ray`` in the config)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    address: str | None = None
    """Ray cluster to connect to: 'auto' (the cluster of this machine), 'ray://head:10001' (Ray Client), or null to
    start a local Ray instance."""
    num_cpus: int | None = Field(None, ge=1)
    """CPUs of a local Ray instance (null: all of this machine's). Ignored when connecting to a cluster."""
    num_gpus: int | None = Field(None, ge=0)
    """GPUs of a local Ray instance (null: all visible). Ignored when connecting to a cluster."""
    object_store_mb: int | None = Field(None, ge=80)
    """Object store of a local Ray instance in MiB (null: Ray's default). Items and records are small and artifacts go
    to the workspace, so 300 is plenty."""
    max_retries: int = Field(3, ge=0)
    """Retries of an item whose worker died (killed, out of memory, node lost) before it is recorded as failed. An
    item whose worker died in a batch of several is retried alone, whatever this says."""
    actors_per_stage: int | None = Field(None, ge=1)
    """Actors per stage (null: as many as the cluster's CPUs and GPUs fit, given the stage's declared resources)."""
    actors_per_gpu: int | dict[str, int] = 1
    """Actors of a GPU stage sharing one GPU (each asks Ray for 1/N of a GPU): one number for every GPU stage, or
    per stage, e.g. {segment: 4} (stages not named: 1). One SAM2 segment worker leaves an H200 idle much of the
    time (CPU reading and encoding between its kernels): 4 compiled actors of the segment stage cleared 91 frames/s
    through this runner against 59 for the local runner's one worker (BENCHMARKS.md), while 4 actors of
    synthesize would each load FLUX and VACE. Each actor loads its own weights and compiles its own model: mind the
    GPU memory of the stage. The `gpu` preset sets {segment: 4}."""
    actors: dict[str, int] = Field(default_factory=dict)
    """Actors for a named stage, overriding actors_per_stage (e.g. {normalize: 32}); also lets a stage wait for an
    autoscaler."""
    runtime_env: dict[str, Any] | None = None
    """Ray runtime_env for the workers (pip packages, env_vars), for nodes where pvtt is not installed."""
    log_to_driver: bool = True
    """Show the workers' warnings on this console."""

    @field_validator("actors", "actors_per_gpu")
    @classmethod
    def _stages_and_counts(cls, value: int | dict[str, int]) -> int | dict[str, int]:
        """A count per stage names stages that exist (a typo would otherwise be ignored) and counts of at least 1."""
        counts = value if isinstance(value, dict) else {"": value}
        unknown = sorted(set(counts) - {""} - set(STAGE_NAMES))
        if unknown:
            raise ValueError(f"unknown stage {', '.join(unknown)}; stages: {', '.join(STAGE_NAMES)}")
        if any(n < 1 for n in counts.values()):
            raise ValueError(f"counts must be at least 1, got {value}")
        return value


class _StageWorker:
    """The body of a Ray actor: one stage, set up once, then ``process_batch`` per batch of items."""

    def __init__(self, stage: Stage):
        self.stage = stage

    def setup(self) -> dict[str, Any]:
        self.stage.setup()
        return {"pid": os.getpid(), "host": socket.gethostname(),
                "workspace_visible": self.stage.workspace.root.is_dir()}

    def process_batch(self, items: list[Any]) -> list[ItemRecord]:
        return self.stage.process_batch(items)


@dataclass
class _Slot:
    """One actor position of a stage's pool; a dead actor is replaced in the same slot."""

    actor: Any = None
    setup_ref: Any = None
    info: dict[str, Any] | None = None  # what setup() returned (pid, host): None until set up
    indices: list[int] = field(default_factory=list)  # the items in flight (one batch), in order; empty when idle


class RayRunner:
    """Run a stage over items as a pool of Ray actors; records come back in input order.

    ``RayRunner(RaySettings(...))`` or ``RayRunner(num_cpus=2, object_store_mb=300)``. A Ray instance
    this runner started is shut down by :meth:`close` (or at the end of a ``with`` block); one that
    was already initialised in the process is left running.
    """

    def __init__(self, settings: RaySettings | None = None, *, progress: bool = True,
                 console: Console | None = None, **overrides: Any):
        settings = settings or RaySettings()
        self.settings = RaySettings.model_validate({**settings.model_dump(), **overrides}) if overrides else settings
        self.progress = progress
        self.console = console or Console(stderr=True)
        self.stats: dict[str, dict[str, int]] = {}  # per stage: actors, worker_deaths, items_retried
        self._slots: list[_Slot] = []
        self._started_ray = False

    # -- Ray instance --------------------------------------------------------------------
    def _ray(self):
        import ray

        if ray.is_initialized():
            return ray
        s = self.settings
        kwargs: dict[str, Any] = {"log_to_driver": s.log_to_driver, "logging_level": logging.WARNING}
        if s.runtime_env:
            kwargs["runtime_env"] = s.runtime_env
        if s.address is None:
            kwargs.update(num_cpus=s.num_cpus, num_gpus=s.num_gpus, include_dashboard=False)
            if s.object_store_mb is not None:
                kwargs["object_store_memory"] = s.object_store_mb * 1024 * 1024
        try:
            ray.init(address=s.address, **kwargs)
        except ConnectionError as exc:
            raise ConfigError(f"runner.ray.address: cannot connect to Ray at {s.address!r}: {exc}") from None
        self._started_ray = True
        log.info("ray: %s, resources %s", "local instance" if s.address is None else s.address,
                 {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")})
        return ray

    def close(self) -> None:
        """Shut down the Ray instance if this runner started (or connected) it."""
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False

    def __enter__(self) -> RayRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the current stage's actors that are set up (for tests and debugging)."""
        return [slot.info["pid"] for slot in list(self._slots) if slot.info is not None]

    # -- running a stage -----------------------------------------------------------------
    def actor_count(self, stage: Stage, n_items: int, cluster: dict[str, float]) -> int:
        """Actors for ``stage``: the configured number, else as many as ``cluster``'s CPUs/GPUs fit."""
        res = stage.resources
        gpus_each = self.gpus_per_actor(stage)
        cpus, gpus = cluster.get("CPU", 0.0), cluster.get("GPU", 0.0)
        wanted = self.settings.actors.get(stage.name, self.settings.actors_per_stage)
        if wanted is None:
            fit = n_items if (res.cpus or res.gpus) else max(1, int(cpus))
            if res.cpus > 0:
                fit = min(fit, int(cpus // res.cpus))
            if gpus_each > 0:
                fit = min(fit, int(round(gpus / gpus_each, 6)))
            if fit < 1:
                raise ConfigError(
                    f"runner.ray: stage {stage.name!r} needs {res.cpus:g} CPU and {gpus_each:g} GPU per worker but "
                    f"the Ray cluster has {cpus:g} CPUs and {gpus:g} GPUs; add such nodes, or set "
                    f"runner.ray.actors.{stage.name} to wait for an autoscaler to add them")
            wanted = fit
        return max(1, min(wanted, n_items))

    def gpus_per_actor(self, stage: Stage) -> float:
        """The GPU share one actor of ``stage`` asks Ray for (``actors_per_gpu`` actors share a GPU)."""
        share = self.settings.actors_per_gpu
        if isinstance(share, dict):
            share = share.get(stage.name, 1)
        return stage.resources.gpus / share

    def run(self, stage: Stage, items: Sequence[Any], description: str | None = None) -> list[ItemRecord]:
        """Records for ``items`` in input order. Items with nothing to compute (cached) are answered here, so a
        stage whose items are all cached starts no actor (and no Ray instance)."""
        if not items:
            return []
        with stage_run(stage.name, len(items), description, self.console, self.progress) as run:
            todo = []  # indices of the items that need a worker
            for index, item in enumerate(items):
                record = stage.finished(item)
                if record is None:
                    todo.append(index)
                else:
                    run.done(index, record)
            if not todo:
                self.stats[stage.name] = {"actors": 0, "worker_deaths": 0, "items_retried": 0}
                return run.records()

            def done(position: int, record: ItemRecord) -> None:
                run.done(todo[position], record)

            def retrying(position: int, deaths: int, batch: int) -> None:
                item_id = stage.item_id(items[todo[position]])
                run.say(f"{item_id}: retry {deaths}")
                if batch == 1:
                    log.warning("%s: the worker processing %s died (%d of %d allowed); retrying it on a new worker",
                                stage.name, item_id, deaths, self.settings.max_retries)
                else:
                    log.warning("%s: the worker processing %s in a batch of %d died (%d of %d allowed); retrying "
                                "it alone on a new worker", stage.name, item_id, batch, deaths,
                                self.settings.max_retries)

            self._schedule(self._ray(), stage, [items[i] for i in todo], done, retrying)
        return run.records()

    def _schedule(self, ray, stage: Stage, items: Sequence[Any], done: Callable[[int, ItemRecord], None],
                  retrying: Callable[[int, int, int], None]) -> None:
        from ray.exceptions import RayError, RayTaskError

        max_retries = self.settings.max_retries
        size = max(1, stage.batch_size)
        # more actors than batches would only load weights for nothing
        n_actors = self.actor_count(stage, -(-len(items) // size), ray.cluster_resources())
        worker_cls = ray.remote(_StageWorker).options(
            num_cpus=stage.resources.cpus, num_gpus=self.gpus_per_actor(stage), max_restarts=0, max_task_retries=0)
        stage_ref = ray.put(stage)
        stats = self.stats[stage.name] = {"actors": n_actors, "worker_deaths": 0, "items_retried": 0}
        pending = deque(range(len(items)))
        deaths = [0] * len(items)
        setup_deaths = 0
        refs: dict[Any, tuple[_Slot, list[int] | None]] = {}  # in-flight call → (slot, item indices; None: setup)
        self._slots = slots = [_Slot() for _ in range(n_actors)]

        def start(slot: _Slot) -> None:
            slot.actor = worker_cls.remote(stage_ref)
            slot.info, slot.indices = None, []
            slot.setup_ref = slot.actor.setup.remote()
            refs[slot.setup_ref] = (slot, None)

        def feed(slot: _Slot) -> None:
            # only after setup() returned: a death is then charged to the item, never to setup (queueing work
            # behind setup() would make that ambiguous: setup's reply can be lost with the process)
            if slot.actor is not None and slot.info is not None and not slot.indices and pending:
                # up to batch_size items from the front of the queue; an item that already killed a worker goes
                # alone (it may be the culprit of a batch's death), and a batch stops before such an item
                batch = [pending.popleft()]
                if not deaths[batch[0]]:
                    while pending and len(batch) < size and not deaths[pending[0]]:
                        batch.append(pending.popleft())
                slot.indices = batch
                refs[slot.actor.process_batch.remote([items[i] for i in batch])] = (slot, batch)

        def died(slot: _Slot, exc: Exception) -> None:
            nonlocal setup_deaths
            stats["worker_deaths"] += 1
            for ref in [r for r, (s, _) in refs.items() if s is slot]:
                del refs[ref]
            ray.kill(slot.actor, no_restart=True)
            indices, slot.actor, slot.indices = slot.indices, None, []
            if slot.info is None:
                setup_deaths += 1
                if setup_deaths > max_retries:
                    raise RuntimeError(f"workers of stage {stage.name!r} died {setup_deaths} times in setup() "
                                       f"(out of memory while loading weights?): {exc}")
                return
            slot.info = None
            # every item of the batch in flight is charged one death; only an item that died alone can be failed
            # (after a death in a batch of several it is retried alone: it may not be the culprit)
            retry = []
            for index in indices:
                deaths[index] += 1
                if len(indices) == 1 and deaths[index] > max_retries:
                    record = ItemRecord(stage.name, stage.item_id(items[index]), "", Status.FAILED,
                                        reason=f"the worker process died {deaths[index]} times while processing "
                                               "this item (killed, out of memory, or a crash in a native library)")
                    stage.workspace.write_record(record)
                    done(index, record)
                else:
                    stats["items_retried"] += 1
                    retry.append(index)
                    retrying(index, deaths[index], len(indices))
            pending.extendleft(reversed(retry))  # back at the front of the queue, in their order

        try:
            for slot in slots:
                start(slot)
            waited_since = time.monotonic()
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1, timeout=10.0)
                if not ready:
                    if all(s.info is None for s in slots) and time.monotonic() - waited_since > WAIT_WARN_SECONDS:
                        log.warning("%s: no worker has started for %.0fs; each needs %s, the cluster has %s free",
                                    stage.name, time.monotonic() - waited_since, stage.resources,
                                    ray.available_resources())
                        waited_since = time.monotonic()
                    continue
                for ref in ready:
                    if ref not in refs:
                        continue  # a call of an actor that already died
                    slot, indices = refs.pop(ref)
                    try:
                        value = ray.get(ref)
                    except RayTaskError:
                        raise  # setup() or process_batch() raised: a broken precondition, as with the local runner
                    except RayError as exc:
                        died(slot, exc)
                        continue
                    if indices is None:
                        slot.info = value
                        if not value["workspace_visible"]:
                            raise ConfigError(
                                f"runner.ray: the workspace {stage.workspace.root} is not visible on node "
                                f"{value['host']}; put it on a filesystem that every node mounts at the same path")
                        feed(slot)
                        continue
                    slot.indices = []
                    for index, record in zip(indices, value, strict=True):  # in item order
                        done(index, record)
                    feed(slot)
                for slot in slots:  # replace dead actors while work remains
                    if slot.actor is None and pending:
                        start(slot)
        finally:
            for slot in slots:
                if slot.actor is not None:
                    ray.kill(slot.actor, no_restart=True)
            self._slots = []
        if stats["worker_deaths"]:
            # a killed worker leaves temporary files; no worker of this run is writing any more
            removed = stage.workspace.remove_stale_temp()
            log.debug("%s: removed %d temporary files of dead workers", stage.name, removed)
