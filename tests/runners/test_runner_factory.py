"""Runner selection from the config; Ray is imported only when the Ray runner runs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import SimpleNamespace

import pytest

from pvtt.errors import ConfigError
from pvtt.runners.factory import make_runner
from pvtt.runners.local import LocalRunner
from pvtt.runners.ray import RaySettings


def test_local_is_the_default_and_keeps_workers_and_progress():
    runner = make_runner(SimpleNamespace(workers=3, progress=False))
    assert isinstance(runner, LocalRunner) and runner.workers == 3 and runner.progress is False


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed (pip install 'pvtt[ray]')")
def test_ray_kind_gives_a_ray_runner_with_its_settings():
    from pvtt.runners.ray import RayRunner

    runner = make_runner(SimpleNamespace(kind="ray", progress=False, ray=RaySettings(address="auto", max_retries=5)))
    assert isinstance(runner, RayRunner) and runner.settings.address == "auto" and runner.settings.max_retries == 5


def test_ray_kind_without_ray_installed_names_the_extra(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"runner.kind: 'ray' needs Ray.*pvtt\[ray\]"):
        make_runner(SimpleNamespace(kind="ray"))


def test_unknown_kind_is_a_config_error():
    with pytest.raises(ConfigError, match="runner.kind"):
        make_runner(SimpleNamespace(kind="slurm"))


def test_ray_settings_reject_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="adress"):
        RaySettings.model_validate({"adress": "auto"})
    with pytest.raises(ValueError, match="max_retries"):
        RaySettings(max_retries=-1)


def test_importing_the_runners_and_their_settings_does_not_import_ray():
    code = ("import sys, pvtt.runners.factory, pvtt.runners.ray, pvtt.pipeline, pvtt.estimate; "
            "sys.exit('ray' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
