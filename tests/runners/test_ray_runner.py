"""The Ray runner: the same records and byte-identical clips as the local runner, input order kept, a
killed worker's item retried (nothing lost), a poisonous item failed after ``max_retries``, and a
workspace started by one runner finished by the other.

One small local Ray instance (2 CPUs, 300 MB object store, no dashboard) serves the whole module.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'pvtt[ray]')")

from test_prepare import FAST, make_messy_catalog  # noqa: E402  (tests/ is on sys.path via its conftest)

from pvtt.catalog import load_catalog  # noqa: E402
from pvtt.config import load_config  # noqa: E402
from pvtt.pipeline import prepare  # noqa: E402
from pvtt.runners.local import LocalRunner  # noqa: E402
from pvtt.runners.ray import RayRunner  # noqa: E402
from pvtt.stage import Stage  # noqa: E402
from pvtt.stages.template import NormalizeStage  # noqa: E402
from pvtt.store import Workspace  # noqa: E402
from pvtt.testmedia import multi_shot_video  # noqa: E402
from pvtt.types import Status  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    """One local Ray instance for the module; test stages defined here travel to the workers by value."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=300 * 1024 * 1024, log_to_driver=False)
    yield
    ray.shutdown()


def _runner(**kw) -> RayRunner:
    return RayRunner(progress=False, **kw)


@dataclass
class Item:
    id: str


class FragileStage(Stage[Item]):
    """Kills its own worker process with SIGKILL on 'poison' (always) and on 'flaky' (first attempt only)."""

    name = "fragile"

    def key(self, item: Item) -> str:
        return "k"

    def run(self, item: Item, key: str):
        marker = self.workspace.root / f"attempted-{item.id}"
        first = not marker.exists()
        marker.touch()
        if item.id == "poison" or (item.id == "flaky" and first):
            os.kill(os.getpid(), signal.SIGKILL)
        return {"value": item.id.upper(), "pid": os.getpid()}, {}


def test_records_come_back_in_input_order_and_a_killed_worker_is_replaced(tmp_path):
    items = [Item(f"i{n}") for n in range(4)] + [Item("flaky")] + [Item(f"j{n}") for n in range(4)]
    runner = _runner()
    records = runner.run(FragileStage(Workspace(tmp_path)), items)
    assert [r.item_id for r in records] == [i.id for i in items]
    assert all(r.status is Status.DONE for r in records)
    assert records[4].outputs["value"] == "FLAKY"
    assert runner.stats["fragile"] == {"actors": 2, "worker_deaths": 1, "items_retried": 1}


def test_an_item_that_kills_every_worker_fails_after_max_retries(tmp_path):
    items = [Item("a"), Item("poison"), Item("b"), Item("c")]
    runner = _runner(max_retries=1)
    records = {r.item_id: r for r in runner.run(FragileStage(Workspace(tmp_path)), items)}
    assert records["poison"].status is Status.FAILED and "worker process died 2 times" in records["poison"].reason
    assert all(records[i].status is Status.DONE for i in "abc")
    assert Workspace(tmp_path).read_record("fragile", "poison").status is Status.FAILED
    assert runner.stats["fragile"]["worker_deaths"] == 2


class CountingSetupStage(FragileStage):
    """Leaves one file in the workspace per setup (the first setup() call of a stage object: weights would load),
    whichever worker makes it."""

    name = "counting"

    def setup(self) -> None:
        if not self._ready:
            (self.workspace.root / f"setup-{os.getpid()}-{time.monotonic_ns()}").touch()
        super().setup()


def test_cached_items_start_no_actor_and_only_the_rest_reach_workers(tmp_path):
    ws, items = Workspace(tmp_path), [Item(f"i{n}") for n in range(3)]
    first = _runner()
    assert [r.status for r in first.run(CountingSetupStage(ws), items)] == [Status.DONE] * 3
    assert first.stats["counting"]["actors"] == 2 and len(list(tmp_path.glob("setup-*"))) == 2

    again = _runner()  # a re-run of a finished stage: every record cached, no actor, no setup
    records = again.run(CountingSetupStage(ws), items)
    assert [r.metrics.get("cached") for r in records] == [True] * 3
    assert again.stats["counting"]["actors"] == 0 and len(list(tmp_path.glob("setup-*"))) == 2

    more = _runner()  # one new item among cached ones: one actor, records still in input order
    records = more.run(CountingSetupStage(ws), [items[0], Item("new"), *items[1:]])
    assert [r.item_id for r in records] == ["i0", "new", "i1", "i2"]
    assert [bool(r.metrics.get("cached")) for r in records] == [True, False, True, True]
    assert more.stats["counting"]["actors"] == 1 and len(list(tmp_path.glob("setup-*"))) == 3


class BrokenSetupStage(FragileStage):
    name = "broken"

    def setup(self) -> None:
        raise FileNotFoundError("weights not found: /models/sam2 (download them first)")


def test_a_failing_setup_stops_the_run_with_its_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights not found"):
        _runner().run(BrokenSetupStage(Workspace(tmp_path)), [Item("a"), Item("b")])


def test_a_gpu_stage_on_a_cluster_without_gpus_is_a_config_error(tmp_path):
    from pvtt.errors import ConfigError
    from pvtt.stage import Resources

    class GpuStage(FragileStage):
        name = "gpu"
        resources = Resources(cpus=1, gpus=1)

    with pytest.raises(ConfigError, match="runner.ray.actors.gpu"):
        _runner().run(GpuStage(Workspace(tmp_path)), [Item("a")])


def test_actors_per_gpu_shares_a_gpu_between_that_many_actors(tmp_path):
    """``actors_per_gpu: N``: each actor of a GPU stage asks for 1/N GPU, so N fit on each GPU; CPU stages and
    the CPUs an actor needs are unchanged."""
    from pvtt.stage import Resources

    class GpuStage(FragileStage):
        name = "gpu"
        resources = Resources(cpus=1, gpus=1)

    stage, cpu_stage = GpuStage(Workspace(tmp_path)), FragileStage(Workspace(tmp_path))
    cluster = {"CPU": 16.0, "GPU": 2.0}
    assert _runner().actor_count(stage, 100, cluster) == 2
    shared = _runner(actors_per_gpu=3)
    assert shared.gpus_per_actor(stage) == pytest.approx(1 / 3) and shared.gpus_per_actor(cpu_stage) == 0
    assert shared.actor_count(stage, 100, cluster) == 6
    assert shared.actor_count(stage, 4, cluster) == 4  # never more actors than items
    assert _runner(actors_per_gpu=8).actor_count(stage, 100, cluster) == 16
    assert _runner(actors_per_gpu=32).actor_count(stage, 100, cluster) == 16  # the CPUs cap it
    assert shared.actor_count(cpu_stage, 100, cluster) == _runner().actor_count(cpu_stage, 100, cluster)



def test_actors_per_gpu_per_stage_shares_only_the_stages_named(tmp_path):
    """``actors_per_gpu: {segment: 4}`` packs 4 actors of the segment stage on a GPU and leaves every other GPU stage
    at one actor per GPU (the `gpu` preset: 4 SAM2 actors, one synthesize actor holding FLUX and VACE)."""
    from pvtt.stage import Resources

    class Segment(FragileStage):
        name = "segment"
        resources = Resources(cpus=1, gpus=1)

    class Synthesize(Segment):
        name = "synthesize"

    runner = _runner(actors_per_gpu={"segment": 4})
    segment, synthesize = Segment(Workspace(tmp_path)), Synthesize(Workspace(tmp_path))
    cluster = {"CPU": 16.0, "GPU": 1.0}
    assert runner.gpus_per_actor(segment) == pytest.approx(0.25) and runner.gpus_per_actor(synthesize) == 1
    assert runner.actor_count(segment, 100, cluster) == 4 and runner.actor_count(synthesize, 100, cluster) == 1


class BatchingStage(Stage[Item]):
    """Takes 3 items per call; each run_batch call leaves a file naming its batch (it runs in an actor process);
    a batch holding 'poison' kills its worker process."""

    name = "batching"

    @property
    def batch_size(self) -> int:
        return 3

    def key(self, item: Item) -> str:
        return "k"

    def run_batch(self, jobs):
        ids = [item.id for item, _ in jobs]
        (self.workspace.root / f"batch-{time.monotonic_ns()}-{os.getpid()}").write_text(",".join(ids))
        if "poison" in ids:
            os._exit(1)
        return [({"value": item.id.upper(), "batch": ids}, {}) for item, _ in jobs]


def _batches(root: Path) -> list[list[str]]:
    """The batches run_batch was called with, in the order they were called (one actor: a single clock)."""
    files = sorted(root.glob("batch-*"), key=lambda p: int(p.name.split("-")[1]))
    return [p.read_text().split(",") for p in files]


@pytest.mark.parametrize("actors", [1, 2])
def test_a_stage_that_batches_gets_batch_size_items_per_call(tmp_path, actors):
    items = [Item(f"i{n}") for n in range(7)]
    runner = _runner(actors_per_stage=actors)
    records = runner.run(BatchingStage(Workspace(tmp_path)), items)
    assert [r.item_id for r in records] == [i.id for i in items]
    assert all(r.status is Status.DONE for r in records)
    # each record is its own item's, and says which batch it came in
    assert [r.outputs["value"] for r in records] == [i.id.upper() for i in items]
    batches = _batches(tmp_path)
    for record in records:
        assert record.item_id in record.outputs["batch"] and record.outputs["batch"] in batches
        assert record.metrics.get("batch", 1) == len(record.outputs["batch"])
    if actors == 1:
        assert batches == [["i0", "i1", "i2"], ["i3", "i4", "i5"], ["i6"]]
    else:
        assert sorted(len(b) for b in batches) == [1, 3, 3]
        assert sorted(i for b in batches for i in b) == [i.id for i in items]
    assert runner.stats["batching"] == {"actors": actors, "worker_deaths": 0, "items_retried": 0}


def test_batch_size_caps_the_actors_at_the_number_of_batches(tmp_path):
    runner = _runner()  # 2 CPUs would fit 2 actors, but 3 items are one batch
    records = runner.run(BatchingStage(Workspace(tmp_path)), [Item("a"), Item("b"), Item("c")])
    assert [r.status for r in records] == [Status.DONE] * 3
    assert runner.stats["batching"]["actors"] == 1 and _batches(tmp_path) == [["a", "b", "c"]]


@pytest.mark.parametrize("max_retries", [0, 2])
def test_an_item_that_kills_its_batch_is_isolated_and_its_neighbours_are_done(tmp_path, max_retries):
    """The whole batch dies with the worker: each of its items is charged one death and retried alone; the
    neighbours then succeed, the poisonous item fails after max_retries deaths alone (at least one: a death in
    a batch of several never fails an item), and the items after it are batched again."""
    items = [Item("a"), Item("b"), Item("poison"), Item("c"), Item("d")]
    runner = _runner(actors_per_stage=1, max_retries=max_retries)
    records = runner.run(BatchingStage(Workspace(tmp_path)), items)
    assert [r.item_id for r in records] == [i.id for i in items]
    by_id = {r.item_id: r for r in records}
    assert [by_id[i].status for i in ("a", "b", "c", "d")] == [Status.DONE] * 4
    assert [by_id[i].outputs["value"] for i in ("a", "b", "c", "d")] == ["A", "B", "C", "D"]
    poison = by_id["poison"]
    deaths = max(2, max_retries + 1)
    assert poison.status is Status.FAILED
    assert f"the worker process died {deaths} times while processing this item" in poison.reason
    assert Workspace(tmp_path).read_record("batching", "poison").status is Status.FAILED
    assert _batches(tmp_path) == [["a", "b", "poison"], ["a"], ["b"], *[["poison"]] * (deaths - 1), ["c", "d"]]
    assert runner.stats["batching"] == {"actors": 1, "worker_deaths": deaths, "items_retried": 3 + deaths - 2}


# -- the real pipeline ------------------------------------------------------------------------------------------
def _digest(root: Path, pattern: str) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob(pattern))}


def _records(root: Path, stage: str) -> dict:
    return {r.item_id: (r.status, r.key, r.reason, r.outputs) for r in Workspace(root).records(stage)}


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    return make_messy_catalog(tmp_path_factory.mktemp("catalog"))


def test_prepare_on_ray_gives_the_records_and_bytes_of_the_local_runner(messy, tmp_path):
    config = load_config(None, FAST)
    local = prepare(messy, tmp_path / "local", config)
    on_ray = prepare(messy, tmp_path / "ray", config, runner=_runner())
    assert on_ray.counts == local.counts
    for stage in ("ingest", "normalize", "product"):
        assert _records(tmp_path / "ray", stage) == _records(tmp_path / "local", stage)
    clips = _digest(tmp_path / "local", "*.mp4")
    assert len(clips) >= 4 and _digest(tmp_path / "ray", "*.mp4") == clips
    assert _digest(tmp_path / "ray", "*.png") == _digest(tmp_path / "local", "*.png")


@pytest.fixture(scope="module")
def six(tmp_path_factory):
    catalog = tmp_path_factory.mktemp("six")
    (catalog / "videos").mkdir()
    for i in range(6):
        multi_shot_video(catalog / "videos" / f"v{i}.mp4", [40, 30], height=96, width=128, seed=i)
    return catalog


def test_a_worker_killed_midway_through_prepare_loses_nothing(six, tmp_path):
    config = load_config(None, FAST)
    prepare(six, tmp_path / "clean", config)
    runner = _runner()
    records = tmp_path / "killed" / "records" / "normalize"
    killed: list[int] = []

    def kill_one_worker_midway() -> None:
        deadline = time.time() + 60
        while time.time() < deadline:
            done = len(list(records.glob("*.json"))) if records.is_dir() else 0
            pids = runner.worker_pids
            if 1 <= done < 5 and pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=kill_one_worker_midway)
    watcher.start()
    summary = prepare(six, tmp_path / "killed", config, runner=runner)
    watcher.join()
    assert killed, "the kill should land while normalize runs"
    assert runner.stats["normalize"]["worker_deaths"] == 1
    assert summary.counts["normalize"]["done"] == 6
    assert _digest(tmp_path / "killed", "*.mp4") == _digest(tmp_path / "clean", "*.mp4")
    assert _records(tmp_path / "killed", "normalize") == _records(tmp_path / "clean", "normalize")
    assert not list((tmp_path / "killed").rglob("*.tmp-*"))


@pytest.mark.parametrize("first,second", [("local", "ray"), ("ray", "local")])
def test_a_run_started_on_one_runner_is_finished_on_the_other(six, tmp_path, first, second):
    config = load_config(None, FAST)
    prepare(six, tmp_path / "clean", config)
    runners = {"local": LocalRunner(1, progress=False), "ray": _runner()}
    templates = load_catalog(six).templates
    ws = Workspace(tmp_path / "ws")
    stage = NormalizeStage(ws, config.shots, config.normalize, config.media)
    with ws.lock():  # as if the first run had been killed after three templates
        runners[first].run(stage, templates[:3])
    records = runners[second].run(stage, templates)
    assert [bool(r.metrics.get("cached")) for r in records] == [True] * 3 + [False] * 3
    assert _digest(ws.root, "*.mp4") == _digest(tmp_path / "clean", "*.mp4")
    assert _records(ws.root, "normalize") == _records(tmp_path / "clean", "normalize")
    # and the whole prepare on the second runner now redoes nothing
    before = {p: p.stat().st_mtime_ns for p in ws.root.rglob("*") if p.suffix in (".mp4", ".png")}
    prepare(six, ws.root, config, runner=runners[second])
    assert {p: p.stat().st_mtime_ns for p in ws.root.rglob("*") if p.suffix in (".mp4", ".png")} == before
