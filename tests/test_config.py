"""Config: defaults < file < --set; unknown keys and bad values are errors naming the key."""

from __future__ import annotations

import pytest

from pvtt.config import PipelineConfig, dump_config, load_config, settings_key
from pvtt.errors import ConfigError


def test_precedence_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("normalize:\n  fps: 24\n  max_frames: 49\n")
    config = load_config(path, ["normalize.fps=30"])
    assert config.normalize.fps == 30 and config.normalize.max_frames == 49
    assert config.normalize.short_side == 720  # default kept


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"normalize\.fsp: unknown key"):
        load_config(None, ["normalize.fsp=3"])
    path = tmp_path / "c.yaml"
    path.write_text("shotz: {}\n")
    with pytest.raises(ConfigError, match="shotz: unknown key"):
        load_config(path)


def test_bad_value_is_named():
    with pytest.raises(ConfigError, match=r"normalize\.fps: .*greater than 0"):
        load_config(None, ["normalize.fps=-1"])
    with pytest.raises(ConfigError, match=r"normalize\.multiple: .*even"):
        load_config(None, ["normalize.multiple=15"])
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(None, ["fps"])


def test_dump_round_trips(tmp_path):
    config = load_config(None, ["shots.detector=content"])
    path = tmp_path / "c.yaml"
    path.write_text(dump_config(config))
    assert load_config(path) == config


def test_settings_key_changes_only_with_its_settings():
    a, b = PipelineConfig(), PipelineConfig()
    b.normalize.fps = 10
    assert settings_key(a.shots) == settings_key(b.shots)
    assert settings_key(a.normalize) != settings_key(b.normalize)
