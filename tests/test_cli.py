"""The command line: exit codes, config errors naming the key, status output, the lock message."""

from __future__ import annotations

from typer.testing import CliRunner

from pvtt.cli import app
from pvtt.store import Workspace
from pvtt.testmedia import multi_shot_video

runner = CliRunner()
FAST = ["--set", "normalize.short_side=48", "--set", "normalize.fps=10", "--set", "media.preset=ultrafast",
        "--set", "shots.min_duration=0.3", "--no-progress"]


def test_config_show_prints_effective_values():
    result = runner.invoke(app, ["config", "show", "--set", "normalize.fps=24"])
    assert result.exit_code == 0
    assert "fps: 24.0" in result.stdout and "short_side: 720" in result.stdout


def test_bad_setting_exits_2_and_names_the_key():
    result = runner.invoke(app, ["config", "show", "--set", "normalize.fsp=24"])
    assert result.exit_code == 2 and "normalize.fsp: unknown key" in result.output


def test_unknown_backend_exits_2_before_any_work(tmp_path):
    (tmp_path / "cat" / "videos").mkdir(parents=True)
    multi_shot_video(tmp_path / "cat" / "videos" / "a.mp4", [30, 30], height=48, width=64)
    result = runner.invoke(app, ["build", "--catalog", str(tmp_path / "cat"), "--out", str(tmp_path / "out"), *FAST,
                                 "--set", "propagate.backend=vace-dpeth"])
    assert result.exit_code == 2, result.output
    assert ("propagate.backend: unknown backend 'vace-dpeth'; known: auto, i2vedit, motion-lora, svd-points, vace-depth, vace-points, warp"
            in " ".join(result.output.split()))  # the error console may wrap the line
    assert not (tmp_path / "out" / ".pvtt-workspace" / "records").exists()  # no stage ran
    shown = runner.invoke(app, ["config", "show", "--set", "propagate.backend=vace-dpeth"])
    assert shown.exit_code == 2 and "unknown backend 'vace-dpeth'" in shown.output


def test_every_run_option_reaches_the_config(tmp_path, monkeypatch):
    import pvtt.pipeline

    seen = {}
    for name in ("prepare", "analyze", "build"):
        monkeypatch.setattr(pvtt.pipeline, name, lambda *args, _name=name, **kw: seen.setdefault(_name, args[-1]))
    options = ["--set", "normalize.fps=12", "--preset", "gpu", "--workers", "3", "--runner", "ray",
               "--ray-address", "auto", "--no-progress"]
    for command, where in (("prepare", ["--catalog", str(tmp_path), "--out", str(tmp_path / "ws")]),
                           ("analyze", ["--out", str(tmp_path / "ws")]),
                           ("build", ["--catalog", str(tmp_path), "--out", str(tmp_path / "o"), "--pairing",
                                      "sampled:5"])):
        runner.invoke(app, [command, *where, *options])  # the stub returns no summary: only the config matters
        cfg = seen[command]
        assert (cfg.normalize.fps, cfg.runner.workers, cfg.runner.kind) == (12, 3, "ray"), command
        assert cfg.runner.ray.address == "auto" and cfg.runner.progress is False, command
        assert cfg.segment.backend == "sam2", command  # from the gpu preset
    assert seen["build"].pairing.strategy == "sampled:5" and seen["prepare"].pairing.strategy != "sampled:5"


def test_prepare_then_status(tmp_path):
    (tmp_path / "cat" / "videos").mkdir(parents=True)
    multi_shot_video(tmp_path / "cat" / "videos" / "a.mp4", [30, 30], height=48, width=64)
    (tmp_path / "cat" / "videos" / "b.mp4").write_text("not a video")
    result = runner.invoke(app, ["prepare", "--catalog", str(tmp_path / "cat"), "--out", str(tmp_path / "ws"), *FAST])
    assert result.exit_code == 0, result.output
    status = runner.invoke(app, ["status", str(tmp_path / "ws")])
    assert status.exit_code == 0
    assert "normalize" in status.stdout and "not a readable video" in status.stdout


def test_unknown_catalog_layout_exits_2(tmp_path):
    result = runner.invoke(app, ["prepare", "--catalog", str(tmp_path), "--out", str(tmp_path / "ws"), *FAST])
    assert result.exit_code == 2 and "cannot tell the layout" in result.output


def test_busy_workspace_exits_3(tmp_path):
    (tmp_path / "cat" / "videos").mkdir(parents=True)
    with Workspace(tmp_path / "ws").lock():
        # the lock is per open file description, so a second open in this process is refused too
        result = runner.invoke(app, ["prepare", "--catalog", str(tmp_path / "cat"), "--out", str(tmp_path / "ws")])
    assert result.exit_code == 3 and "is in use" in result.output


def test_status_of_a_non_workspace(tmp_path):
    result = runner.invoke(app, ["status", str(tmp_path)])
    assert result.exit_code == 2 and "not a pvtt workspace" in result.output


def test_demo_renders_a_catalog_and_prepares_it(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--count", "2", *FAST])
    assert result.exit_code == 0, result.output
    records = Workspace(tmp_path / "workspace").records("normalize")
    assert [r.item_id for r in records] == ["DEMO001", "DEMO002"]
    assert all(len(r.outputs["clips"]) == 2 for r in records)  # every demo template has two shots
