"""Every stage the pipeline runs is cheap to construct and survives pickling (process pools, Ray actors) with its
settings and its backends' settings: no weights are loaded before ``setup()``, nothing unpicklable is held."""

from __future__ import annotations

import pickle

import pytest
from pydantic import BaseModel

from pvtt.config import PipelineConfig, load_config
from pvtt.hands import make_hand_detector
from pvtt.insert import BACKENDS as INSERT_BACKENDS
from pvtt.propagate import BACKENDS as PROPAGATE_BACKENDS
from pvtt.stages.clip import (CurateStage, DepthStage, EraseStage, LocateStage, MotionLoraStage,
                              PointsRegistrationStage, SegmentStage,
                              TrackStage)
from pvtt.stages.pair import SynthesizeStage
from pvtt.stages.product import CutoutStage, ProductStage, VideoCutoutStage
from pvtt.stages.template import NormalizeStage
from pvtt.store import Workspace


def pipeline_stages(ws: Workspace, config: PipelineConfig) -> dict:
    """The stages as :mod:`pvtt.pipeline` constructs them."""
    retry, crf = config.runner.retry_failed, config.media.crf
    return {
        "normalize": NormalizeStage(ws, config.shots, config.normalize, config.media, retry),
        "product": ProductStage(ws, config.media, retry),
        "locate": LocateStage(ws, config.locate, retry),
        "segment": SegmentStage(ws, config.segment, retry, crf),
        "track": TrackStage(ws, config.track, retry),
        "curate": CurateStage(ws, config.curate, retry, hands=config.hands),
        "erase": EraseStage(ws, config.erase, retry, crf),
        "depth": DepthStage(ws, config.depth, retry, crf),
        "motion_lora": MotionLoraStage(ws, config.propagate, retry),
        "points_registration": PointsRegistrationStage(ws, config.propagate, retry),
        "cutout": CutoutStage(ws, config.cutout, retry, hands=config.hands),
        "video_cutout": VideoCutoutStage(ws, config.video_cutout, config.cutout, retry,
                                         hand_mask=make_hand_detector(config.hands), salient=config.curate.salient),
        "synthesize": SynthesizeStage(ws, config.insert, config.propagate, config.judge, retry, crf),
    }


def state(stage) -> dict:
    """What a copy has to keep: the stage's settings sections, its backends' types and settings, its needs."""
    settings = {k: v for k, v in vars(stage).items() if isinstance(v, BaseModel)}
    backends = [(type(b), getattr(b, "settings", None)) for b in stage.backends()]
    return {"type": type(stage), "name": stage.name, "root": stage.workspace.root,
            "retry_failed": stage.retry_failed, "settings": settings, "backends": backends,
            "resources": stage.resources}


@pytest.mark.parametrize("preset", [None, "salient"])
def test_every_pipeline_stage_pickles_with_its_settings(tmp_path, preset):
    """The defaults, and the ``salient`` preset's U²-Net-p backends (locate, cutout, curate's object checks: never
    pickled with their network)."""
    stages = pipeline_stages(Workspace(tmp_path), load_config(preset=preset))
    if preset == "salient":
        assert [b.name for b in stages["curate"].backends()][-1] == "salient"
        assert stages["locate"].backend.name == "salient"
    for name, stage in stages.items():
        assert stage.name == name
        expected = state(stage)
        assert expected["settings"], f"{name}: no settings section found on the stage"
        copy = pickle.loads(pickle.dumps(stage))
        assert state(copy) == expected, name


@pytest.mark.parametrize("insert", sorted(INSERT_BACKENDS))
@pytest.mark.parametrize("propagate", sorted(PROPAGATE_BACKENDS))
def test_pair_stage_pickles_with_every_backend(tmp_path, insert, propagate):
    config = PipelineConfig.model_validate({"insert": {"backend": insert, "flux_fill": {"steps": 3}},
                                            "propagate": {"backend": propagate, "vace": {"steps": 2},
                                                          "motion_lora": {"rank": 4}}})
    stage = SynthesizeStage(Workspace(tmp_path), config.insert, config.propagate, config.judge)
    copy = pickle.loads(pickle.dumps(stage))
    assert state(copy) == state(stage)


def test_constructing_every_stage_imports_no_model_library(tmp_path):
    """Weights and their libraries load in ``setup()`` on a worker, never when the driver builds the stages."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys; sys.path.insert(0, sys.argv[1]); from test_stages_pickle import *; "
            "pipeline_stages(Workspace(sys.argv[2]), PipelineConfig()); "
            "print(sorted(m for m in ('torch', 'transformers', 'diffusers', 'mediapipe') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(tmp_path)], check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "[]"
