"""Editing stages on real footage (the PVTT dev subset); skipped when the data is absent."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from pvtt.compose import box_of_mask
from pvtt.cutout import make_cutter
from pvtt.erase import make_eraser
from pvtt.erase.classical import background_motion
from pvtt.insert import make_inserter
from pvtt.judge import judge
from pvtt.media.image import load_image_rgba
from pvtt.media.video import read_video
from pvtt.propagate import make_propagator
from pvtt.types import Clip, Masks, ProductImage, Tracks

DATA = Path(os.environ.get("PVTT_DEV_DATA", Path(__file__).resolve().parents[3] / "shared" / "data" / "pvtt-dev"))
CASE = DATA / "cases" / "bracelet_to_necklace"
needs_data = pytest.mark.skipif(not CASE.exists(), reason=f"PVTT dev data not found at {DATA} (set PVTT_DEV_DATA)")


def _small(rgba: np.ndarray, side: int = 800) -> np.ndarray:
    scale = side / max(rgba.shape[:2])
    return cv2.resize(rgba, (round(rgba.shape[1] * scale), round(rgba.shape[0] * scale)), interpolation=cv2.INTER_AREA)


@needs_data
def test_both_bracelets_of_the_studio_photo_are_kept():
    """JEW002's photo: a silver and a black bracelet on white; the silver one is close to the backdrop's colour."""
    photo = next((DATA / "images" / "jewelry").glob("JEW002_source.*"))
    cut = make_cutter().cut_out(ProductImage("JEW002", _small(load_image_rgba(photo))))
    alpha = cut.rgba[..., 3] > 127
    left, right = alpha[:, : alpha.shape[1] // 2].sum(), alpha[:, alpha.shape[1] // 2:].sum()
    assert left > 0.5 * right and right > 0.5 * left, (left, right)
    assert cut.rgba.shape[1] > 1.6 * cut.rgba.shape[0]  # trimmed to the pair, side by side


@needs_data
def test_the_cloth_inside_jew002s_black_bracelet_is_peeled_off():
    """JEW002's photo (at 1,000 px or more): GrabCut took the white cloth inside the black bracelet's loop (0.45 of
    its cut), which reaches no backdrop outside; the enclosed peel takes it (B carried a disc of white cloth into
    every pair before)."""
    from pvtt.cutout import CutoutSettings

    photo = _small(load_image_rgba(next((DATA / "images" / "jewelry").glob("JEW002_source.*"))), 1000)

    def inside(enclosed):
        rgba = make_cutter(CutoutSettings(peel_enclosed=enclosed)).cut_out(ProductImage("JEW002", photo)).rgba
        alpha = rgba[..., 3] > 127
        h, w = alpha.shape  # the black bracelet is the right half; its loop's middle
        return float(alpha[int(0.45 * h):int(0.72 * h), int(0.62 * w):int(0.85 * w)].mean())

    assert inside(0.15) < 0.05, inside(0.15)
    assert inside(1.0) > 0.8, inside(1.0)
    # the two rings are no table: the support ratio fills the loops (2.2 with them empty)
    from pvtt.cutout import cutout_problems

    settings = CutoutSettings()
    result = make_cutter(settings).cut_out(ProductImage("JEW002", photo))
    assert not cutout_problems(result, settings)[1], cutout_problems(result, settings)


@needs_data
def test_the_floor_between_art001s_vases_is_peeled_off():
    """ART001's photo: two white speckled vases on a white-to-grey sweep. GrabCut alone joined them through the
    white floor between them (every column of the middle third at least 73 % opaque); the backdrop peel leaves
    two vases with a gap, and with the peel off the floor comes back."""
    from pvtt.cutout import CutoutSettings

    photo = _small(load_image_rgba(next((DATA / "images" / "art").glob("ART001_source.*"))))

    def cut(peel):
        alpha = make_cutter(CutoutSettings(peel_backdrop=peel)).cut_out(ProductImage("ART001", photo)).rgba[..., 3] > 127
        middle = alpha[:, alpha.shape[1] // 3: 2 * alpha.shape[1] // 3].mean(axis=0)
        return float(middle.min()), cv2.connectedComponents(alpha.astype(np.uint8), connectivity=8)[0] - 1

    gap, pieces = cut(0.5)
    assert gap < 0.02 and pieces == 2, (gap, pieces)
    joined, _ = cut(0.0)
    assert joined > 0.5, joined


@pytest.fixture(scope="module")
def bracelet_verdict():
    """The bracelet case built end to end from the hand-made mask (the bracelets lie still)."""
    frames, fps = read_video(CASE / "source_video.mp4", max_frames=24)
    mask0 = load_image_rgba(CASE / "bracelet_mask.png")[..., :3].max(axis=-1) > 127
    t_count, height, width = frames.shape[:3]
    # the bracelets lie still on the fabric: carry the hand-made mask and its corners by the background's motion
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    avoid = np.repeat((cv2.dilate(mask0.astype(np.uint8), np.ones((41, 41), np.uint8)) > 0)[None], t_count, 0)
    chain, _ = background_motion(grey, avoid)
    to_t = [np.linalg.inv(c) for c in chain]
    masks = Masks(np.stack([cv2.warpPerspective(mask0.astype(np.uint8), m, (width, height),
                                                flags=cv2.INTER_NEAREST) > 0 for m in to_t]))
    p0 = cv2.goodFeaturesToTrack(grey[0], 24, 0.01, 10, mask=mask0.astype(np.uint8) * 255).reshape(1, -1, 2)
    points = np.stack([cv2.perspectiveTransform(p0.astype(np.float64), m)[0] for m in to_t]).astype(np.float32)
    tracks = Tracks(points, np.ones(points.shape[:2], bool))
    clip = Clip("JEW002", frames, fps)

    cut = make_cutter().cut_out(ProductImage("necklace", _small(load_image_rgba(CASE / "product_image.jpg"))))
    assert cut.low_confidence  # a necklace on a bust in front of a wall: the busy path, flagged
    erased = make_eraser().erase(clip, masks)
    ring = (cv2.dilate(erased.region[-1].astype(np.uint8), np.ones((9, 9), np.uint8)) > 0) & ~erased.region[-1]
    inside = frames[-1][ring].astype(float).mean(0) - erased.frames[-1][erased.region[-1]].astype(float).mean(0)
    assert np.abs(inside).max() < 8  # the fill's light matches its surroundings in the last frame too
    inserted = make_inserter().insert(frames[0], erased.frames[0], mask0, box_of_mask(mask0), cut.rgba)
    result = make_propagator().propagate(clip, erased.frames, masks, tracks, inserted)
    return judge(frames, result.frames, masks, result.masks, cut.rgba, tracks)


@needs_data
@pytest.mark.slow
def test_bracelet_case_end_to_end(bracelet_verdict):
    """Every metric of the edit passes; only the remnant check (see the next test) objects."""
    assert all(r.startswith("remnant of A") for r in bracelet_verdict.reasons), bracelet_verdict.reasons
    assert bracelet_verdict.scores["background_psnr"] > 35


@needs_data
@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="known false positive of the judge's remnant check: with the hand-made mask, "
                   "the GrabCut extent of A takes the lighter purple fabric and the pebbles beside the bracelets "
                   "for A (README, Performance and quality)")
def test_bracelet_case_is_kept(bracelet_verdict):
    assert bracelet_verdict.verdict == "keep", (bracelet_verdict.reasons, bracelet_verdict.scores)


@needs_data
def test_a_photo_cut_with_its_contact_shadow_is_rejected_at_cutout(tmp_path):
    """MEDI001's photo: a cream box on white whose cut keeps a band of its soft contact shadow under the base (the
    band B carried onto every template in the eleventh dev build). 0.81 of the cut's lower outline runs through
    smooth shading; the cutout stage rejects the photo, naming the shadow, so the build turns to the product's video.
    ART001's vases, cut along their edges, pass."""
    from pvtt.cutout import CutoutSettings
    from pvtt.hands import HandSettings
    from pvtt.items import ProductItem
    from pvtt.media.image import write_png
    from pvtt.stages.product import CutoutStage
    from pvtt.store import Workspace
    from pvtt.types import Status

    ws = Workspace(tmp_path / "ws")
    (ws.root / "products").mkdir(parents=True)
    stage = CutoutStage(ws, CutoutSettings(), hands=HandSettings(backend="none"))
    stage.setup()
    records = {}
    for pid, folder in (("MEDI001", "media"), ("ART001", "art")):
        write_png(ws.root / "products" / f"{pid}.png",
                  _small(load_image_rgba(next((DATA / "images" / folder).glob(f"{pid}_source.*")))))
        records[pid] = stage.process(ProductItem(pid, f"products/{pid}.png", "k", folder))
    medi, art = records["MEDI001"], records["ART001"]
    assert medi.status is Status.REJECTED and "contact shadow" in medi.reason, medi.reason
    assert medi.metrics["smooth_base"] > 0.6
    assert art.status is Status.DONE, art.reason
    assert art.metrics["smooth_base"] < 0.1
