"""`pvtt build` end to end on a rendered catalog, on the local and on the Ray runner: every stage recorded (the pair
stage included), the dataset written, a re-run cached, and bad products rejected with a reason rather than crashing
the run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pvtt.config import load_config
from pvtt.demo import make_demo_catalog
from pvtt.pipeline import build
from pvtt.store import Workspace
from pvtt.testmedia import textured_background
from pvtt.types import Status

SMALL = ["normalize.short_side=240", "media.preset=ultrafast", "runner.progress=false", "pairing.strategy=all",
         "export.modes=[replace, double-insert, reversed]", "export.shard_size=4"]


def make_runner(kind: str):
    """None (the build's own local runner) or a Ray runner on a small local instance (2 CPUs, as the Ray runner's
    tests start it), shut down by its ``close``."""
    if kind == "local":
        return None
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'pvtt[ray]')")
    from pvtt.runners.ray import RayRunner

    return RayRunner(progress=False, num_cpus=2, object_store_mb=300, log_to_driver=False)


@pytest.fixture(scope="module", params=["local", pytest.param("ray", marks=pytest.mark.slow)])
def built(request, tmp_path_factory):
    runner = make_runner(request.param)
    root = tmp_path_factory.mktemp(f"build-{request.param}")
    catalog = make_demo_catalog(root / "catalog", count=3)
    # a "product photo" with nothing to cut out: a flat white image
    Image.fromarray(np.full((200, 200, 3), 255, np.uint8)).save(catalog / "images" / "blank.png")
    # a "product photo" that is all clutter: its cutout is a low-confidence guess and must not enter the dataset
    Image.fromarray(textured_background(200, 200, 7, detail=10.0)).save(catalog / "images" / "busy.png")
    meta = json.loads((catalog / "annotations" / "metadata.json").read_text())
    meta["samples"].append({"id": "BLANK", "category": "home", "source_product": {"image_path": "images/blank.png"}})
    meta["samples"].append({"id": "BUSY", "category": "home", "source_product": {"image_path": "images/busy.png"}})
    (catalog / "annotations" / "metadata.json").write_text(json.dumps(meta))
    config = load_config(None, SMALL)
    try:
        summary = build(catalog, root / "dataset", config, workspace=root / "ws", runner=runner)
        yield root, config, summary, runner
    finally:
        if runner is not None:
            runner.close()


def test_every_stage_has_records_and_the_dataset_is_written(built):
    root, _, summary, _ = built
    ws = Workspace(root / "ws")
    for stage in ("normalize", "locate", "segment", "track", "curate", "dedup", "erase", "cutout", "synthesize"):
        assert ws.records(stage), stage
    assert summary.counts["synthesize"]["done"] >= 2
    for record in ws.records("track"):  # the demo's products are tracked to well under a pixel
        if record.status is Status.DONE:
            assert 0 <= record.metrics["fb_median"] < 1.0 and 0 <= record.metrics["visible_last"] <= 1, record.metrics
    rows = [json.loads(line) for line in (root / "dataset/annotations/pairs.jsonl").read_text().splitlines()]
    assert {r["mode"] for r in rows} >= {"replace", "reversed"}
    for row in rows:
        assert row["verdict"] == "keep" and row["instruction"] and row["difficulty"] in ("easy", "medium", "hard",
                                                                                          "expert")
        assert row["product_id"] != row["source_product_id"]  # never its own product
        for rel in row["files"].values():
            assert (root / "dataset" / rel).is_file(), rel
    assert (root / "dataset/report/index.html").is_file() and (root / "dataset/README.md").is_file()
    assert list((root / "dataset/shards").glob("*.tar"))


def test_a_photo_with_no_product_is_rejected_with_a_reason(built):
    root, *_ = built
    record = Workspace(root / "ws").read_record("cutout", "BLANK")
    assert record.status is Status.REJECTED and record.reason


def test_a_low_confidence_cutout_is_kept_out_of_the_pairs(built):
    root, *_ = built
    record = Workspace(root / "ws").read_record("cutout", "BUSY")
    assert record.status is Status.REJECTED and record.reason.startswith("low-confidence cutout")
    pairs = json.loads((root / "ws" / "pairs.json").read_text())
    assert pairs and all(p["product_id"] != "BUSY" for p in pairs)


def _work(ws: Workspace) -> dict:
    """mtimes of every final per-item record (done or rejected) and of every artifact file. The ingest and dedup
    records are left out: both are whole-catalog steps, rewritten by every run."""
    stages = [s for s in ws.stages() if s not in ("ingest", "dedup")]
    files = [ws.record_path(s, r.item_id) for s in stages for r in ws.records(s) if r.status is not Status.FAILED]
    folders = [d for d in ws.root.iterdir() if d.is_dir() and d.name != "records"]
    files += [p for folder in folders for p in folder.rglob("*") if p.is_file()]
    return {p: p.stat().st_mtime_ns for p in files}


def test_rerun_reuses_everything(built):
    root, config, first, runner = built
    ws = Workspace(root / "ws")
    before = _work(ws)
    assert any("synthesize" in p.parts for p in before) and any("erase" in p.parts for p in before)
    summary = build(root / "catalog", root / "dataset", config, workspace=root / "ws", runner=runner)
    assert _work(ws) == before  # no record rewritten, no artifact rewritten: every stage's work was reused
    assert summary.counts["synthesize"] == first.counts["synthesize"]


def test_a_reviewer_box_locates_its_clip_and_leaves_the_others_cached(built, tmp_path):
    """``locate.boxes``: a listed clip takes the reviewer's box (fractions of its frame, source 'reviewer'); a null
    entry and the unlisted clips keep their cached locate records."""
    from pvtt.items import collect_clips
    from pvtt.pipeline import analyze

    root, _, _, runner = built
    ws = Workspace(root / "ws")
    done = sorted(r.item_id for r in ws.records("locate") if r.status is Status.DONE)
    target, untouched = done[0], done[1:]
    before = {c: ws.record_path("locate", c).stat().st_mtime_ns for c in untouched}
    boxes = tmp_path / "boxes.yaml"
    boxes.write_text(f"{target}: [0.1, 0.2, 0.6, 0.9]\n{untouched[0]}: null\n")
    analyze(root / "ws", load_config(None, SMALL + [f"locate.boxes={boxes}"]), runner=runner)
    record = ws.read_record("locate", target)
    clip = next(c for c in collect_clips(ws) if c.id == target)
    width, height = clip.width, clip.height
    assert record.outputs["source"] == "reviewer" and record.outputs["confidence"] == 1.0
    assert record.outputs["box"] == pytest.approx([0.1 * width, 0.2 * height, 0.6 * width, 0.9 * height], abs=0.01)
    assert {c: ws.record_path("locate", c).stat().st_mtime_ns for c in untouched} == before


def test_a_bad_reviewer_box_file_is_a_config_error(tmp_path):
    from pvtt.errors import ConfigError
    from pvtt.locate import read_reviewer_boxes

    with pytest.raises(ConfigError, match="no such file"):
        read_reviewer_boxes(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("c1: [0.5, 0.2, 0.4, 0.9]\n")
    with pytest.raises(ConfigError, match="c1"):
        read_reviewer_boxes(bad)
    bad.write_text("c1: [0.1, 0.2]\n")
    with pytest.raises(ConfigError, match="expected"):
        read_reviewer_boxes(bad)
    with pytest.raises(ConfigError, match="locate.boxes.*expected"):  # at config load, before any work
        load_config(None, [f"locate.boxes={bad}"])


def test_bench_backgrounds_from_a_workspace_never_show_its_products(built, tmp_path):
    """`pvtt bench make --workspace`: a case's background is a window of a curated clip that the clip's product
    (its masks over the case's frames, grown by a margin) never enters — no product A and no erase fill in it."""
    from pvtt import artifacts
    from pvtt.bench.make import make_benchmark, product_free_clips

    root, *_ = built
    ws = Workspace(root / "ws")
    found = product_free_clips(root / "ws", 9, 160, 96)
    assert found
    for clip_id, _, (x, y, w, h) in found:
        masks = artifacts.masks(ws, clip_id).data[:9]
        assert not masks[:, y:y + h, x:x + w].any() and w * 1.5 >= 160 and abs(w / h - 160 / 96) < 0.2
    cases = make_benchmark([], [root / "catalog" / "images"], tmp_path / "cases", count=2, num_frames=9, width=160,
                           height=96, workspace=root / "ws")
    meta = json.loads((cases[0] / "case.json").read_text())
    assert meta["background"] in {f"clip:{c}" for c, _, _ in found} and len(meta["window"]) == 4
