"""Products from template videos: the best frame of a template's curated clips is the product's target image
when its catalog photo cannot be cut out, and a build then still pairs that product (never with its own
template)."""

from __future__ import annotations

import json
import pickle

import cv2
import numpy as np
import pytest
from PIL import Image

from pvtt import artifacts
from pvtt.config import VideoCutoutSettings, load_config
from pvtt.curate import SalientObjectSettings
from pvtt.cutout import CutoutSettings
from pvtt.demo import composite, make_demo_catalog, draw_product
from pvtt.items import ProductItem, curated_clips
from pvtt.media.video import write_video
from pvtt.pipeline import build
from pvtt.registry import Backend
from pvtt.stages.product import (REASONS, FrameScore, VideoCutoutStage, choose_frames, cut_out_frame,
                                 fill_missed_holes, hold_hands, mask_steadiness, require_company, score_frame)
from pvtt.store import Workspace, write_json
from pvtt.testmedia import textured_background
from pvtt.types import ItemRecord, Masks, Status

H, W = 128, 192
HAND = np.array([250, 20, 250], np.uint8)  # the fake hand: a colour nothing else in the frames has


def paste(background: np.ndarray, rgba: np.ndarray, x0: int, y0: int) -> tuple[np.ndarray, np.ndarray]:
    """``rgba`` over ``background`` with its top-left corner at ``(x0, y0)`` (parts outside the frame cut off),
    and its true mask."""
    frame, mask = background.copy(), np.zeros(background.shape[:2], bool)
    h, w = rgba.shape[:2]
    ys, xs = slice(max(0, y0), min(H, y0 + h)), slice(max(0, x0), min(W, x0 + w))
    part = rgba[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0].astype(np.float32)
    alpha = part[..., 3:] / 255.0
    frame[ys, xs] = (frame[ys, xs] * (1 - alpha) + part[..., :3] * alpha).astype(np.uint8)
    mask[ys, xs] = part[..., 3] > 127
    return frame, mask


def hand_mask(rgb: np.ndarray) -> np.ndarray:
    """A stand-in hand detector: pixels of the fake hand's colour."""
    return np.abs(rgb.astype(np.int16) - HAND).max(axis=-1) < 40


BLURRED, BORDER, SHARP, HAND_OVER = range(0, 6), range(6, 12), range(12, 24), range(14, 17)
HAND_BESIDE = (13, 17)  # no hand in them, but one in the frame before or after (video_cutout.hand_hold)


def template_frames():
    """24 frames of a mug on a textured table: centred but out of focus, then cut by the left border, then
    centred and sharp, with a hand over the mug in three of those frames."""
    background = textured_background(H, W, 4, detail=10.0)
    mug = draw_product(0, 64, 1)
    frames, masks = [], []
    for t in range(24):
        x0 = -20 if t in BORDER else 50 + t
        frame, mask = paste(background, mug, x0, 30)
        if t in BLURRED:
            frame = cv2.GaussianBlur(frame, (0, 0), 2)
        if t in HAND_OVER:
            cv2.rectangle(frame, (40 + t, 25), (140, 45), HAND.tolist(), -1)  # a hand over the top of the mug
            mask &= ~hand_mask(frame)
        frames.append(frame)
        masks.append(mask)
    return np.stack(frames), np.stack(masks)


def test_the_best_frame_is_sharp_whole_and_unoccluded():
    frames, masks = template_frames()
    settings = VideoCutoutSettings(views=2)
    candidates = []
    for t, (frame, mask) in enumerate(zip(frames, masks)):
        parts, _, reason = score_frame(frame, mask, settings, hand=hand_mask(frame))
        candidates.append(FrameScore("clip", t, t / 20, reason, parts))
    reasons = {c.frame_index: c.reason for c in candidates}
    assert [reasons[t] for t in BORDER] == ["border"] * len(BORDER)  # cut by the frame: never chosen
    assert [reasons[t] for t in HAND_OVER] == ["hand"] * len(HAND_OVER)
    best, views = choose_frames(candidates, settings.views, settings.view_min_score)
    unoccluded = set(SHARP) - set(HAND_OVER)
    assert best.frame_index in unoccluded
    blurred = [c for c in candidates if c.frame_index in BLURRED]
    assert [c.reason for c in blurred] == ["blurry"] * len(BLURRED)  # under video_cutout.min_sharpness
    assert all(c.parts["product_sharpness"] < 20 < best.parts["product_sharpness"] for c in blurred)
    # below the minimum they still qualify, and score too low to be chosen as the cutout or a view
    lenient = VideoCutoutSettings(min_sharpness=0)
    for c in blurred:
        parts, _, c.reason = score_frame(frames[c.frame_index], masks[c.frame_index], lenient)
    best, views = choose_frames(candidates, settings.views, settings.view_min_score)
    assert all(c.qualifies and c.score < 0.5 * best.score for c in blurred)
    assert len(views) == 2 and {v.frame_index for v in views} <= unoccluded - {best.frame_index}
    assert min(abs(a.frame_index - b.frame_index) for a, b in [(best, views[0]), (best, views[1]), tuple(views)]) >= 2


def test_hand_pixels_are_taken_out_of_the_mask():
    frames, masks = template_frames()
    t = HAND_OVER[0]
    frame, mask = frames[t], masks[t] | hand_mask(frames[t])  # a segmentation that took the hand in
    _, kept, reason = score_frame(frame, mask, VideoCutoutSettings(max_hand_fraction=1.0), hand=hand_mask(frame))
    assert reason == "" and not (kept & hand_mask(frame)).any()



def test_a_mask_that_took_in_the_table_does_not_qualify():
    """A frame whose mask runs into the table under the product (base far wider than body) is not a cutout of
    the product: the same mask without the table strip qualifies."""
    frames, masks = template_frames()
    t = SHARP[-1]
    ys, xs = np.nonzero(masks[t])
    with_table = masks[t].copy()
    with_table[ys.max() - 6:ys.max() + 1, max(0, xs.min() - 40):xs.max() + 40] = True  # the table's edge below it
    parts, _, reason = score_frame(frames[t], with_table, VideoCutoutSettings())
    assert reason == "support" and parts["support"] > 1.3, parts
    parts, _, reason = score_frame(frames[t], masks[t], VideoCutoutSettings())
    assert reason == "" and parts["support"] < 1.3, parts


def test_a_mask_whose_pieces_hang_above_the_rest_does_not_qualify():
    """A white-on-white rocking horse (TOYS012-s01): the mask holds the rocker and the mane, not the cream body
    between them, so the mane hangs in the air above the rocker. Two products side by side, and a lid resting on a
    box, stand on the bottom or on another piece and qualify."""
    from pvtt.compose import piece_lift

    frames, masks = template_frames()
    frame = frames[SHARP[-1]]
    rocker = np.zeros((H, W), bool)
    cv2.ellipse(rocker.view(np.uint8), (96, 80), (50, 20), 0, 0, 180, 1, 6)  # the rocker's arc
    horse = rocker.copy()
    horse[30:45, 80:95] = True  # the mane, 25 rows above the rocker's top
    parts, _, reason = score_frame(frame, horse, VideoCutoutSettings())
    assert reason == "floating" and parts["piece_lift"] > 0.5, parts
    assert score_frame(frame, horse, VideoCutoutSettings(max_piece_lift=1.0))[2] != "floating"  # off
    pair = np.zeros((H, W), bool)
    pair[40:100, 30:80] = True
    pair[50:100, 110:160] = True  # a second product beside the first, both on the table
    assert piece_lift(pair) == 0.0
    stacked = pair.copy()
    stacked[30:38, 30:80] = True  # a lid resting on the first, a 2-row gap under it
    assert piece_lift(stacked) == 0.0
    assert score_frame(frame, stacked, VideoCutoutSettings())[2] == ""
    depth = np.zeros((H, W), bool)
    depth[60:100, 30:70] = True
    depth[40:75, 100:140] = True  # a second vase further back: its base 25 rows higher, nothing under it
    assert piece_lift(depth) == 0.0


# -- the stage on a workspace holding one template clip -------------------------------------------------------


def workspace_with_clip(root, frames: np.ndarray, masks: np.ndarray, curated: bool = True,
                        failed: list[str] | None = None) -> Workspace:
    """A workspace as analysis leaves it: template T1 (whose product is T1) with one clip, its masks and its
    curate record (rejected with the checks ``failed`` when not ``curated``); the templates T2 with no clip."""
    ws = Workspace(root)
    write_json(ws.root / "catalog.json", {"path": "", "layout": "test", "products": [], "templates": [
        {"id": tid, "product_id": tid, "category": "home", "subcategory": "mug"} for tid in ("T1", "T2")]})
    clip_path = ws.root / "clips" / "T1" / "k" / "T1-s00-w00.mp4"
    clip_path.parent.mkdir(parents=True)
    write_video(clip_path, frames, 20.0, crf=0)
    clip = {"clip_id": "T1-s00-w00", "path": ws.rel(clip_path), "fps": 20.0, "width": W, "height": H,
            "num_frames": len(frames), "shot_index": 0, "window_index": 0, "start_time": 0.0}
    ws.write_record(ItemRecord("normalize", "T1", "n1", Status.DONE, outputs={"source_size": [W, H],
                                                                           "clips": [clip]}))
    masks_path = ws.root / "segment" / "T1-s00-w00" / "k" / "masks.npz"
    masks_path.parent.mkdir(parents=True)
    artifacts.save_masks(masks_path, Masks(masks))
    ws.write_record(ItemRecord("segment", "T1-s00-w00", "s1", Status.DONE, outputs={"masks_path": ws.rel(masks_path)}))
    ws.write_record(ItemRecord("curate", "T1-s00-w00", "c1", Status.DONE if curated else Status.REJECTED,
                               reason="" if curated else "too static: motion 0",
                               metrics={} if failed is None else {"failed": failed}))
    return ws


def product(template_id: str | None = "T1") -> ProductItem:
    return ProductItem(template_id or "P9", "unused.png", "p", "home", "mug", "a mug", template_id)


def test_video_cutout_writes_the_cutout_and_its_views(tmp_path):
    frames, masks = template_frames()
    ws = workspace_with_clip(tmp_path, frames, masks)
    # the second spread view sits beside the hand frames (its mask's area unsteady there): under 0.75 of the best
    settings = VideoCutoutSettings(views=2, view_min_score=0.5)
    stage = VideoCutoutStage(ws, settings, CutoutSettings(), hand_mask=hand_mask)
    stage = pickle.loads(pickle.dumps(stage))  # runners send stages to worker processes
    record = stage.process(product())
    assert record.status is Status.DONE, record.reason
    assert record.outputs["clip_id"] == "T1-s00-w00"
    assert record.outputs["frame_index"] in set(SHARP) - set(HAND_OVER) - set(HAND_BESIDE)
    assert record.metrics["failures"] == {"border": len(BORDER), "hand": len(HAND_OVER) + len(HAND_BESIDE),
                                          "blurry": len(BLURRED)}
    target = artifacts.target(ws, "T1")  # no photo cutout: the video's is the target image
    assert target.outputs["source"] == "video"
    rgba = artifacts.cutout(ws, "T1")
    assert rgba.shape[2] == 4 and rgba[..., 3].max() == 255 and rgba[0, 0, 3] == 0  # trimmed, with a margin
    ys, xs = np.nonzero(masks[record.outputs["frame_index"]])
    box = (ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
    assert all(0 <= got - want <= 6 for got, want in zip(rgba.shape[:2], box))  # the mug's box + margin, not the frame
    views = artifacts.target_views(ws, "T1")
    assert len(views) == 2 and all(v.shape[2] == 4 for v in views)


class FakeHandDetector(Backend):
    """A hand detector object as pvtt.hands makes them: set up once, then ``hand_mask(rgb)``."""

    def __init__(self):
        self.ready = False

    def setup(self):
        self.ready = True

    def hand_mask(self, rgb):
        assert self.ready, "the stage sets its hand detector up before using it"
        return hand_mask(rgb)


def test_a_hand_detector_object_is_set_up_and_used(tmp_path):
    frames, masks = template_frames()
    ws = workspace_with_clip(tmp_path, frames, masks)
    record = VideoCutoutStage(ws, VideoCutoutSettings(), CutoutSettings(), hand_mask=FakeHandDetector()).process(
        product())
    assert record.status is Status.DONE
    assert record.metrics["failures"]["hand"] == len(HAND_OVER) + len(HAND_BESIDE)


def test_a_confident_photo_cutout_stays_the_target(tmp_path):
    frames, masks = template_frames()
    ws = workspace_with_clip(tmp_path, frames, masks)
    VideoCutoutStage(ws, VideoCutoutSettings(), CutoutSettings()).process(product())
    photo = ws.root / "cutout" / "T1" / "k" / "cutout.png"
    photo.parent.mkdir(parents=True)
    Image.fromarray(np.full((10, 10, 4), 200, np.uint8)).save(photo)
    ws.write_record(ItemRecord("cutout", "T1", "c", Status.DONE, outputs={"cutout_path": ws.rel(photo)}))
    assert artifacts.target(ws, "T1").outputs["source"] == "photo" and artifacts.cutout(ws, "T1").shape == (10, 10, 4)
    assert artifacts.target_views(ws, "T1") == []
    ws.write_record(ItemRecord("cutout", "T1", "c", Status.REJECTED, reason="low-confidence cutout (0.30)"))
    assert artifacts.target(ws, "T1").outputs["source"] == "video"


def test_a_product_whose_template_has_no_curated_clip_is_rejected_with_the_reason(tmp_path):
    frames, masks = template_frames()
    ws = workspace_with_clip(tmp_path, frames, masks, curated=False)
    stage = VideoCutoutStage(ws, VideoCutoutSettings(), CutoutSettings())
    record = stage.process(product("T1"))
    assert record.status is Status.REJECTED
    assert record.reason.startswith("no curated clip of template T1")
    assert stage.process(product(None)).reason == "product P9 has no template video to cut it out from"
    assert artifacts.target(ws, "T1", required=False) is None


def test_a_clip_curate_rejected_as_a_template_gives_the_product_with_rejected_clips(tmp_path):
    frames, masks = template_frames()
    ws = workspace_with_clip(tmp_path, frames, masks, curated=False, failed=["static", "blurry"])
    off = VideoCutoutStage(ws, VideoCutoutSettings(), CutoutSettings()).process(product())
    assert off.status is Status.REJECTED and off.reason.startswith("no curated clip of template T1:")
    record = VideoCutoutStage(ws, VideoCutoutSettings(rejected_clips=True), CutoutSettings(),
                              hand_mask=hand_mask).process(product())
    assert record.status is Status.DONE, record.reason
    assert record.metrics["from_rejected_clip"] is True and record.outputs["clip_id"] == "T1-s00-w00"
    assert record.outputs["frame_index"] in set(SHARP) - set(HAND_OVER) - set(HAND_BESIDE)


@pytest.mark.parametrize("failed", [["static", "grip"], ["box_span"], None])
def test_a_clip_whose_mask_curate_found_on_the_wrong_object_gives_no_product(tmp_path, failed):
    """The hands grip something beside the mask, the mask misses a given box — or an older curate record that does
    not name its failed checks: no frame of the clip is looked at."""
    frames, masks = template_frames()
    ws = workspace_with_clip(tmp_path, frames, masks, curated=False, failed=failed)
    record = VideoCutoutStage(ws, VideoCutoutSettings(rejected_clips=True), CutoutSettings()).process(product())
    assert record.status is Status.REJECTED
    assert record.reason == ("no curated clip of template T1, and none curate rejected only as a template to edit: "
                             "the product has no video frames to cut out from")


class WholeFrameObject(Backend):
    """A salient-object network that calls everything it is shown the object: any mask holds only part of it."""

    settings_class = SalientObjectSettings

    def __call__(self, rgb):
        return np.ones(rgb.shape[:2], np.float32)


def test_frames_whose_mask_holds_only_part_of_the_salient_object_do_not_qualify(tmp_path):
    frames, masks = template_frames()
    ws = workspace_with_clip(tmp_path, frames, masks, curated=False, failed=["static"])
    stage = VideoCutoutStage(ws, VideoCutoutSettings(rejected_clips=True, max_object_missed=0.2), CutoutSettings())
    assert stage.objects is not None  # built from curate.salient's settings when the checks are on
    stage.objects = WholeFrameObject()
    record = stage.process(product())
    assert record.status is Status.REJECTED
    assert "a mask holding only part of the salient object under it" in record.reason
    assert record.reason.startswith("product never unoccluded in the 0 curated clip(s) and 1 clip(s) curate "
                                    "rejected as templates of template T1")


class RedObject(Backend):
    """A salient-object network that sees red pixels only."""

    settings_class = SalientObjectSettings

    def __call__(self, rgb):
        return ((rgb[..., 0] > 200) & (rgb[..., 1] < 60)).astype(np.float32)


def test_the_masks_parts_off_the_salient_object_are_trimmed_from_the_cut():
    """A sliver of thumb the hand detector missed, taken into the mask beside the product, is not salient: it
    leaves the cut, and the product's own rim stays."""
    from pvtt.stages.product import _on_object

    rgb = np.full((200, 300, 3), 128, np.uint8)
    rgb[50:150, 80:200] = (230, 30, 30)  # the product
    rgb[50:150, 200:215] = (220, 160, 140)  # a sliver of skin beside it, in the mask
    mask = np.zeros((200, 300), bool)
    mask[50:150, 80:215] = True
    kept, share = _on_object(rgb, mask, mask, RedObject(), None)
    assert not kept[:, 205:].any() and kept[50:150, 80:200].all()
    assert share == pytest.approx(1 - kept.sum() / mask.sum()) and 0.04 < share < 0.12


def test_frame_checks_name_a_partial_mask_a_mask_off_the_object_and_decode_damage():
    frames, masks = template_frames()
    rgb, mask = frames[20], masks[20]
    settings = VideoCutoutSettings(max_object_missed=0.2, max_mask_off_object=0.15)
    assert score_frame(rgb, mask, settings, cover=(0.05, 0.05))[2] == ""
    assert score_frame(rgb, mask, settings, cover=(0.5, 0.0))[2] == "partial"
    assert score_frame(rgb, mask, settings, cover=(0.0, 0.3))[2] == "off"
    # the salient preset asks a product image to be whole: SHOE003's mule without its heel missed 0.15 of its object
    from pvtt.config import load_config

    preset = load_config(None, preset="salient").video_cutout
    assert score_frame(rgb, mask, settings, cover=(0.15, 0.0))[2] == ""
    assert score_frame(rgb, mask, preset, cover=(0.15, 0.0))[2] == "partial"
    assert score_frame(rgb, mask, preset, cover=(0.001, 0.0))[2] == ""
    # given as a callable, the cover (a network run) is asked for only once the cheaper checks pass
    calls = []

    def cover():
        calls.append(1)
        return 0.5, 0.0

    assert score_frame(rgb, mask, settings, hand=mask, cover=cover)[2] == "hand" and not calls
    assert score_frame(rgb, mask, settings, cover=cover)[2] == "partial" and calls == [1]
    striped = rgb.copy()
    rows = np.random.default_rng(0).integers(0, 255, (40, 1, 3), dtype=np.uint8)
    striped[80:120] = rows  # 40 rows of unrelated flat colours: 0.31 of the frame's rows
    parts, _, reason = score_frame(striped, mask, settings)
    assert reason == "damaged" and parts["striped"] > 0.03
    assert score_frame(striped, mask, VideoCutoutSettings(max_striped_rows=1.0))[2] != "damaged"


def test_a_clean_frame_alone_in_its_clip_does_not_qualify():
    candidates = [FrameScore("a", 0, 0.0, "border"), FrameScore("a", 1, 0.1), FrameScore("a", 2, 0.2, "off"),
                  FrameScore("b", 0, 0.0), FrameScore("b", 1, 0.1), FrameScore("b", 2, 0.2, "hand")]
    require_company(candidates, 2)
    assert [c.reason for c in candidates] == ["border", "lone", "off", "", "", "hand"]
    require_company(candidates, 3)
    assert [c.reason for c in candidates[3:5]] == ["lone", "lone"]
    assert "too few clean frames" in REASONS["lone"]


def test_a_curate_record_left_behind_by_a_rejected_segment_does_not_count(tmp_path):
    """A re-run with new settings rejected the clip at segment; its curate record from before is stale."""
    frames, masks = template_frames()
    ws = workspace_with_clip(tmp_path, frames, masks)
    assert [c.id for c in curated_clips(ws, "T1")] == ["T1-s00-w00"]
    ws.write_record(ItemRecord("segment", "T1-s00-w00", "s2", Status.REJECTED, reason="empty first-frame mask"))
    assert curated_clips(ws, "T1") == []
    record = VideoCutoutStage(ws, VideoCutoutSettings(), CutoutSettings()).process(product("T1"))
    assert record.status is Status.REJECTED and record.reason.startswith("no curated clip of template T1")

def test_a_product_never_whole_in_frame_is_rejected_with_the_reason(tmp_path):
    frames, masks = template_frames()
    never = [*BORDER, *HAND_OVER]  # only frames cut by the border or with a hand over the mug
    ws = workspace_with_clip(tmp_path, frames[never], masks[never])
    record = VideoCutoutStage(ws, VideoCutoutSettings(), CutoutSettings(), hand_mask=hand_mask).process(product())
    assert record.status is Status.REJECTED
    assert record.reason == ("product never unoccluded in the 1 curated clip(s) of template T1: of 9 sampled "
                             "frames, 6 the mask touching the frame border, 3 a hand over the product")



def unsteady(masks: np.ndarray) -> np.ndarray:
    """The masks of a segmentation that keeps failing: every other frame takes in a slab of the wall above the mug,
    the others notch a corner out of it."""
    out = masks.copy()
    for t, mask in enumerate(out):
        ys, xs = np.nonzero(mask)
        if t % 2:
            mask[max(0, ys.min() - 25):ys.min(), xs.min():xs.max()] = True
        else:
            mask[ys.min():ys.min() + 20, (xs.min() + xs.max()) // 2:xs.max() + 1] = False
    return out


def test_mask_steadiness_ignores_motion_and_sees_a_mask_changing_shape():
    _, masks = template_frames()
    sharp = masks[list(SHARP)]  # the mug moving one pixel a frame
    moving = np.stack([np.roll(sharp[0], 7 * t, axis=1) for t in range(8)])  # a fast pan: 7 px a frame
    assert mask_steadiness(moving) == pytest.approx(1.0)
    shaky = mask_steadiness(unsteady(sharp))
    assert shaky < 0.85
    assert mask_steadiness(np.zeros((3, H, W), bool)) == 1.0  # nothing to compare


def test_an_unsteady_clip_gives_no_video_product(tmp_path):
    frames, masks = template_frames()
    ws = workspace_with_clip(tmp_path, frames, unsteady(masks))
    record = VideoCutoutStage(ws, VideoCutoutSettings(), CutoutSettings()).process(product())
    assert record.status is Status.REJECTED
    assert record.reason.startswith("no steady mask in the 1 curated clip(s) of template T1: of 24 sampled frames, "
                                    "24 a clip whose masks change shape from frame to frame")
    assert "median IoU of consecutive masks T1-s00-w00 0." in record.reason
    assert record.metrics["steadiness"]["T1-s00-w00"] < 0.9
    steady = VideoCutoutStage(ws, VideoCutoutSettings(min_mask_steadiness=0.0), CutoutSettings()).process(product())
    assert steady.status is Status.DONE and steady.metrics["steadiness"]["T1-s00-w00"] < 0.9

# -- a build whose product photos are all lifestyle shots ---------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Three demo templates whose own photos are the product on a busy table (rejected at cutout), plus a
    template whose only clip is static (rejected at curate) and whose photo is busy too."""
    root = tmp_path_factory.mktemp("video-products")
    catalog = make_demo_catalog(root / "catalog", count=3)
    meta = json.loads((catalog / "annotations" / "metadata.json").read_text())
    for n, sample in enumerate(meta["samples"]):
        busy = composite(textured_background(400, 400, 50 + n, detail=10.0), draw_product(n, 320, n), 200, 360, 1)
        Image.fromarray(busy).save(catalog / sample["source_product"]["image_path"], quality=92)
    still = composite(textured_background(720, 960, 99, detail=10.0), draw_product(3, 400, 9), 480, 650, 1.0)
    write_video(catalog / "videos" / "home" / "STILL.mp4", np.repeat(still[None], 30, 0), 20.0)
    photo = composite(textured_background(400, 400, 98, detail=10.0), draw_product(3, 320, 9), 200, 360, 1.0)
    Image.fromarray(photo).save(catalog / "images" / "home" / "STILL_source.jpg")
    meta["samples"].append({"id": "STILL", "category": "art", "subcategory": "vase",
                            "template_video": {"path": "videos/home/STILL.mp4"},
                            "source_product": {"image_path": "images/home/STILL_source.jpg"}})
    (catalog / "annotations" / "metadata.json").write_text(json.dumps(meta))
    config = load_config(None, ["normalize.short_side=240", "normalize.max_frames=24", "media.preset=ultrafast",
                                "runner.progress=false", "pairing.strategy=all", "export.modes=[replace, reversed]"])
    summary = build(catalog, root / "dataset", config, workspace=root / "ws")
    return root, summary


def test_products_whose_photos_are_rejected_come_from_their_videos(built):
    root, summary = built
    ws = Workspace(root / "ws")
    assert summary.counts["cutout"] == {"rejected": 4}  # every photo is a busy lifestyle shot
    assert summary.counts["video_cutout"] == {"done": 3, "rejected": 1}
    rows = [json.loads(line) for line in (root / "dataset/annotations/pairs.jsonl").read_text().splitlines()]
    replace = [r for r in rows if r["mode"] == "replace"]
    pairs = json.loads((root / "ws" / "pairs.json").read_text())
    paired = {p["product_id"] for p in pairs}
    # video products are paired wherever they fit: the bottle, area-matched to the gift box's mask, would stand taller
    # than these 240-px frames (pairing.fit_only), and the mug's clips take the box alone
    assert len(paired) >= 2 and paired <= {"DEMO001", "DEMO002", "DEMO003"}, paired
    assert replace  # and pairs with them are kept (which ones the judge keeps at 240 px moves with the encoding)
    assert {r["mode"] for r in rows} == {"replace", "reversed"}
    for row in rows:
        assert row["target_source"] == "video"  # reversed rows too: their target, product A, is also a video product
        assert row["product_id"] != row["source_product_id"]
        assert (root / "dataset" / row["files"]["target_image"]).is_file()
    assert all(row["product_id"] != row["template_id"] for row in replace)  # never paired with its own template
    sources = json.loads((root / "dataset/images/target/sources.json").read_text())
    assert {s["source"] for s in sources.values()} == {"video"}
    for product_id, entry in sources.items():
        assert entry["views"] and all((root / "dataset" / v).is_file() for v in entry["views"])
        assert entry["views"][0] == f"images/target/{product_id}_view1.png"
    stats = json.loads((root / "dataset/annotations/statistics.json").read_text())
    assert stats["target_products"] == {"video": 3} and "video" in stats["by_target_source"]
    assert ws.read_record("video_cutout", "DEMO001").outputs["cutout_path"].endswith("cutout.png")


def test_in_a_build_a_template_without_curated_clips_gives_the_reason(built):
    root, _ = built
    record = Workspace(root / "ws").read_record("video_cutout", "STILL")
    assert record.status is Status.REJECTED
    assert record.reason == "no curated clip of template STILL: the product has no video frames to cut out from"
    pairs = json.loads((root / "ws" / "pairs.json").read_text())
    assert pairs and all(p["product_id"] != "STILL" for p in pairs)


def test_export_says_where_each_target_image_comes_from(tmp_path):
    import pyarrow.parquet as pq

    from pvtt.export import dataset_path, export_dataset

    image = tmp_path / "t.png"
    Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(image)
    rows = []
    for product_id, source in (("photo1", "photo"), ("video1", "video")):  # the photo product's row comes first
        art = {"target_image": (image, dataset_path("target_image", product_id))}
        if source == "video":
            art.update({f"target_view_{k}": (image, dataset_path("target_view", f"{product_id}_view{k}"))
                        for k in (1, 2)})
        rows.append({"pair_id": f"c__{product_id}", "clip_id": "c", "product_id": product_id, "verdict": "keep",
                     "mode": "replace", "target_source": source, "scores": {}, "reasons": [], "artifacts": art})
    stats = export_dataset(rows, tmp_path / "ds")
    assert stats["target_products"] == {"photo": 1, "video": 1}
    assert stats["by_target_source"] == {"photo": {"keep": 1}, "video": {"keep": 1}}
    sources = json.loads((tmp_path / "ds/images/target/sources.json").read_text())
    assert sources == {"photo1": {"source": "photo", "image": "images/target/photo1.png", "views": []},
                       "video1": {"source": "video", "image": "images/target/video1.png",
                                  "views": ["images/target/video1_view1.png", "images/target/video1_view2.png"]}}
    assert (tmp_path / "ds/images/target/video1_view2.png").is_file()
    table = pq.read_table(tmp_path / "ds/annotations/pairs.parquet")
    assert table.column("file_target_view_2").to_pylist() == [None, "images/target/video1_view2.png"]
    assert "1 from catalog photos, 1 from template videos" in (tmp_path / "ds/README.md").read_text()


def _standing_products() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TOYS012 drawn: two cream bodies on dark rockers, standing on a beige table under a pale wall. Returns the
    frame, the products' true mask, and the wedge of table between and under the rockers that a segmentation
    took in with them."""
    rng = np.random.default_rng(3)
    frame = np.empty((240, 320, 3), np.float32)
    frame[:140] = (226, 226, 222)  # the wall
    frame[140:] = (222, 186, 146)  # the table, a wood grain along it
    frame[140:] += 8 * np.sin(np.arange(320) / 3.0)[None, :, None] * rng.uniform(0.5, 1, (100, 1, 1))
    frame = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
    product = np.zeros((240, 320), bool)
    for x0 in (84, 164):
        frame[70:152, x0:x0 + 64] = (240, 222, 190)  # a cream body
        product[70:152, x0:x0 + 64] = True
        cv2.ellipse(frame, (x0 + 32, 150), (40, 12), 0, 0, 180, (92, 52, 34), -1)  # its rocker
        cv2.ellipse(product.view(np.uint8), (x0 + 32, 150), (40, 12), 0, 0, 180, 1, -1)
    wedge = np.zeros_like(product)
    # the table between the rockers and a band below them, no wider than they are (curate's support check passes)
    wedge[150:178, 80:232] = True
    return frame, product, wedge & ~product


def test_the_table_under_a_product_is_peeled_out_of_its_mask():
    from pvtt.cutout.peel import peel_support

    frame, product, wedge = _standing_products()
    peeled = peel_support(frame, product | wedge)
    assert (peeled & wedge).sum() > 0.8 * wedge.sum()  # the table goes
    assert (peeled & product).sum() < 0.02 * product.sum()  # the product stays
    assert peel_support(frame, product).sum() < 0.02 * product.sum()  # a clean mask loses (almost) nothing
    np.testing.assert_array_equal(peeled, peel_support(frame, product | wedge))  # the same every time


def test_nothing_is_peeled_from_a_product_on_a_plain_backdrop():
    """A flat backdrop (one colour: nothing for GrabCut to model), a mask over the whole frame but its top rows, and
    an empty mask: the mask stays as it is."""
    from pvtt.cutout.peel import peel_support

    frame = np.full((120, 160, 3), 128, np.uint8)
    frame[40:90, 50:110] = (200, 60, 50)
    box = np.zeros((120, 160), bool)
    box[40:90, 50:110] = True
    assert not peel_support(frame, box).any()
    most = np.ones_like(box)
    most[:2] = False
    assert not peel_support(frame, most).any()
    assert not peel_support(frame, np.zeros_like(box)).any()


def test_a_pale_product_against_a_pale_wall_keeps_its_top():
    """Only the bottom of the product is searched: a body as pale as the wall above the table is not peeled
    (ART001's white vases against a white wall)."""
    from pvtt.cutout.peel import peel_support

    frame, product, wedge = _standing_products()
    frame[70:140][product[70:140]] = (228, 228, 224)  # the bodies' upper halves the wall's colour
    peeled = peel_support(frame, product | wedge)
    assert not (peeled[:140] & product[:140]).any()
    assert (peeled & wedge).sum() > 0.8 * wedge.sum()


def test_the_stage_cuts_the_product_without_the_table_under_it(tmp_path):
    frame, truth, wedge = _standing_products()
    frames = np.stack([frame] * 24)
    masks = np.stack([truth | wedge] * 24)
    heights = {}
    for peel in (True, False):
        ws = workspace_with_clip(tmp_path / str(peel), frames, masks)
        stage = VideoCutoutStage(ws, VideoCutoutSettings(views=0, peel_support=peel), CutoutSettings(margin=0))
        record = stage.process(product())
        assert record.status is Status.DONE, record.reason
        assert (record.metrics["peeled"] > 0.1) is peel, record.metrics
        alpha = artifacts.cutout(ws, "T1")[..., 3]
        heights[peel] = int(np.nonzero(alpha.max(axis=1) > 127)[0].max()) + 1
    ys = np.nonzero(truth)[0]
    assert heights[True] <= ys.max() - ys.min() + 3 < heights[False]  # the rockers' bottom, not the band below


def test_a_hole_the_mask_left_in_the_product_is_filled_and_a_loop_seen_through_is_not():
    """A video product inherits its frame's mask: TOYS002's wooden box lost its black latch to the classical mask and
    every pair showed a hole through the box. A hole unlike the frame around the product is filled before the cut; a
    hole of the surroundings' colour (the table through a bracelet's loop) stays a hole."""
    rng = np.random.default_rng(0)
    frame = np.clip(np.array([205, 190, 170]) + rng.normal(0, 6, (200, 300, 3)), 0, 255).astype(np.uint8)  # table
    frame[50:150, 40:140] = (120, 70, 40)  # the wooden box
    frame[90:120, 75:105] = (15, 15, 18)  # its black latch
    cv2.circle(frame, (220, 100), 45, (180, 180, 190), 12)  # a silver ring lying on the table
    mask = np.zeros((200, 300), bool)
    mask[50:150, 40:140] = True
    mask[90:120, 75:105] = False  # the mask missed the latch
    ring = np.zeros((200, 300), np.uint8)
    cv2.circle(ring, (220, 100), 45, 1, 12)
    mask |= ring > 0  # the ring's loop shows the table: a hole of the surroundings' colour
    filled = fill_missed_holes(frame, mask, 3.0)
    assert filled[90:120, 75:105].all()  # the latch is the box's
    assert not filled[100, 220]  # the table inside the loop stays out
    assert np.array_equal(fill_missed_holes(frame, mask, 0.0), mask)  # off
    cut, _ = cut_out_frame(frame, mask, 2.0, 0.05, hole_fill=3.0)
    assert cut[..., 3].min() == 0 and (cut[..., 3] > 200).mean() > 0.3


def test_the_cut_outline_is_redrawn_onto_the_products_edge():
    """TOYS002's chosen frame: the clip's mask took in a strip of the palm's shadow beside the box. The redraw (as the
    photo cutout's) gives it back to the background, which has that shadow beyond the strip; the box stays whole."""
    rng = np.random.default_rng(0)
    frame = np.clip(rng.normal((150, 140, 130), 6, (200, 300, 3)), 0, 255).astype(np.uint8)  # a pale table
    frame[50:150, 60:160] = np.clip(rng.normal((150, 70, 40), 6, (100, 100, 3)), 0, 255)  # a red-brown box
    frame[60:150, 160:210] = np.clip(rng.normal((50, 35, 30), 4, (90, 50, 3)), 0, 255)  # the palm's shadow beside it
    mask = np.zeros((200, 300), bool)
    mask[50:150, 60:172] = True  # the box and a 12 px strip of the shadow
    plain, _ = cut_out_frame(frame, mask, 0.0, 0.0)
    drawn, _ = cut_out_frame(frame, mask, 0.0, 0.0, redraw=(600, 0.05, 5))
    # trimmed to the cut's box: the plain cut is the box and the strip, the redrawn one the box alone
    assert plain.shape[:2] == (100, 112) and plain[50, 106, 3] == 255
    assert drawn.shape[1] <= 102 and drawn.shape[0] >= 98
    assert (drawn[5:95, 5:95, 3] == 255).all()
    assert np.array_equal(cut_out_frame(frame, mask, 0.0, 0.0, redraw=(0, 0.05, 5))[0], plain)  # 0 = off


def test_a_hand_missed_between_frames_where_it_was_found_still_counts():
    """CRAF001: the hand pressing the stamp was found in sampled frames 13-96 and missed in frame 100, which became an
    extra view of the stamp's base under the fingers. A qualifying frame next to one with a hand over the product is
    rejected too; one further away, or in another clip, is not."""
    def frame(clip, t, hand, reason=""):
        return FrameScore(clip, t, t / 20, reason, {"hand": hand})

    frames = [frame("a", 0, 0.0), frame("a", 4, 0.0), frame("a", 8, 0.0), frame("a", 12, 0.3, "hand"),
              frame("a", 16, 0.0), frame("b", 0, 0.0), frame("b", 4, 0.05)]
    hold_hands(frames, max_hand=0.1, hold=1)
    assert [f.reason for f in frames] == ["", "", "hand", "hand", "hand", "", ""]
    assert frames[2].parts["hand_held"] == 0.3 and "hand_held" not in frames[1].parts
    frames = [frame("a", 0, 0.0), frame("a", 4, 0.3, "hand"), frame("a", 8, 0.0)]
    hold_hands(frames, max_hand=0.1, hold=0)  # off
    assert [f.reason for f in frames] == ["", "hand", ""]
