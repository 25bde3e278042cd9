"""propagate controls and auto's decision: pure NumPy, no torch (the shared regions are tested in tests/test_compose.py)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from pvtt.models import ModelNotAvailable
from pvtt.propagate import controls
from pvtt.propagate.auto import AutoPropagator
from pvtt.types import Box, Tracks


def ellipse(h, w, cy, cx, ry, rx):
    yy, xx = np.mgrid[:h, :w]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


def test_render_points_keeps_colour_per_point_and_hides_invisible_points():
    points = np.float32([[[4, 4], [12, 12]], [[6, 4], [12, 12]]])
    visible = np.array([[True, True], [True, False]])
    frames = controls.render_points(points, visible, 16, 16, radius=1, background=0)
    assert frames.shape == (2, 16, 16, 3)
    assert (frames[0, 4, 4] == frames[1, 4, 6]).all() and frames[0, 4, 4].any()
    assert frames[0, 12, 12].any() and not frames[1, 12, 12].any()


def test_map_tracks_to_box_scales_motion_with_the_box():
    tracks = Tracks(np.float32([[[10, 10]], [[14, 10]]]), np.ones((2, 1), bool))
    moved = controls.map_tracks_to_box(tracks, Box(0, 0, 20, 20), Box(100, 100, 140, 120))
    assert moved.points[0, 0].tolist() == [120.0, 110.0]
    assert moved.points[1, 0].tolist() == [128.0, 110.0]  # 4 px of A's motion, x2 horizontally


def _auto(**kw):
    return AutoPropagator(**kw)


def moving(points=3, step=4.0):
    """Tracks whose points move ``step`` px right per frame (A's box in these tests is ~45 px across)."""
    return Tracks(np.float32([[[32 + t * step, 32]] * points for t in range(3)]), np.ones((3, points), bool))


def test_auto_picks_depth_for_similar_points_for_different_shapes():
    auto = _auto()
    mask_a = ellipse(64, 64, 32, 32, 20, 10)
    tracks = moving()
    similar = auto.choose(mask_a, ellipse(80, 80, 40, 40, 30, 15).astype(np.float32), tracks)
    different = auto.choose(mask_a, ellipse(64, 64, 32, 32, 6, 28).astype(np.uint8) * 255, tracks)
    assert similar.strategy == "vace-depth" and "IoU" in similar.reason and similar.iou >= 0.75
    assert different.strategy == "vace-points" and different.iou < 0.75


def test_auto_warps_without_configured_weights_or_tracks():
    mask_a = ellipse(64, 64, 32, 32, 20, 10)
    wide = ellipse(64, 64, 32, 32, 6, 28)
    off = _auto(models=False).choose(mask_a, mask_a)
    assert off.strategy == "warp" and "models is false" in off.reason
    empty = _auto(vace={"model": ""}).choose(mask_a, mask_a)
    assert empty.strategy == "warp" and "vace.model is empty" in empty.reason
    no_tracks = _auto().choose(mask_a, wide, None)
    assert no_tracks.strategy == "warp" and "no tracked points" in no_tracks.reason


def test_auto_warps_a_product_that_barely_moves():
    mask_a = ellipse(64, 64, 32, 32, 20, 10)
    still = _auto().choose(mask_a, mask_a, moving(step=0.1))
    assert still.strategy == "warp" and "barely moves" in still.reason and still.motion < 0.01
    assert _auto().choose(mask_a, mask_a, moving(step=4.0)).strategy == "vace-depth"


def test_auto_svd_family_by_preference_or_when_vace_weights_are_missing():
    mask_a, wide = ellipse(64, 64, 32, 32, 20, 10), ellipse(64, 64, 32, 32, 6, 28)
    svd_first = _auto(svd=True, prefer="svd")
    assert svd_first.choose(mask_a, mask_a, moving()).strategy == "i2vedit"
    assert svd_first.choose(mask_a, wide, moving()).strategy == "svd-points"
    fallback = _auto(svd=True)
    fallback._missing["vace"] = "no folder"
    agree = fallback.choose(mask_a, mask_a, moving())
    assert agree.strategy == "i2vedit" and "attention" in agree.reason
    fallback._missing["svd"] = "no svd folder"
    none = fallback.choose(mask_a, mask_a, moving())
    assert none.strategy == "warp" and "no folder" in none.reason and "no svd folder" in none.reason
    assert _auto(svd=False, prefer="svd").choose(mask_a, mask_a, moving()).strategy == "vace-depth"


def test_auto_with_the_svd_family_trains_the_clip_lora():
    from pvtt.propagate import PropagateSettings, lora_settings

    assert lora_settings(PropagateSettings(backend="auto")) is None
    on = PropagateSettings(backend="auto", auto={"svd": True})
    assert lora_settings(on) is on.i2vedit


def test_auto_warps_when_the_model_weights_are_missing(tmp_path):
    pytest.importorskip("torch")
    auto = _auto(vace={"model": str(tmp_path / "nowhere"), "device": "cpu"})
    auto.setup()  # no error: remembered
    choice = auto.choose(ellipse(64, 64, 32, 32, 20, 10), ellipse(64, 64, 32, 32, 20, 10))
    assert choice.strategy == "warp" and "does not exist" in choice.reason


def test_backends_are_cheap_to_construct_and_picklable():
    from pvtt.insert.flux_fill import FluxFillInserter
    from pvtt.propagate.motion_lora import MotionLoraPropagator
    from pvtt.propagate.vace import VaceDepthPropagator, VacePointsPropagator

    for backend in (FluxFillInserter(steps=3), MotionLoraPropagator(rank=4), VaceDepthPropagator(steps=2),
                    VacePointsPropagator(), AutoPropagator(iou_threshold=0.5)):
        copy = pickle.loads(pickle.dumps(backend))
        assert copy.settings == backend.settings and type(copy) is type(backend)


def test_settings_reject_unknown_keys():
    from pvtt.propagate import VaceSettings

    with pytest.raises(ValueError, match="stepz"):
        VaceSettings(stepz=3)


def test_missing_pipeline_is_a_clear_error(tmp_path):
    pytest.importorskip("diffusers")
    from pvtt.propagate.motion_lora import MotionLoraPropagator

    (tmp_path / "svd").mkdir()
    with pytest.raises(ModelNotAvailable, match="model_index.json"):
        MotionLoraPropagator(model=str(tmp_path / "svd"), device="cpu").setup()
    with pytest.raises(ModelNotAvailable, match="not available locally.*huggingface-cli download"):
        MotionLoraPropagator(model="nobody/no-such-svd", device="cpu").setup()


def test_each_strategy_names_the_clip_artifacts_it_uses():
    from pvtt.propagate import PropagateSettings, clip_artifacts

    assert clip_artifacts(PropagateSettings(backend="warp")) == {}
    assert clip_artifacts(PropagateSettings(backend="vace-depth")) == {"depth": "required"}
    assert clip_artifacts(PropagateSettings(backend="vace-points")) == {}
    assert clip_artifacts(PropagateSettings(backend="motion-lora")) == {"motion_lora": "required"}
    assert clip_artifacts(PropagateSettings(backend="i2vedit")) == {"motion_lora": "required"}
    assert clip_artifacts(PropagateSettings(backend="svd-points")) == {"points_registration": "required"}
    assert clip_artifacts(PropagateSettings(backend="auto")) == {"depth": "optional"}
    assert clip_artifacts(PropagateSettings(backend="auto", auto={"svd": True})) == {"depth": "optional",
                                                                                     "motion_lora": "required"}
