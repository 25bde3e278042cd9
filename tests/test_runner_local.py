"""The local runner: input order kept, a worker process that dies does not stop the run, and cached items start no
worker process."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pvtt.runners.local
from pvtt.runners.local import LocalRunner
from pvtt.stage import Stage
from pvtt.store import Workspace
from pvtt.types import Status


@dataclass
class Item:
    id: str


class CrashingStage(Stage[Item]):
    """Kills its worker process on item 'poison' (like a segfault in a native decoder)."""

    name = "crashy"

    def key(self, item: Item) -> str:
        return "k"

    def run(self, item: Item, key: str):
        if item.id == "poison":
            os._exit(1)
        return {"value": item.id.upper()}, {}


def test_records_come_back_in_input_order(tmp_path):
    items = [Item(f"i{n}") for n in range(5)]
    records = LocalRunner(workers=2, progress=False).run(CrashingStage(Workspace(tmp_path)), items)
    assert [r.item_id for r in records] == [i.id for i in items]
    assert all(r.status is Status.DONE for r in records)


def test_a_dying_worker_fails_only_its_item(tmp_path):
    items = [Item("a"), Item("poison"), Item("b"), Item("c"), Item("d")]
    records = LocalRunner(workers=2, progress=False).run(CrashingStage(Workspace(tmp_path)), items)
    by_id = {r.item_id: r for r in records}
    assert by_id["poison"].status is Status.FAILED and "worker process died" in by_id["poison"].reason
    assert all(by_id[i].status is Status.DONE for i in "abcd")
    assert Workspace(tmp_path).read_record("crashy", "poison").status is Status.FAILED


def test_a_re_run_of_cached_items_starts_no_process_pool(tmp_path, monkeypatch):
    items = [Item(f"i{n}") for n in range(3)]
    LocalRunner(workers=2, progress=False).run(CrashingStage(Workspace(tmp_path)), items)

    def no_pool(*args, **kwargs):
        raise AssertionError("a process pool was started for cached items")

    monkeypatch.setattr(pvtt.runners.local, "ProcessPoolExecutor", no_pool)
    records = LocalRunner(workers=2, progress=False).run(CrashingStage(Workspace(tmp_path)), items)
    assert [r.metrics.get("cached") for r in records] == [True] * 3
