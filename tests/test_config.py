"""Config: defaults < file < --set; unknown keys and bad values are errors naming the key."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import BaseModel

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


def _sections(model: type[BaseModel], prefix: str = ""):
    """Every settings model reachable from ``model``, with its dotted key."""
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield f"{prefix}{name}", annotation
            yield from _sections(annotation, f"{prefix}{name}.")


BACKEND_SECTIONS = [(key, cls) for key, cls in _sections(PipelineConfig) if "backend" in cls.model_fields]


def test_every_backend_field_names_its_registry():
    assert {"propagate", "insert", "segment", "locate", "vlm"} <= {key for key, _ in BACKEND_SECTIONS}
    for key, cls in BACKEND_SECTIONS:
        assert cls.backends is not None and cls.stage, f"{key}: {cls.__name__} names no registry"
        assert cls.model_fields["backend"].default in cls.backends, key


@pytest.mark.parametrize("key,cls", BACKEND_SECTIONS, ids=[key for key, _ in BACKEND_SECTIONS])
def test_unknown_backend_stops_the_load_naming_the_known_ones(key, cls, tmp_path):
    known = ", ".join(sorted(cls.backends))
    message = f"{key}.backend: unknown backend 'nope'; known: {known}"
    with pytest.raises(ConfigError) as info:
        load_config(None, [f"{key}.backend=nope"])
    assert message in str(info.value)
    path = tmp_path / "c.yaml"
    path.write_text(f"{key}:\n  backend: nope\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value)
    for name in cls.backends:  # every registered name loads
        section = load_config(None, [f"{key}.backend={name}"])
        for part in key.split("."):
            section = getattr(section, part)
        assert section.backend == name


def test_propagate_backend_typo_message():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["propagate.backend=vace-dpeth"])
    assert ("propagate.backend: unknown backend 'vace-dpeth'; known: auto, i2vedit, motion-lora, svd-points, vace-depth, vace-points, warp"
            in str(info.value))
    config = PipelineConfig()
    with pytest.raises(ValueError, match="unknown propagate backend 'vace-dpeth'"):
        config.propagate.backend = "vace-dpeth"  # assignments are checked too


def test_checking_backend_names_imports_no_model_library():
    code = ("import sys; from pvtt.config import load_config\n"
            "for s in ('propagate.backend=vace-depth', 'insert.backend=flux-fill', 'segment.backend=sam2', "
            "'vlm.backend=qwen', 'locate.backend=detector'): load_config(None, [s])\n"
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_setting_has_its_meaning_from_its_docstring():
    """Settings are documented by the docstring under each field (``use_attribute_docstrings``); the reference and
    the README read ``description``, so a field without one would show an empty meaning."""
    from pydantic import BaseModel

    from pvtt.config import PipelineConfig

    missing = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
                walk(info.annotation, f"{prefix}{name}.")
            elif not (info.description or "").strip():
                missing.append(prefix + name)

    walk(PipelineConfig, "")
    assert not missing
    crf = PipelineConfig.model_fields["media"].annotation.model_fields["crf"]
    assert crf.description == "x264 constant rate factor of every written video (lower is better)."


def test_cache_keys_leave_out_the_sections_of_backends_that_do_not_run():
    """A new default for SAM2 (or any GPU model's section) must not re-run a CPU build's stage: a stage's key leaves
    out the sub-sections only other backends read. With that backend chosen, they count; the stage's own fields
    always do."""
    from pvtt.config import settings_key
    from pvtt.cutout import CutoutSettings
    from pvtt.insert import InsertSettings
    from pvtt.locate import LocateSettings
    from pvtt.segment import SegmentSettings

    classical, tuned = SegmentSettings(), SegmentSettings()
    tuned.sam2.compile = True
    assert settings_key(classical) == settings_key(tuned)
    sam2, sam2_tuned = SegmentSettings(backend="sam2"), SegmentSettings(backend="sam2")
    sam2_tuned.sam2.compile = True
    assert settings_key(sam2) != settings_key(sam2_tuned)
    assert settings_key(classical) != settings_key(SegmentSettings(work_long_side=640))
    for section, field, backend in ((CutoutSettings, "grounded", "grounded"), (LocateSettings, "detector", "detector"),
                                    (InsertSettings, "flux_fill", "flux-fill")):
        assert field not in section().key_dump() and field in section(backend=backend).key_dump()


@pytest.mark.parametrize("value, message", [({"segmnet": 4}, "unknown stage segmnet"), ({"segment": 0}, "at least 1"),
                                            (0, "at least 1")])
def test_actors_per_gpu_rejects_unknown_stages_and_zero(value, message):
    from pydantic import ValidationError

    from pvtt.runners.ray import RaySettings

    with pytest.raises(ValidationError, match=message):
        RaySettings(actors_per_gpu=value)
    if isinstance(value, dict):
        with pytest.raises(ValidationError, match=message):
            RaySettings(actors=value)


def test_stage_names_are_every_stage_of_the_build():
    """``STAGE_NAMES`` (what per-stage settings may name) lists exactly the stages pvtt defines."""
    import pvtt.stages.clip, pvtt.stages.embed, pvtt.stages.pair, pvtt.stages.product  # noqa: E401, F401
    import pvtt.stages.template, pvtt.stages.vlm  # noqa: E401, F401
    from pvtt.stage import STAGE_NAMES, Stage

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    defined = {c.name for c in subclasses(Stage) if c.__module__.startswith("pvtt.stages") and c.name}
    assert defined == set(STAGE_NAMES)
