"""cutout ``grounded`` (detector + SAM2 image predictor) end to end on tiny random models loaded from disk."""

from __future__ import annotations

import json
import math
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tiny_models import tiny_clip, tiny_grounding_dino, tiny_owlv2, tiny_sam2_image, tiny_tokenizer  # noqa: E402

from pvtt.config import load_config  # noqa: E402
from pvtt.cutout import CutoutSettings, make_cutter  # noqa: E402
from pvtt.cutout.grounded import GroundedCutter, instance_score  # noqa: E402
from pvtt.errors import RejectItem  # noqa: E402
from pvtt.models import ModelNotAvailable  # noqa: E402
from pvtt.types import ProductImage  # noqa: E402

DEV = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "pvtt-dev"


def tame_owlv2():
    """The tiny OWLv2 with its box head's last layer scaled down: at full scale its random outputs saturate the
    box sigmoid into zero-size boxes, which no backend can segment."""
    model = tiny_owlv2()
    model.box_head.dense2.weight.data *= 0.1
    return model


DETECTORS = {"owlv2": tame_owlv2, "grounding-dino": tiny_grounding_dino}


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, str]:
    """Tiny detectors (with a tokenizer) and a tiny SAM2 image model, saved as save_pretrained directories."""
    root = tmp_path_factory.mktemp("weights")
    paths = {}
    for family, build in DETECTORS.items():
        build().save_pretrained(root / family)
        tiny_tokenizer().save_pretrained(root / family)
        paths[family] = str(root / family)
    tiny_sam2_image().save_pretrained(root / "sam2")
    paths["sam2"] = str(root / "sam2")
    return paths


def settings(weights, family: str = "owlv2", **grounded) -> dict:
    """The cutout section for the grounded backend on the tiny weights, on the CPU; every detection accepted, and
    a mask threshold below any logit, so that SAM2's mask fills the whole photo unless the backend confines it."""
    detector = {"family": family, "model": weights[family], "device": "cpu", "threshold": 0.0,
                **grounded.pop("detector", {})}
    return {"backend": "grounded", "max_area": 1.0, "refine_radius": 0.0,
            "grounded": {"model": weights["sam2"], "device": "cpu", "mask_threshold": -1e4, "box_slack": 0.0,
                         "detector": detector, **grounded}}


def ready(weights, family: str = "owlv2", **grounded) -> GroundedCutter:
    cutter = make_cutter(CutoutSettings.model_validate(settings(weights, family, **grounded)))
    cutter.setup()
    return cutter


def photo() -> np.ndarray:
    return tiny_clip(num_frames=1, height=60, width=80).frames[0]


def outside(alpha: np.ndarray, box, pad: float = 0.0) -> np.ndarray:
    """Pixels of ``alpha`` outside ``box`` grown by ``pad`` pixels."""
    keep = np.ones(alpha.shape, bool)
    keep[max(0, math.floor(box.y0 - pad)):math.ceil(box.y1 + pad), max(0, math.floor(box.x0 - pad)):
         math.ceil(box.x1 + pad)] = False
    return keep


@pytest.mark.parametrize("family", list(DETECTORS))
def test_the_mask_stays_inside_the_detected_box_and_the_cutout_is_rgba(weights, family):
    cutter = ready(weights, family)
    assert isinstance(cutter, GroundedCutter)
    rgb = photo()
    found = cutter.best_instance(rgb, ["mug"])
    # SAM2's mask covers everything (threshold below any logit): the box alone bounds the alpha
    assert found.alpha.shape == rgb.shape[:2] and found.alpha.dtype == np.float32
    assert found.alpha[outside(found.alpha, found.box)].max(initial=0) == 0
    assert found.alpha[~outside(found.alpha, found.box)].min() == 1.0
    result = cutter.cut_out(ProductImage("p", np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
                                         description="Ceramic Mug"))
    assert result.rgba.ndim == 3 and result.rgba.shape[-1] == 4 and result.rgba.dtype == np.uint8
    assert 0 <= result.confidence <= 1 and result.low_confidence == (result.confidence < 0.5)
    # trimmed to the box (+ margin of its long side) and no larger
    box = found.box
    pad = math.ceil(0.02 * max(box.width, box.height)) + 1
    assert result.rgba.shape[0] <= box.height + 2 * pad + 1 and result.rgba.shape[1] <= box.width + 2 * pad + 1


def test_box_slack_lets_the_mask_reach_just_past_the_box(weights):
    cutter = ready(weights, box_slack=0.25)
    found = cutter.best_instance(photo(), ["mug"])
    pad = 0.25 * max(found.box.width, found.box.height)
    assert found.alpha[outside(found.alpha, found.box, pad)].max(initial=0) == 0
    assert found.alpha[outside(found.alpha, found.box)].max(initial=0) == 1.0  # the whole photo is "mask"


def test_the_best_instance_is_the_best_detector_score_times_sam2_iou(weights):
    # Grounding DINO's tiny scores differ from box to box (the tiny OWLv2's saturate at 1.0)
    cutter = ready(weights, "grounding-dino", max_instances=3)
    rgb = photo()
    boxes = cutter.detector.detections(rgb, ["mug"], limit=3)
    assert len(boxes) >= 2, "the tiny detector should find several boxes at threshold 0"
    logits, ious = cutter.segmenter.predict(rgb, boxes)
    assert logits.shape[0] == len(boxes) and ious.shape == (len(boxes),)
    found = cutter.best_instance(rgb, ["mug"])
    scores = [instance_score(b.confidence, float(iou)) for b, iou in zip(boxes, ious)]
    assert found.box == boxes[int(np.argmax(scores))] and found.score == pytest.approx(max(scores))
    one = ready(weights, "grounding-dino", max_instances=1).best_instance(rgb, ["mug"])
    assert one.box == boxes[0]  # one instance: the top detection, whatever its mask


def test_sam2_keeps_the_mask_with_the_best_predicted_iou(weights):
    import torch

    cutter = ready(weights)
    rgb = photo()
    box = cutter.detector.detect(rgb, ["mug"])
    logits, ious = cutter.segmenter.predict(rgb, [box])
    model, size = cutter.segmenter.model, cutter.segmenter.model.config.prompt_encoder_config.image_size
    from pvtt.models.preprocess import frames_to_tensor, resize_normalize

    pixels = resize_normalize(frames_to_tensor(rgb[None], "cpu"), (size, size), torch.float32, mode="bilinear")
    scale = torch.tensor([size / rgb.shape[1], size / rgb.shape[0]] * 2)
    with torch.inference_mode():
        out = model(pixel_values=pixels, input_boxes=torch.tensor([[box.as_tuple()]]) * scale, multimask_output=True)
    best = int(out.iou_scores[0, 0].argmax())
    assert ious[0] == pytest.approx(float(out.iou_scores[0, 0].max()))
    np.testing.assert_allclose(logits[0], out.pred_masks[0, 0, best].numpy(), atol=1e-5)


def test_nothing_detected_or_nothing_segmented_is_a_rejection_naming_the_queries(weights):
    image = ProductImage("p", np.dstack([photo(), np.full((60, 80), 255, np.uint8)]),
                         description="Hand Knitted Wool Socks, Extra Thick Warm Winter Socks | Gift for Her")
    # the tiny Grounding DINO's scores stay below 1 (the tiny OWLv2's saturate at exactly 1.0)
    cutter = ready(weights, "grounding-dino", detector={"threshold": 1.0})
    with pytest.raises(RejectItem, match=r"no separable product: no detection for \['knitted wool socks'\] above "
                                         r"1\.0 \(grounding-dino\)"):
        cutter.cut_out(image)
    with pytest.raises(RejectItem, match="SAM2 found nothing"):
        ready(weights, mask_threshold=1e4).cut_out(image)


def test_an_existing_alpha_is_used_without_the_models(weights):
    rgba = np.zeros((40, 50, 4), np.uint8)
    rgba[10:30, 15:35] = (200, 120, 40, 255)
    cutter = make_cutter(CutoutSettings.model_validate(settings(weights)))  # not set up: no model may run
    result = cutter.cut_out(ProductImage("p", rgba))
    assert result.confidence == 1.0 and result.rgba.shape[:2] == (20, 20) and cutter.detector.model is None


def test_missing_weights_name_the_config_key(weights, tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(ModelNotAvailable, match=r"cutout\.grounded\.model"):
        make_cutter(CutoutSettings.model_validate(settings(weights, model=missing))).setup()
    with pytest.raises(ModelNotAvailable, match=r"cutout\.grounded\.detector\.model"):
        make_cutter(CutoutSettings.model_validate(settings(weights, detector={"model": missing}))).setup()


def test_picklable_before_and_after_setup_and_declares_a_gpu(weights):
    cutter = make_cutter(CutoutSettings.model_validate(settings(weights)))
    copy = pickle.loads(pickle.dumps(cutter))
    assert copy.settings == cutter.settings and copy.detector.model is None and copy.segmenter.model is None
    cutter.setup()
    copy = pickle.loads(pickle.dumps(cutter))
    assert copy.segmenter.model is None and copy.detector.settings == cutter.detector.settings
    assert cutter.resources.gpus == 0  # both models pinned to the CPU
    config = load_config(overrides=["cutout.backend=grounded", "cutout.grounded.detector.family=grounding-dino"])
    assert config.cutout.grounded.model == "facebook/sam2.1-hiera-large"
    on_gpu = make_cutter(config.cutout)
    assert isinstance(on_gpu, GroundedCutter) and on_gpu.resources.gpus == 1
    assert on_gpu.detector.settings.family == "grounding-dino"


def _dev_product(sample_id: str) -> tuple[Path, dict]:
    meta = DEV / "annotations" / "metadata.json"
    if not meta.is_file():
        pytest.skip(f"no development data at {DEV}")
    sample = next(s for s in json.loads(meta.read_text())["samples"] if s["id"] == sample_id)
    return DEV / sample["source_product"]["image_path"], sample


def test_cutout_stage_runs_the_grounded_backend_on_a_real_photo(weights, tmp_path):
    """A real catalog photo through CutoutStage: a valid record either way (quality needs real weights), and the
    stage's foreign-content checks ran on whatever the backend cut out."""
    from pvtt.items import ProductItem
    from pvtt.hands import HandSettings
    from pvtt.stages.product import CutoutStage
    from pvtt.store import Workspace
    from pvtt.types import Status

    path, sample = _dev_product("CLOT001")
    ws = Workspace(tmp_path / "ws")
    (ws.root / "products").mkdir(parents=True)
    shutil.copy(path, ws.root / "products" / path.name)
    product = ProductItem("CLOT001", f"products/{path.name}", "k", sample["category"], sample.get("subcategory"),
                          sample["source_product"]["description"])
    # a mask threshold of 0 (SAM2's own) and no low-confidence rejection: the foreign-content checks decide
    cutout = CutoutSettings.model_validate({**settings(weights, mask_threshold=0.0), "max_area": 0.95,
                                            "reject_low_confidence": False, "refine_radius": 0.006})
    stage = CutoutStage(ws, cutout, hands=HandSettings(backend="none"))
    stage.setup()
    record = stage.process(product)
    assert record.status in (Status.DONE, Status.REJECTED), record.reason
    if record.status is Status.DONE:
        assert {"support", "pieces", "hand", "confidence"} <= set(record.metrics)
        assert "['knitted wool socks']" in record.metrics["notes"]
    else:
        assert record.reason.startswith(("no separable product", "foreign content")), record.reason
