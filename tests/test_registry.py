"""Backend registries: every entry says which settings section its backend takes, and that section exists in the
config model and is what the backend is built with."""

import importlib

import pytest
from pydantic import BaseModel

from pvtt.config import PipelineConfig
from pvtt.registry import Entry, Registry


def _sections(model: type[BaseModel], prefix: str = ""):
    for name, info in model.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            yield f"{prefix}{name}", info.annotation
            yield from _sections(info.annotation, f"{prefix}{name}.")


REGISTRIES = [(key, cls) for key, cls in _sections(PipelineConfig) if getattr(cls, "backends", None) is not None]
ENTRIES = [(key, cls, name) for key, cls in REGISTRIES for name in cls.backends]


def test_every_backend_section_has_a_registry_named_after_its_stage():
    assert {"propagate", "insert", "segment", "locate", "cutout", "hands"} <= {key for key, _ in REGISTRIES}
    for key, cls in REGISTRIES:
        assert isinstance(cls.backends, Registry) and cls.stage == cls.backends.stage == key.split(".")[-1], key


@pytest.mark.parametrize("key,cls,name", ENTRIES, ids=[f"{key}:{name}" for key, _, name in ENTRIES])
def test_entry_names_sections_of_its_stage(key, cls, name):
    entry = cls.backends[name]
    for section in (entry.section, *entry.context.values()):
        if section:  # "" is the stage's own section
            info = cls.model_fields.get(section)
            assert info is not None, f"{key}.backend {name}: {key}.{section} is not a section of the config"
            assert isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel), f"{key}.{section}"


@pytest.mark.parametrize("key,cls,name", ENTRIES, ids=[f"{key}:{name}" for key, _, name in ENTRIES])
def test_backend_is_built_with_the_section_its_entry_names(key, cls, name):
    settings = cls(backend=name)
    section = cls.backends.settings_of(settings)
    assert section is (getattr(settings, cls.backends[name].section) if cls.backends[name].section else settings)
    module, _, attribute = cls.backends[name].target.partition(":")
    target = getattr(importlib.import_module(module), attribute)
    settings_class = getattr(target, "settings_class", None)
    if settings_class is not None:  # a backend class (not a factory function): it takes that section's model
        assert isinstance(section, settings_class), f"{key}.backend {name}: {type(section).__name__}"
        backend = cls.backends.make(settings)
        assert type(backend) is target and backend.settings == section


def test_unknown_name_and_missing_section_are_errors():
    registry = Registry("demo", {"a": "pvtt.hands:NoHands", "b": Entry("pvtt.hands:NoHands", "nowhere")})
    with pytest.raises(ValueError, match="unknown demo backend 'c'; known backends: a, b"):
        registry.entry("c")
    with pytest.raises(AttributeError, match="nowhere"):
        registry.settings_of(PipelineConfig().hands.model_copy(update={"backend": "b"}))
