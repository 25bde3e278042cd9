"""`pvtt build --preset gpu` end to end on the CPU: every model the preset selects is a tiny random model saved
with ``save_pretrained`` and named in the config, as real weights would be, so every model backend goes through
the real loading code inside the build (the same run at full size is ``benchmarks/gpu_build.py --preset gpu``).

Random weights make the answers meaningless, so the test asserts what holds with any weights: every model the
preset needs is loaded once, every stage of the model path runs and leaves a record for every item (done or
rejected with a reason, never failed), the pairs that reach the judge carry the VLM's question and answer and
the DINOv2 identity score, and a second run loads nothing and recomputes nothing.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("diffusers")
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "generative"))

from pvtt.config import load_config  # noqa: E402
from pvtt.demo import make_demo_catalog  # noqa: E402
from pvtt.models import ModelBackend  # noqa: E402
from pvtt.weights.required import required_models  # noqa: E402
from pvtt.pipeline import build  # noqa: E402
from pvtt.store import Workspace  # noqa: E402
from pvtt.types import Status  # noqa: E402

SMALL = ["normalize.short_side=128", "normalize.max_frames=9", "normalize.min_frames=9", "insert.max_scale_change=6",
         "media.preset=ultrafast", "runner.progress=false", "pairing.strategy=all",
         # tiny models on the CPU, short answers
         "vlm.caption_tokens=6", "vlm.instruction_tokens=6", "vlm.judge_tokens=6", "vlm.points_tokens=6",
         "vlm.num_frames=2", "vlm.judge_frames=2", "vlm.frame_size=56",
         # the preset's torch.compile of SAM2 would spend minutes in inductor on the CPU; the compiled path is tested
         # against eager in tests/models/test_models_perception.py
         "segment.sam2.compile=false",
         "insert.flux_fill.steps=2", "insert.flux_fill.max_side=128", "propagate.vace.steps=2",
         "propagate.vace.max_area=1024",
         # the tiny OWLv2's boxes have no size: Grounding DINO's tiny model finds boxes that have one
         "locate.detector.family=grounding-dino", "locate.detector.threshold=0",
         "cutout.grounded.detector.family=grounding-dino", "cutout.grounded.detector.threshold=0",
         "cutout.low_confidence=0", "cutout.max_area=1"]


def _tiny(name: str, root: Path) -> Path:
    """Save the tiny stand-in of a full model under ``root/name``; return the folder."""
    import tiny_models as tm
    import tiny_pipelines as tp

    folder = root / name
    makers = {
        "detector": lambda: (tm.tiny_grounding_dino(), tm.tiny_tokenizer()),
        "sam2-video": lambda: (tm.tiny_sam2_video(), None),
        "sam2-image": lambda: (tm.tiny_sam2_image(), None),
        "dinov2": lambda: (tm.tiny_dinov2(), None),
        "depth": lambda: (tm.tiny_depth_anything(), None),
        "qwen": lambda: (tm.tiny_qwen(), tm.tiny_tokenizer()),
        "flux-fill": lambda: (tp.tiny_flux_fill(), None),
        "vace": lambda: (tp.tiny_wan_vace(), None),
    }
    if name == "redux":
        return tp.save_tiny_flux_redux(folder)
    model, tokenizer = makers[name]()
    model.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder


# every model key the gpu preset can need -> its tiny stand-in
TINY = {"locate.detector.model": "detector", "cutout.grounded.detector.model": "detector",
        "segment.sam2.model": "sam2-video", "cutout.grounded.model": "sam2-image", "embed.model": "dinov2",
        "depth.model": "depth", "propagate.vace.depth_model": "depth", "vlm.model": "qwen",
        "insert.flux_fill.model": "flux-fill", "insert.flux_fill.redux_model": "redux",
        "propagate.vace.model": "vace"}


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> list[str]:
    """The ``--set`` lines naming a saved tiny model for every model the gpu preset (with redux) needs."""
    root = tmp_path_factory.mktemp("weights")
    config = load_config(None, [*SMALL, "insert.flux_fill.reference=in-context+redux"], preset="gpu")
    needed = required_models(config)
    assert {r.key for r in needed} <= set(TINY), "a model the gpu preset needs has no tiny stand-in here"
    saved: dict[str, Path] = {}
    for name in sorted({TINY[r.key] for r in needed}):
        saved[name] = _tiny(name, root)
    return [f"{r.key}={saved[TINY[r.key]]}" for r in needed]


@pytest.fixture()
def loads(monkeypatch) -> Counter:
    """Calls of each model backend's ``load()`` (which reads the weights), by ``stage:class``."""
    counter: Counter = Counter()
    for cls in _model_backend_classes():
        if "load" in cls.__dict__:
            monkeypatch.setattr(cls, "load", _counted(cls.__dict__["load"], counter))
    return counter


def _records(ws: Workspace, stages: tuple[str, ...], counts: dict) -> None:
    """Every stage left records, none failed, every rejection has its reason."""
    for stage in stages:
        records = ws.records(stage)
        assert records, f"stage {stage} left no record: {counts}"
        assert all(r.status is not Status.FAILED for r in records), [(r.item_id, r.reason) for r in records]
        assert all(r.reason for r in records if r.status is Status.REJECTED)


def test_gpu_preset_runs_every_model_through_the_real_loaders(weights, loads, tmp_path):
    """The preset as it is: random SAM2 masks are mostly empty, so most clips stop at segment or curate
    (rejected with the reason); what passes goes on, and every model the preset selects is loaded."""
    catalog = make_demo_catalog(tmp_path / "catalog", count=2)
    config = load_config(None, [*SMALL, "insert.flux_fill.reference=in-context+redux", *weights], preset="gpu")
    summary = build(catalog, tmp_path / "dataset", config, workspace=tmp_path / "ws")
    counts = {stage: dict(c) for stage, c in summary.counts.items()}
    _records(Workspace(tmp_path / "ws"), ("locate", "segment", "points", "track", "cutout"), counts)
    loaded = {name.split(":")[1] for name in loads}
    assert {"DetectorLocator", "Sam2Segmenter", "QwenVLM", "GroundedDetector", "Sam2ImagePredictor"} <= loaded, loads


def test_gpu_preset_downstream_models_on_classical_masks(weights, loads, tmp_path):
    """The same preset with the classical locate and segment (the demo's products are found, so clips get
    through): the clip embeddings, the captions and instructions, the grounded cutout, FLUX with B's photo in
    context and Redux, VACE, the DINOv2 and VLM judges all run in one build; a second build loads nothing."""
    catalog = make_demo_catalog(tmp_path / "catalog", count=2)
    config = load_config(None, [*SMALL, "insert.flux_fill.reference=in-context+redux", *weights,
                                "locate.backend=auto", "segment.backend=classical", "track.points=features"],
                         preset="gpu")
    summary = build(catalog, tmp_path / "dataset", config, workspace=tmp_path / "ws")
    ws = Workspace(tmp_path / "ws")
    counts = {stage: dict(c) for stage, c in summary.counts.items()}
    _records(ws, ("curate", "embed", "dedup", "cutout", "caption", "instruct", "synthesize"), counts)
    loaded = {name.split(":")[1] for name in loads}
    assert {"Dinov2Embedder", "QwenVLM", "GroundedDetector", "Sam2ImagePredictor", "FluxFillInserter"} <= loaded, loads
    assert any(name.startswith("Vace") for name in loaded), loads
    synthesized = ws.records("synthesize")
    assert all("vlm_question" in r.metrics and "identity_dinov2" in r.metrics["scores"] for r in synthesized)
    assert all(r.metrics.get("strategy", "").startswith("vace") for r in synthesized), \
        [r.metrics.get("strategy") for r in synthesized]
    # a second run loads nothing and recomputes nothing
    loads.clear()
    stages = ("embed", "caption", "instruct", "cutout", "synthesize")
    before = {stage: {r.item_id: r.key for r in ws.records(stage)} for stage in stages}
    build(catalog, tmp_path / "dataset", config, workspace=tmp_path / "ws")
    assert not loads, loads
    assert {stage: {r.item_id: r.key for r in ws.records(stage)} for stage in stages} == before


def _model_backend_classes() -> list[type]:
    import pvtt.cutout.grounded  # noqa: F401  (import every model backend so its class is a subclass below)
    import pvtt.depth.depth_anything  # noqa: F401
    import pvtt.embed.dinov2  # noqa: F401
    import pvtt.insert.flux_fill  # noqa: F401
    import pvtt.locate.detector  # noqa: F401
    import pvtt.propagate.vace  # noqa: F401
    import pvtt.segment.sam2  # noqa: F401
    import pvtt.vlm.qwen  # noqa: F401

    found, todo = [], [ModelBackend]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def _counted(load, loads: Counter):
    def counting(self):
        loads[f"{self.stage}:{type(self).__name__}"] += 1
        return load(self)

    return counting
