"""The workspace's artifacts as the stages read them: one typed reader per kind, beside its file format.

A stage reads what another stage made through here, never by opening a record's ``outputs`` itself:

- :func:`record` (any stage, item): its *done* record (for keys);
- per clip: :func:`box` (``locate``), :func:`masks` (``segment``), :func:`tracks` (``track``), :func:`background`
  (``erase``), :func:`embedding` (``curate`` or ``embed``), :func:`depth` (``depth``), :func:`lora_path`
  (``motion_lora``) and :func:`registration_path` (``points_registration``), whose files the propagation backend
  loads, :func:`caption` and :func:`vlm_points` (the VLM's ``caption`` and ``points``);
- per product: :func:`photo` (the catalog photo: ``product``), :func:`target` (the target image's record:
  ``cutout``, else ``video_cutout``), :func:`cutout` and :func:`target_views` (RGBA images);
- per pair: :func:`edited` and :func:`masks_b` (``synthesize``, of a kept or a rejected pair).

Without the record that makes the artifact, a reader raises :class:`~pvtt.errors.MissingArtifact`, naming the
stage and the item (a :class:`~pvtt.errors.BadInput`: the reading stage records the item as failed with that
message and the run goes on). The readers of artifacts only some settings make (:func:`depth`,
:func:`lora_path`, :func:`registration_path`) and :func:`record` and :func:`target` return None instead when
called with ``required=False``.

Why a module beside :mod:`pvtt.store` rather than methods of :class:`~pvtt.store.Workspace`: the workspace is
the layer under every stage and knows records and files, not which stage writes what in which format, while a
reader needs both. So the readers sit here with the file formats they read (the mask, track and pair-mask
``.npz`` files, and the atomic writers of arrays and videos): reading an artifact imports no backend package
and no stage, and nothing imports back up: this module imports the store, the store nothing of this.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from pvtt.errors import BadInput, MissingArtifact
from pvtt.media.image import load_image_rgba
from pvtt.media.video import read_video, write_video
from pvtt.store import Workspace, atomic_path, read_json
from pvtt.types import Box, ItemRecord, Masks, Status, Tracks

# -- file formats and writers ------------------------------------------------------------------------------------


def save_array(path, **arrays: np.ndarray) -> None:
    """``np.savez_compressed`` to a temporary name, then renamed into place."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)


def write_mp4(path, frames: np.ndarray, fps: float, crf: int, preset: str = "veryfast") -> None:
    """An H.264 video artifact, written to a temporary name, then renamed into place."""
    with atomic_path(path) as tmp:
        write_video(tmp, frames, fps, crf=crf, preset=preset)


def save_masks(path: str | Path, masks: Masks) -> None:
    """Write ``masks`` to ``path`` exactly (no suffix is added): ``np.packbits`` of the data + shape + confidence."""
    data = np.asarray(masks.data, bool)
    confidence = (np.ones(data.shape[0], np.float32) if masks.confidence is None
                  else np.asarray(masks.confidence, np.float32))
    with open(path, "wb") as f:
        np.savez_compressed(f, bits=np.packbits(data.ravel()), shape=np.array(data.shape, np.int64),
                            confidence=confidence)


def load_masks(path: str | Path) -> Masks:
    """Read masks written by :func:`save_masks`."""
    try:
        with np.load(path) as z:
            shape = tuple(int(v) for v in z["shape"])
            data = np.unpackbits(z["bits"], count=int(np.prod(shape))).astype(bool).reshape(shape)
            return Masks(data, z["confidence"].astype(np.float32))
    except (OSError, KeyError, ValueError) as exc:
        raise BadInput(f"cannot read masks from {path}: {exc}") from exc


def save_tracks(path: str | Path, tracks: Tracks) -> None:
    """Write ``tracks`` to ``path`` exactly (no suffix added): points, visible, labels."""
    with open(path, "wb") as f:
        np.savez_compressed(f, points=np.asarray(tracks.points, np.float32), visible=np.asarray(tracks.visible, bool),
                            labels=np.array(list(tracks.labels), dtype=str))


def load_tracks(path: str | Path) -> Tracks:
    """Read tracks written by :func:`save_tracks`."""
    try:
        with np.load(path) as z:
            return Tracks(z["points"].astype(np.float32), z["visible"].astype(bool), [str(s) for s in z["labels"]])
    except (OSError, KeyError, ValueError) as exc:
        raise BadInput(f"cannot read tracks from {path}: {exc}") from exc


def save_masks_b(path: str | Path, masks: np.ndarray) -> None:
    """B's masks of a synthesized pair, ``(T, H, W)`` bool, bit-packed along the rows (read by :func:`masks_b`)."""
    save_array(path, masks=np.packbits(masks, axis=-1), shape=np.array(masks.shape))


# -- readers -----------------------------------------------------------------------------------------------------


def record(ws: Workspace, stage: str, item_id: str, required: bool = True) -> ItemRecord | None:
    """The *done* record of ``stage`` for ``item_id``. None done: :class:`MissingArtifact`, or with
    ``required=False`` None (an artifact only some settings make)."""
    found = ws.read_record(stage, item_id)
    if found is not None and found.status is Status.DONE:
        return found
    if required:
        raise MissingArtifact(stage, item_id, found)
    return None


def _path(ws: Workspace, stage: str, item_id: str, field: str, required: bool = True) -> Path | None:
    found = record(ws, stage, item_id, required)
    return None if found is None else ws.abs(found.outputs[field])


def box(ws: Workspace, clip_id: str) -> Box:
    """A's box on the clip's first frame."""
    out = record(ws, "locate", clip_id).outputs
    return Box(*out["box"], confidence=out["confidence"], source=out["source"])


def masks(ws: Workspace, clip_id: str) -> Masks:
    """A's masks through the clip."""
    return load_masks(_path(ws, "segment", clip_id, "masks_path"))


def tracks(ws: Workspace, clip_id: str) -> Tracks:
    """A's semantic points through the clip."""
    return load_tracks(_path(ws, "track", clip_id, "tracks_path"))


def background(ws: Workspace, clip_id: str) -> np.ndarray:
    """The clip with A erased, ``(T, H, W, 3)`` uint8."""
    return read_video(_path(ws, "erase", clip_id, "background_path"))[0]


def embedding(ws: Workspace, clip_id: str, stage: str = "curate") -> np.ndarray:
    """The clip's vector for the near-duplicate check: ``curate``'s thumbnail vector or ``embed``'s DINOv2 one."""
    return np.load(_path(ws, stage, clip_id, "embedding_path"))["embedding"]


def depth(ws: Workspace, clip_id: str, required: bool = True) -> np.ndarray | None:
    """The clip's depth video frames (for depth-conditioned propagation)."""
    path = _path(ws, "depth", clip_id, "depth_path", required)
    return None if path is None else read_video(path)[0]


def lora_path(ws: Workspace, clip_id: str, required: bool = True) -> Path | None:
    """The file of the clip's motion LoRA(s) (the propagation backend loads it)."""
    return _path(ws, "motion_lora", clip_id, "lora_path", required)


def registration_path(ws: Workspace, clip_id: str, required: bool = True) -> Path | None:
    """The file of the clip's point registration for ``svd-points`` (the propagation backend loads it)."""
    return _path(ws, "points_registration", clip_id, "registration_path", required)


def caption(ws: Workspace, clip_id: str) -> str:
    """The VLM's dense caption of the clip."""
    return read_json(_path(ws, "caption", clip_id, "caption_path"))["caption"]


def vlm_points(ws: Workspace, clip_id: str) -> dict:
    """The VLM's named points on the clip's first frame (``points.json``: ``points`` [{label, x, y}], ``error``…)."""
    return read_json(_path(ws, "points", clip_id, "points_path"))


def photo(ws: Workspace, product_id: str) -> np.ndarray:
    """The product's catalog photo as stored, RGBA."""
    return load_image_rgba(_path(ws, "product", product_id, "image_path"))


TARGET_SOURCES = (("cutout", "photo"), ("video_cutout", "video"))  # in order of preference


def target(ws: Workspace, product_id: str, required: bool = True) -> ItemRecord | None:
    """The record of ``product_id``'s target image, with ``outputs["source"]`` saying where it comes from:
    ``"photo"`` (the catalog photo's cutout, when that is done: confident) or else ``"video"`` (the cutout from
    its template's clips, when that is done). Every reader of a product's target image goes through here.

    Neither done: :class:`MissingArtifact` or, with ``required=False``, None.
    """
    for stage, source in TARGET_SOURCES:
        found = record(ws, stage, product_id, required=False)
        if found is not None:
            return dataclasses.replace(found, outputs={**found.outputs, "source": source})
    if required:
        raise MissingArtifact("cutout", product_id, message=f"no target image for product {product_id}: neither its "
                              "photo cutout nor its video cutout is done (run the stages in order)")
    return None


def cutout(ws: Workspace, product_id: str) -> np.ndarray:
    """The product's target image (RGBA), from the photo or the video as :func:`target` chooses."""
    return load_image_rgba(ws.abs(target(ws, product_id).outputs["cutout_path"]))


def target_views(ws: Workspace, product_id: str) -> list[np.ndarray]:
    """The target's extra reference views (RGBA): other frames of a video product; none for a photo."""
    return [load_image_rgba(ws.abs(p)) for p in target(ws, product_id).outputs.get("view_paths", [])]


def _pair_path(ws: Workspace, pair_id: str, field: str) -> Path:
    """A synthesized pair's file: a rejected pair keeps its files too (for the review page)."""
    found = ws.read_record("synthesize", pair_id)
    if found is None or field not in found.outputs:
        raise MissingArtifact("synthesize", pair_id, found, f"synthesize has no {field} for {pair_id} (not "
                                                            "synthesized, or it failed)")
    return ws.abs(found.outputs[field])


def edited(ws: Workspace, pair_id: str) -> np.ndarray:
    """The pair's edited clip, ``(T, H, W, 3)`` uint8."""
    return read_video(_pair_path(ws, pair_id, "edited_path"))[0]


def masks_b(ws: Workspace, pair_id: str) -> np.ndarray:
    """B's masks in the pair's edited clip, ``(T, H, W)`` bool (written by :func:`save_masks_b`)."""
    with np.load(_pair_path(ws, pair_id, "masks_b_path")) as data:
        return np.unpackbits(data["masks"], axis=-1)[..., : int(data["shape"][-1])].astype(bool)
