"""Workspace: atomic writes, records, cache validity, and the lock against concurrent runs."""

from __future__ import annotations

import multiprocessing

import pytest

from pvtt.errors import WorkspaceBusy
from pvtt.store import Workspace, atomic_path, file_fingerprint
from pvtt.types import ItemRecord, Status


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    final = tmp_path / "a" / "x.txt"
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("killed")
    assert not final.exists() and list(final.parent.iterdir()) == []


def test_cached_requires_same_key_and_outputs(tmp_path):
    ws = Workspace(tmp_path)
    (tmp_path / "out.bin").write_bytes(b"1")
    ws.write_record(ItemRecord("s", "i", "k1", Status.DONE, outputs={"file_path": "out.bin"}))
    assert ws.cached("s", "i", "k1") is not None
    assert ws.cached("s", "i", "k2") is None  # a changed setting
    (tmp_path / "out.bin").unlink()
    assert ws.cached("s", "i", "k1") is None  # an artifact went missing


def test_a_rejected_record_whose_files_went_missing_is_made_again(tmp_path):
    """A pair the judge rejected keeps its edited clip for the review page: with the file gone, the export failed
    on it (FileNotFoundError) instead of the pair being made again."""
    ws = Workspace(tmp_path)
    (tmp_path / "edited.mp4").write_bytes(b"1")
    ws.write_record(ItemRecord("s", "i", "k", Status.REJECTED, reason="reject", outputs={"edited_path": "edited.mp4"}))
    assert ws.cached("s", "i", "k") is not None
    (tmp_path / "edited.mp4").unlink()
    assert ws.cached("s", "i", "k") is None
    ws.write_record(ItemRecord("s", "j", "k", Status.REJECTED, reason="rejected at curate"))  # no files: final
    assert ws.cached("s", "j", "k") is not None


def test_failed_items_are_retried_unless_asked_not_to(tmp_path):
    ws = Workspace(tmp_path)
    ws.write_record(ItemRecord("s", "i", "k", Status.FAILED, reason="boom"))
    assert ws.cached("s", "i", "k") is None
    assert ws.cached("s", "i", "k", retry_failed=False).reason == "boom"


def test_damaged_record_counts_as_missing(tmp_path):
    ws = Workspace(tmp_path)
    ws.record_path("s", "i").parent.mkdir(parents=True)
    ws.record_path("s", "i").write_text("{half")
    assert ws.read_record("s", "i") is None


def _try_lock(root, queue):
    try:
        with Workspace(root).lock():
            queue.put("got it")
    except WorkspaceBusy as exc:
        queue.put(str(exc))


def test_second_process_cannot_take_the_lock(tmp_path):
    ws = Workspace(tmp_path)
    queue = multiprocessing.get_context("spawn").Queue()
    with ws.lock():
        process = multiprocessing.get_context("spawn").Process(target=_try_lock, args=(tmp_path, queue))
        process.start()
        process.join(30)
        message = queue.get(timeout=5)
    assert "is in use by pid" in message
    with ws.lock():  # released afterwards
        pass


def test_lock_removes_stale_temp_files(tmp_path):
    stale = tmp_path / "clips" / "x.mp4.tmp-123"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half")
    with Workspace(tmp_path).lock():
        assert not stale.exists()


def test_fingerprint_follows_content_not_path(tmp_path):
    (tmp_path / "a").write_bytes(b"same")
    (tmp_path / "b").write_bytes(b"same")
    (tmp_path / "c").write_bytes(b"diff")
    assert file_fingerprint(tmp_path / "a") == file_fingerprint(tmp_path / "b") != file_fingerprint(tmp_path / "c")
