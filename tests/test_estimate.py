"""`pvtt estimate`: pairs per pairing strategy, device-hours = items × seconds / 3600, storage = count × bytes,
pass rates carried downstream, and measurements from a workspace replacing the table's defaults."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pvtt.config import load_config
from pvtt.errors import ConfigError
from pvtt.estimate import CostTable, Pairing, estimate, load_costs

SMALL = {
    "clips_per_template": 2.0, "clips_per_template_source": "test", "clip_bytes": 1000.0,
    "clip_bytes_source": "test", "categories": 4,
    "stages": {
        "normalize": {"unit": "template", "device": "cpu", "seconds": {"cpu": 36.0}, "source": "measured: test"},
        "curate": {"unit": "clip", "device": "cpu", "seconds": {"cpu": 3.6}, "pass_rate": 0.5, "source": "t"},
        "segment": {"unit": "clip", "device": "gpu", "seconds": {"h100": 360.0, "h200": 180.0}, "source": "t"},
        "cutout": {"unit": "product", "device": "gpu", "seconds": {"h100": 36.0}, "source": "t"},
        "propagate": {"unit": "pair", "device": "gpu", "seconds": {"h100": 3600.0}, "source": "placeholder: t"},
        "judge": {"unit": "pair", "device": "gpu", "seconds": {"h100": 0.0}, "pass_rate": 0.25, "source": "t"},
    },
    "storage": {
        "videos/source": {"count": "clips", "clip_bytes": 1.0, "source": "t"},
        "videos/background": {"count": "kept_clips", "clip_bytes": 2.0, "source": "t"},
        "images/target": {"count": "products", "bytes": 50.0, "source": "t"},
        "videos/synthesized": {"count": "pairs", "clip_bytes": 1.0, "bytes": 10.0, "source": "t"},
        "exported": {"count": "kept_pairs", "bytes": 1.0, "source": "t"},
    },
}


@pytest.fixture
def costs() -> CostTable:
    return CostTable.model_validate(SMALL)


@pytest.mark.parametrize("pairing,pairs", [("all", 10 * 7), ("same-category", 10 * 7 / 4),
                                           ("sampled:3", 10 * 3), ("sampled:100", 10 * 7)])
def test_pairs_per_strategy_cross_the_clips_kept_by_curate_with_products(costs, pairing, pairs):
    # 10 templates × 2 clips = 20 clips; curate keeps half → 10 clips enter pairing
    result = estimate(10, 7, pairing, costs=costs)
    assert result.clips == 20 and result.kept_clips == 10
    assert result.pairs == pytest.approx(pairs)
    assert result.kept_pairs == pytest.approx(pairs * 0.25)


def test_device_hours_are_items_times_seconds_over_3600(costs):
    result = estimate(10, 7, "all", costs=costs, gpus=4)
    hours = {r.stage: (r.items, r.device, r.hours) for r in result.stages}
    assert hours["normalize"] == (10, "cpu", pytest.approx(10 * 36 / 3600))
    assert hours["curate"] == (20, "cpu", pytest.approx(20 * 3.6 / 3600))
    assert hours["segment"] == (10, "h100", pytest.approx(10 * 360 / 3600))  # after curate's pass rate
    assert hours["cutout"] == (7, "h100", pytest.approx(7 * 36 / 3600))
    assert hours["propagate"] == (70, "h100", pytest.approx(70.0))
    assert result.gpu_hours == pytest.approx(1 + 0.07 + 70)
    assert result.gpu_days == pytest.approx(71.07 / 24)
    assert result.wall_days == pytest.approx(71.07 / 24 / 4)
    assert result.cpu_hours == pytest.approx(0.1 + 0.02)


def test_storage_is_count_times_bytes_per_item(costs):
    result = estimate(10, 7, "all", costs=costs)
    total = {s.artifact: s.total_bytes for s in result.storage}
    assert total == {"videos/source": 20 * 1000, "videos/background": 10 * 2000, "images/target": 7 * 50,
                     "videos/synthesized": 70 * 1010, "exported": pytest.approx(70 * 0.25)}
    assert result.total_bytes == pytest.approx(sum(total.values()))


def test_other_gpu_kind_and_a_missing_one_named_in_the_error(costs):
    with pytest.raises(ConfigError, match="stage 'cutout' has no seconds for device 'h200'"):
        estimate(1, 1, costs=costs, gpu="h200")  # cutout has only h100
    for stage in costs.stages.values():
        stage.seconds.setdefault("h200", stage.seconds.get("h100", 0.0))
    h200 = {r.stage: (r.device, r.seconds_per_item) for r in estimate(1, 1, costs=costs, gpu="h200").stages}
    assert h200["segment"] == ("h200", 180.0) and h200["normalize"] == ("cpu", 36.0)


def test_clip_stages_scale_with_frames_and_pixels_of_the_config(costs):
    config = load_config(None, ["normalize.max_frames=202", "normalize.short_side=360"])
    rows = {r.stage: r.seconds_per_item for r in estimate(1, 1, costs=costs, config=config).stages}
    assert rows["segment"] == pytest.approx(360 * 2 * 0.25) and rows["normalize"] == 36.0


def test_bad_pairing_is_an_error_naming_the_choices():
    with pytest.raises(ConfigError, match="sampled:K"):
        Pairing.parse("sampled:x")


def test_workspace_measurements_replace_the_defaults(tmp_path, costs):
    from pvtt.store import Workspace, write_json
    from pvtt.types import ItemRecord, Status

    ws = Workspace(tmp_path)
    for name, size in (("a.mp4", 3000), ("b.mp4", 5000)):
        (tmp_path / name).write_bytes(b"x" * size)
    clip = {"path": "a.mp4"}
    ws.write_record(ItemRecord("normalize", "t1", "k", Status.DONE, outputs={"clips": [clip, {"path": "b.mp4"}]},
                               seconds=10.0))
    ws.write_record(ItemRecord("normalize", "t2", "k", Status.FAILED, reason="broken"))
    write_json(tmp_path / "catalog.json", {"templates": [{"category": "a"}, {"category": "b"}],
                                           "products": [{"category": "a"}]})
    result = estimate(4, 1, "same-category", costs=costs, workspace=tmp_path)
    assert result.clips_per_template == 1.0  # 2 clips from 2 templates (a failed template counts)
    assert result.pairs == pytest.approx(4 * 0.5 * 1 * 0.5)  # same-category fraction 1/2 measured
    assert {s.artifact: s.bytes_per_item for s in result.storage}["videos/source"] == 4000
    assert result.stages[0].seconds_per_item == 10.0 and result.stages[0].source.startswith("measured: workspace")


def test_the_packaged_table_loads_and_marks_every_number():
    table = load_costs()
    assert all(c.source.startswith(("measured:", "placeholder:")) for c in table.stages.values())
    assert all(v.startswith("measured:") for c in table.stages.values() for v in c.sources.values())
    h200 = estimate(15, 15, gpu="h200")  # every GPU stage has a measured H200 number, shown as measured
    assert all(r.source.startswith("measured:") for r in h200.stages if r.device == "h200")
    h100 = estimate(15, 15, gpu="h100")
    assert any(r.source.startswith("placeholder:") for r in h100.stages if r.device == "h100")
    result = estimate(15, 15)
    assert result.clips == pytest.approx(35, rel=0.01)  # pvtt-dev: 15 templates → 35 clips


def test_command_prints_json_and_tables(tmp_path):
    from pvtt.cli import app

    out = CliRunner().invoke(app, ["estimate", "--templates", "10", "--products", "3", "--pairing", "sampled:2",
                                   "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["pairs"] == pytest.approx(data["kept_clips"] * 2) and data["gpu_hours"] > 0
    plain, gpu = (CliRunner().invoke(app, ["estimate", "-t", "10", "-p", "3", "--gpu", "h200", "--json", *preset])
                  for preset in ([], ["--preset", "gpu"]))
    assert plain.exit_code == 0 and gpu.exit_code == 0
    # the preset reaches the projection: its model stages are counted
    stages = {json.dumps(sorted(r["stage"] for r in json.loads(x.stdout)["stages"])) for x in (plain, gpu)}
    assert len(stages) == 2
    tables = CliRunner().invoke(app, ["estimate", "-t", "10", "-p", "3"])
    assert tables.exit_code == 0 and "compute per stage" in tables.stdout and "storage" in tables.stdout
    bad = CliRunner().invoke(app, ["estimate", "--templates", "10", "--products", "3", "--pairing", "some"])
    assert bad.exit_code == 2
    missing = CliRunner().invoke(app, ["estimate", "-t", "10", "-p", "3", "--costs", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2 and "cost table not found" in missing.output


def test_stages_that_a_setting_switches_on_are_counted_only_then():
    from pvtt.config import load_config

    default = {r.stage for r in estimate(10, 10, gpu="h200").stages}
    gpu = {r.stage: r for r in estimate(10, 10, gpu="h200", config=load_config(preset="gpu")).stages}
    assert not {"caption", "instruct", "points", "embed"} & default
    assert {"caption", "instruct", "points", "embed"} <= set(gpu)
    # the VLM samples a fixed number of frames: its seconds do not scale with the clip's frames x pixels
    short = {r.stage: r for r in estimate(10, 10, gpu="h200", config=load_config(
        overrides=["normalize.max_frames=50"], preset="gpu")).stages}
    assert short["caption"].seconds_per_item == gpu["caption"].seconds_per_item
    assert short["segment"].seconds_per_item < gpu["segment"].seconds_per_item
