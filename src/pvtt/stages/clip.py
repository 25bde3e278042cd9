"""Per-clip stages: locate → segment → track → curate → erase, and the clip artifacts a propagation
strategy needs: the depth video (``vace-depth``, ``auto``) and the motion LoRA (``motion-lora``, ``i2vedit``).

Each stage reads its inputs from the records of the stages before it (through :mod:`pvtt.artifacts`), so it can
run in any process of any runner, and keys its output on those records' keys plus its own settings: changing
``track.num_points`` redoes tracking and everything after it, not segmentation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pvtt import artifacts
from pvtt.artifacts import save_array, save_masks, save_tracks, write_mp4
from pvtt.config import settings_key
from pvtt.curate import clip_embedding, curate
from pvtt.errors import RejectItem
from pvtt.hands import HandSettings, make_hand_detector
from pvtt.items import ClipItem, ProductItem
from pvtt.locate import LocateSettings, read_reviewer_boxes
from pvtt.media.image import write_png
from pvtt.review_media import contact_sheet, half_size, overlay_frames
from pvtt.stage import Stage
from pvtt.store import Workspace, atomic_path
from pvtt.track import forward_backward_error
from pvtt.types import Box, ItemRecord, Status


def mask_frames(masks: np.ndarray) -> np.ndarray:
    """(T,H,W) bool → (T,H,W,3) uint8 white-on-black, for a lossless mask video."""
    return np.repeat(masks[..., None].astype(np.uint8) * 255, 3, axis=3)


class ClipStage(Stage[ClipItem]):
    """Base of the per-clip stages: ``settings`` is the stage's own section of the config; the backend it names
    (a section with a ``backend`` field) is built (cheaply) by :meth:`make_backend` and called as
    ``self.backend``."""

    version = "1"
    after: tuple[str, ...] = ()  # upstream stages whose keys enter this stage's key

    def __init__(self, workspace: Workspace, settings: Any, retry_failed: bool = True, crf: int = 18):
        super().__init__(workspace, retry_failed)
        self.settings = settings
        self.crf = crf
        self.backend = self.make_backend(settings)

    def make_backend(self, settings: Any) -> Any:
        """The backend this stage calls: the one its settings name, through their registry (none for a section
        without a ``backend`` field)."""
        registry = getattr(type(settings), "backends", None)
        return registry.make(settings) if registry is not None else None

    def backends(self):
        return () if self.backend is None else (self.backend,)

    def key(self, clip: ClipItem) -> str:
        keys = [artifacts.record(self.workspace, s, clip.id).key for s in self.after]
        return settings_key(self.name, self.version, clip.key, clip.path, *keys, self.settings)

    def out(self, clip: ClipItem, key: str, name: str):
        return self.workspace.artifact_dir(self.name, clip.id, key) / name

    def write_video(self, clip: ClipItem, key: str, name: str, frames: np.ndarray, crf: int | None = None) -> str:
        """Write ``frames`` at the clip's frame rate as this stage's artifact ``name`` (``crf``: the stage's by
        default); returns its workspace-relative path, as the stage's outputs name it."""
        path = self.out(clip, key, name)
        write_mp4(path, frames, clip.fps, crf=self.crf if crf is None else crf)
        return self.workspace.rel(path)


class LocateStage(ClipStage):
    """The product's box on the clip's first frame: catalog box → the template's own photo → saliency."""

    name = "locate"
    version = "4"  # 3: a box projected from the photo's product outline is source photo-outline; 4: a lifestyle
    # photo's match gives way to the salient object it nests with

    def __init__(self, workspace: Workspace, settings: LocateSettings, retry_failed: bool = True, crf: int = 18):
        super().__init__(workspace, settings, retry_failed, crf)
        self._reviewer = read_reviewer_boxes(settings.boxes) if settings.boxes else {}

    def key(self, clip: ClipItem) -> str:
        photo = self._own_product(clip)
        # the reviewer file's own entry for this clip, not the file: editing another clip's box keeps this cache
        return settings_key(self.name, self.version, clip.key, clip.path, clip.hint, photo.key if photo else None,
                            self.settings.model_copy(update={"boxes": ""}), self._reviewer.get(clip.id))

    def _hint(self, clip: ClipItem) -> Box | None:
        """The reviewer's box for ``clip`` when ``locate.boxes`` lists one, else the catalog's."""
        box = self._reviewer.get(clip.id)
        if box is None:
            return clip.hint_box
        return Box(box[0] * clip.width, box[1] * clip.height, box[2] * clip.width, box[3] * clip.height,
                   confidence=1.0, source="reviewer")

    def _own_product(self, clip: ClipItem) -> ProductItem | None:
        if not clip.product_id:
            return None
        record = artifacts.record(self.workspace, "product", clip.product_id, required=False)
        if record is None:
            return None
        return ProductItem(clip.product_id, record.outputs["image_path"], record.key, clip.category,
                           clip.subcategory, clip.description, clip.template_id)

    def run(self, clip: ClipItem, key: str):
        video = clip.load(self.workspace)
        own = self._own_product(clip)
        product = own.load(self.workspace) if own else None
        box = self.backend.locate(video, product, self._hint(clip))
        outputs = {"box": [round(float(v), 2) for v in box.as_tuple()], "source": box.source,
                   "confidence": round(float(box.confidence), 4)}
        return outputs, {"box_area_fraction": round(box.area / (clip.width * clip.height), 4)}


class SegmentStage(ClipStage):
    """Per-frame product masks from the located box; stored compactly and as a lossless mask video."""

    name = "segment"
    version = "2"
    after = ("locate",)

    def run(self, clip: ClipItem, key: str):
        video = clip.load(self.workspace)
        masks = self.backend.segment(video, artifacts.box(self.workspace, clip.id))
        areas = masks.areas / float(clip.width * clip.height)
        if not masks.data[0].any():
            raise RejectItem("empty mask on the first frame: segmentation found no product in the located box",
                             metrics={"first_area": 0.0})
        masks_path = self.out(clip, key, "masks.npz")
        with atomic_path(masks_path) as tmp:
            save_masks(tmp, masks)
        outputs = {"masks_path": self.workspace.rel(masks_path),
                   "mask_video_path": self.write_video(clip, key, "masks.mp4", mask_frames(masks.data), crf=0)}
        metrics = {"mean_area": round(float(areas.mean()), 4), "min_area": round(float(areas.min()), 4),
                   "empty_frames": int((masks.areas == 0).sum())}
        if masks.confidence is not None:
            metrics["mean_confidence"] = round(float(np.mean(masks.confidence)), 4)
        return outputs, metrics


class TrackStage(ClipStage):
    """Semantic points on the product, tracked through the clip with visibility."""

    name = "track"
    version = "3"  # 2: records the forward-backward error; 3: the mask alignment sees the outline
    after = ("segment",)

    def key(self, clip: ClipItem) -> str:
        if self.settings.points != "vlm":
            return super().key(clip)
        points = self.workspace.read_record("points", clip.id)  # track.points: vlm (pvtt.stages.vlm.PointsStage)
        return settings_key(super().key(clip), points and points.key, points and points.status.value)

    def run(self, clip: ClipItem, key: str):
        video = clip.load(self.workspace)
        given, source = None, {}
        if self.settings.points == "vlm":  # the VLM's named points, or the features with the reason
            from pvtt.stages.vlm import tracker_points

            given, source = tracker_points(self.workspace, clip.id, self.settings.min_vlm_points)
        tracks = self.backend.track(video, artifacts.masks(self.workspace, clip.id), points=given)
        path = self.out(clip, key, "tracks.npz")
        with atomic_path(path) as tmp:
            save_tracks(tmp, tracks)
        visible = tracks.visible
        fb = forward_backward_error(video, tracks, self.settings.window, self.settings.levels)
        metrics = {"num_points": tracks.num_points,
                   "visible_last": round(float(visible[-1].mean()) if visible.size else 0.0, 4),
                   "visible_mean": round(float(visible.mean()) if visible.size else 0.0, 4),
                   # px, over visible steps; NaN (no visible step) is written as null
                   "fb_median": round(float(np.nanmedian(fb)), 3) if np.isfinite(fb).any() else None, **source}
        return {"tracks_path": self.workspace.rel(path)}, metrics


class CurateStage(ClipStage):
    """Motion, blur, exposure and product-visibility checks; an embedding for near-duplicates; review media."""

    name = "curate"
    version = "13"  # 3: the hand check; 4: mask drift and the given box's cover; 5: the given box's fill;
    # 6: decode damage; 7: photo-outline boxes are checked as given boxes; 8: photo-outline boxes by the span of the
    # mask (min_outline_span); 9: masks in floating pieces (max_piece_lift); 10: a piece floats only above another
    # piece in its columns; 11: the mask against the salient object it lies on (max_object_missed, max_mask_off_object);
    # 12: what the hands grip (min_grip_on_mask); 13: the failed checks' names recorded (``failed``), which
    # video_cutout reads
    after = ("locate", "segment", "track")

    def __init__(self, workspace: Workspace, settings: Any, retry_failed: bool = True, crf: int = 18,
                 hands: Any = None):
        self.hands_settings = hands or HandSettings()
        super().__init__(workspace, settings, retry_failed, crf)
        self.objects = None  # the object checks' salient-object network (curate.max_object_missed, ...off_object)
        if settings.object_checks():
            from pvtt.curate.objects import SalientObjects

            self.objects = SalientObjects(settings.salient)

    def make_backend(self, settings: Any):
        return make_hand_detector(self.hands_settings) if settings.hand_checks() else None

    def backends(self):
        return super().backends() + ((self.objects,) if self.objects is not None else ())

    def key(self, clip: ClipItem) -> str:
        # the detector that actually runs (``auto`` resolves to what is installed)
        return settings_key(super().key(clip), self.hands_settings, self.backend and self.backend.name)

    def run(self, clip: ClipItem, key: str):
        video = clip.load(self.workspace)
        masks = artifacts.masks(self.workspace, clip.id)
        tracks = artifacts.tracks(self.workspace, clip.id)
        result = curate(video, masks, tracks, self.settings, self.backend, artifacts.box(self.workspace, clip.id),
                        self.objects)
        embedding_path = self.out(clip, key, "embedding.npz")
        save_array(embedding_path, embedding=clip_embedding(video).astype(np.float32))
        overlay = overlay_frames(video, masks, tracks)
        overlay_path = self.write_video(clip, key, "overlay.mp4", half_size(overlay), crf=23)
        sheet_path = self.out(clip, key, "sheet.png")
        with atomic_path(sheet_path) as tmp:
            write_png(tmp, contact_sheet(overlay))
        outputs = {"embedding_path": self.workspace.rel(embedding_path), "overlay_path": overlay_path,
                   "sheet_path": self.workspace.rel(sheet_path)}
        metrics = {k: (round(float(v), 5) if isinstance(v, (float, np.floating)) else v)
                   for k, v in result.metrics.items()}
        if self.backend is not None:
            metrics["hand_detector"] = self.backend.name
        metrics["failed"] = result.failed
        if not result.passed:
            raise RejectItem("; ".join(result.reasons), metrics=metrics, outputs=outputs)
        return outputs, metrics


def mark_near_duplicates(ws: Workspace, clips: list[ClipItem], threshold: float,
                         source: str = "curate") -> list[ItemRecord]:
    """Global step after curate: reject clips that nearly duplicate an earlier kept clip (records ``dedup``).
    ``source`` is the stage whose ``embedding_path`` holds the clip vectors: ``curate`` (thumbnails) or ``embed``
    (DINOv2, ``curate.dedup: embedding``)."""
    from pvtt.curate import find_near_duplicates

    embeddings, keys = {}, {}
    for clip in clips:
        keys[clip.id] = artifacts.record(ws, source, clip.id).key
        embeddings[clip.id] = artifacts.embedding(ws, clip.id, source)
    duplicates = find_near_duplicates(embeddings, threshold)
    records = []
    for clip in clips:
        key = settings_key("dedup", keys[clip.id], threshold)
        if clip.id in duplicates:
            other, similarity = duplicates[clip.id]
            record = ItemRecord("dedup", clip.id, key, Status.REJECTED,
                                reason=f"near-duplicate of {other}: similarity {similarity:.3f} >= {threshold}",
                                metrics={"similarity": round(float(similarity), 4), "duplicate_of": other})
        else:
            record = ItemRecord("dedup", clip.id, key, Status.DONE)
        ws.write_record(record)
        records.append(record)
    return records


class EraseStage(ClipStage):
    """Product A removed: the clean background video (cached per clip, shared by all its pairs)."""

    name = "erase"
    version = "12"  # 3: shift-map's unwritten (blue) pixels take the membrane; 4: no black at the edge of a warped
    # view; 5: the unseen part also filled from a wide crop, the fill nearer the texture beside it row by row kept;
    # 6: the unseen fill copied at full resolution along shift-map's offsets (erase.inpaint_detail);
    # 7: the background's motion checked against the frames (no motion / similarity / homography per step);
    # 8: a thin product's region dilated by its area's scale, not its length's (erase.dilate); 9: small holes of the
    # mask filled (erase.fill_holes); 10: the region and its band grown by pvtt.compose.dilate (rim pixels differ);
    # 11: shift-map copies no colour rare around the hole (erase.inpaint_rare_ratio); 12: each side of a straight
    # boundary across the unseen part filled from its own side (erase.inpaint_boundary_gain)
    after = ("segment",)

    def run(self, clip: ClipItem, key: str):
        video = clip.load(self.workspace)
        result = self.backend.erase(video, artifacts.masks(self.workspace, clip.id))
        metrics = {"filled_fraction": round(float(result.region.mean()), 4)}
        metrics.update({k: v for k, v in (result.info or {}).items() if isinstance(v, (int, float, str, bool))})
        return {"background_path": self.write_video(clip, key, "background.mp4", result.frames)}, metrics


class DepthStage(ClipStage):
    """The clip's depth video, one scale for the whole clip (``depth`` settings), for depth-conditioned
    propagation: computed once per clip, shared by its pairs, exported as ``depth/<clip_id>.mp4``."""

    name = "depth"

    def run(self, clip: ClipItem, key: str):
        from pvtt.depth import depth_to_video_frames

        depth = self.backend.estimate(clip.load(self.workspace))
        if not np.isfinite(depth).any():
            raise RejectItem("depth has no finite value on any frame")
        path = self.write_video(clip, key, "depth.mp4", depth_to_video_frames(depth))
        return {"depth_path": path}, {"depth_range": [round(float(np.nanmin(depth)), 4),
                                                     round(float(np.nanmax(depth)), 4)]}


class MotionLoraStage(ClipStage):
    """I2VEdit's motion LoRA(s) of the clip, trained once per clip and reused by every pair of that clip;
    keyed only on the settings that change training.

    ``settings`` are :func:`pvtt.propagate.lora_settings` of the propagate section (``propagate.motion_lora``
    or ``propagate.i2vedit``, whose coarse stage is the same LoRA); training only needs their
    :class:`~pvtt.propagate.MotionLoraSettings` fields, so the motion-lora backend trains for both.
    """

    name = "motion_lora"
    version = "2"  # one file of chunk{k}. LoRAs (lora_scope), letterboxed training frames

    def make_backend(self, settings: Any):
        from pvtt.propagate import PropagateSettings, lora_settings
        from pvtt.propagate.motion_lora import MotionLoraPropagator

        if isinstance(settings, PropagateSettings):  # the whole section: its strategy's LoRA settings
            settings = lora_settings(settings) or settings.motion_lora
        return MotionLoraPropagator(settings)

    def key(self, clip: ClipItem) -> str:
        return settings_key(self.name, self.version, clip.key, clip.path, self.backend.training_settings())

    def run(self, clip: ClipItem, key: str):
        from pvtt.propagate.motion_lora import save_loras

        states = self.backend.train_loras(clip.load(self.workspace))
        path = save_loras(states, self.out(clip, key, "lora.safetensors"))
        losses = self.backend.last_losses
        metrics = {"loras": len(states), "steps": len(losses), "loss_first": round(losses[0], 5),
                   "loss_last": round(losses[-1], 5)}
        if len(states) > 1:
            metrics["chunk_loss"] = [[round(c[0], 5), round(c[-1], 5)] for c in self.backend.chunk_losses]
        return {"lora_path": self.workspace.rel(path)}, metrics


class PointsRegistrationStage(ClipStage):
    """``svd-points``' registration of A's semantic points (``propagate.svd_points``): A's point embeddings and
    the MLPs fitted to the source clip, once per clip and shared by the clip's pairs (VideoSwap fits them per
    source video, not per edit); keyed on the settings they depend on and the clip's tracks."""

    name = "points_registration"

    def make_backend(self, settings: Any):
        from pvtt.propagate import BACKENDS, PropagateSettings
        from pvtt.propagate.videoswap import SvdPointsPropagator

        if isinstance(settings, PropagateSettings):  # the whole section: svd-points' own
            settings = BACKENDS.settings_of(settings, "svd-points")
        return SvdPointsPropagator(settings)

    def key(self, clip: ClipItem) -> str:
        tracks = artifacts.record(self.workspace, "track", clip.id)
        return settings_key(self.name, self.version, clip.key, clip.path, tracks.key,
                            self.backend.registration_settings())

    def run(self, clip: ClipItem, key: str):
        from pvtt.propagate.videoswap import save_registration

        tracks = artifacts.tracks(self.workspace, clip.id)
        state = self.backend.register(clip.load(self.workspace), tracks)
        path = save_registration(state, self.out(clip, key, "registration.safetensors"))
        losses = state["losses"].tolist()
        return {"registration_path": self.workspace.rel(path)}, {
            "points": int(state["embeddings"].shape[0]), "steps": len(losses),
            "loss_first": round(losses[0], 5) if losses else None, "loss_last": round(losses[-1], 5) if losses else None}

