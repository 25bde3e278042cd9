"""The workspace: artifacts, per-item records and the lock.

Layout under the workspace root::

    workspace.lock                     held by the running pvtt process (flock; freed if it dies)
    config.yaml                        the effective config of the last run
    catalog.json                       what ingest read
    records/<stage>/<item_id>.json     one ItemRecord per stage and item: status, key, outputs, reason
    <stage dir>/<item_id>/<key>/...    artifacts, e.g. clips/JEW002/<key>/JEW002-s00-w00.mp4

Every file is written to a temporary name in its final folder and renamed into place, so a
killed process leaves either the old file, the new file, or a stray ``.tmp-*`` file (removed at
the next start) — never a half-written artifact under its real name. A record is written only
after all of its artifacts, so a record that says *done* always has its outputs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pvtt.errors import WorkspaceBusy
from pvtt.types import ItemRecord, Status

TMP_MARK = ".tmp-"


def file_fingerprint(path: str | Path, chunk: int = 1 << 20) -> str:
    """Identity of a file's content: size plus a hash of its first and last MiB.

    Cheap for large videos and independent of the path, so moving a catalog does not redo work.
    """
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(chunk))
        if size > chunk:
            handle.seek(max(chunk, size - chunk))
            digest.update(handle.read(chunk))
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it to ``final`` if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def read_json(path: str | Path) -> Any:
    """What :func:`write_json` wrote."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str), encoding="utf-8")


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


class Workspace:
    """A run's directory. Cheap to construct and picklable: workers build their own from the root."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()

    # -- paths --------------------------------------------------------------------------
    def artifact_dir(self, stage_dir: str, item_id: str, key: str) -> Path:
        return self.root / stage_dir / item_id / key

    def rel(self, path: str | Path) -> str:
        return str(Path(path).resolve().relative_to(self.root))

    def abs(self, rel: str | Path) -> Path:
        return self.root / rel

    def record_path(self, stage: str, item_id: str) -> Path:
        return self.root / "records" / stage / f"{item_id}.json"

    # -- records ------------------------------------------------------------------------
    def write_record(self, record: ItemRecord) -> None:
        data = dataclasses.asdict(record)
        data["status"] = record.status.value
        write_json(self.record_path(record.stage, record.item_id), data)

    def read_record(self, stage: str, item_id: str) -> ItemRecord | None:
        path = self.record_path(stage, item_id)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # a damaged record is treated as missing: the item is redone
        data["status"] = Status(data["status"])
        return ItemRecord(**data)

    def records(self, stage: str) -> list[ItemRecord]:
        folder = self.root / "records" / stage
        if not folder.is_dir():
            return []
        out = []
        for path in sorted(folder.glob("*.json")):
            record = self.read_record(stage, path.stem)
            if record is not None:
                out.append(record)
        return out

    def stages(self) -> list[str]:
        folder = self.root / "records"
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def cached(self, stage: str, item_id: str, key: str, retry_failed: bool = True) -> ItemRecord | None:
        """The record of ``item_id`` if it is final for ``key``: done or rejected, with all its outputs present (a
        pair the judge rejected keeps its edited clip for the review page; export copies it).

        A failed record is final only when ``retry_failed`` is off.
        """
        record = self.read_record(stage, item_id)
        if record is None or record.key != key:
            return None
        if record.status is Status.FAILED and retry_failed:
            return None
        if record.status is not Status.FAILED and not all(self.abs(p).exists() for p in _paths(record.outputs)):
            return None
        return record

    # -- lock and housekeeping ----------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the workspace exclusively; a second pvtt process gets :class:`WorkspaceBusy`."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "workspace.lock"
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise WorkspaceBusy(
                f"workspace {self.root} is in use by {holder}; wait for it to finish or use another --out"
            ) from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}")
            handle.flush()
            self.remove_stale_temp()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def remove_stale_temp(self) -> int:
        """Delete temporary files left by a killed run (only safe while holding the lock)."""
        count = 0
        for path in self.root.rglob(f"*{TMP_MARK}*"):
            if path.is_file():
                path.unlink(missing_ok=True)
                count += 1
        return count


def _paths(outputs: dict[str, Any]) -> list[str]:
    """Artifact paths in a record's outputs: string values under keys ending in ``path`` or ``paths``."""
    found: list[str] = []
    for key, value in outputs.items():
        if key.endswith("path") and isinstance(value, str):
            found.append(value)
        elif key.endswith("paths") and isinstance(value, list):
            found.extend(v for v in value if isinstance(v, str))
        elif isinstance(value, list):
            for entry in value:
                if isinstance(entry, dict):
                    found.extend(_paths(entry))
    return found
