"""Which model weights a configured run reads: derived from the config, one small rule per stage.

A model section is needed when its stage's backend selects it (``segment.backend: sam2`` reads
``segment.sam2.model``); a shared section (``depth``, ``embed``, ``vlm``) when a stage that uses it is
switched on. :data:`RULES` maps each stage to a function ``config -> [RequiredModel]``: a new model
backend adds (or extends) one rule, and ``tests/test_models_cli.py`` fails while a model section that
the ``gpu`` preset selects is missing from :func:`required_models`.

Nothing here imports torch or huggingface_hub; :mod:`pvtt.weights.hub` says which of these are
on disk and fetches the missing ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from pvtt.models import ModelSettings

if TYPE_CHECKING:
    from pvtt.config import PipelineConfig


@dataclass(frozen=True)
class RequiredModel:
    """One model setting a run reads: its config key, the weights it names, the stage(s) that need it and why."""

    key: str  # dotted config key, e.g. "segment.sam2.model"
    model: str  # a hub id or a local directory
    stage: str  # the stage that needs it ("curate, judge" when several do)
    reason: str  # the setting that selects it, e.g. "segment.backend: sam2"
    kind: str = "hub"  # "hub": a hub id or a local folder of saved weights; "file": one weights file that pvtt
    # finds and fetches itself (U²-Net-p's u2netp.onnx: pvtt.models.u2net)


def _section(prefix: str, settings: ModelSettings, stage: str, reason: str) -> RequiredModel:
    """The ``model`` field of the model section at ``prefix``."""
    return RequiredModel(f"{prefix}.model", settings.model, stage, reason)


def _file(prefix: str, settings: Any, stage: str, reason: str) -> RequiredModel:
    """The ``model`` field of a section that names a single weights file pvtt finds and fetches itself."""
    return RequiredModel(f"{prefix}.model", settings.model, stage, reason, kind="file")


def _detector(prefix: str, settings: Any, stage: str, reason: str) -> RequiredModel:
    """A :class:`~pvtt.locate.DetectorSettings` section: its model, or its family's default weights."""
    from pvtt.locate.detector import DEFAULT_MODELS

    return RequiredModel(f"{prefix}.model", settings.model or DEFAULT_MODELS[settings.family], stage, reason)


# 1. one rule per stage


def _locate(config: PipelineConfig) -> list[RequiredModel]:
    if config.locate.backend == "salient":
        return [_file("locate.salient", config.locate.salient, "locate", "locate.backend: salient")]
    if config.locate.backend != "detector":
        return []
    return [_detector("locate.detector", config.locate.detector, "locate", "locate.backend: detector")]


def _segment(config: PipelineConfig) -> list[RequiredModel]:
    if config.segment.backend != "sam2":
        return []
    return [_section("segment.sam2", config.segment.sam2, "segment", "segment.backend: sam2")]


def _track(config: PipelineConfig) -> list[RequiredModel]:
    if config.track.points == "vlm":  # the VLM names the parts the points go on
        return [_section("vlm", config.vlm, "track", "track.points: vlm")]
    return []


def _curate(config: PipelineConfig) -> list[RequiredModel]:
    out = []
    if config.curate.dedup == "embedding":
        out.append(_section("embed", config.embed, "curate", "curate.dedup: embedding"))
    if config.curate.object_checks():
        out.append(_file("curate.salient", config.curate.salient, "curate",
                         "curate.max_object_missed / max_mask_off_object below 1"))
    return out


def _cutout(config: PipelineConfig) -> list[RequiredModel]:
    if config.cutout.backend == "salient":
        return [_file("cutout.salient", config.cutout.salient, "cutout", "cutout.backend: salient")]
    if config.cutout.backend != "grounded":
        return []
    grounded = config.cutout.grounded
    reason = "cutout.backend: grounded"
    return [_detector("cutout.grounded.detector", grounded.detector, "cutout", reason),
            _section("cutout.grounded", grounded, "cutout", reason)]  # SAM2's image predictor


def _pairing(config: PipelineConfig) -> list[RequiredModel]:
    if config.pairing.instruction == "vlm":
        return [_section("vlm", config.vlm, "pairing", "pairing.instruction: vlm")]
    return []


def _depth(config: PipelineConfig) -> list[RequiredModel]:
    from pvtt.propagate import depth_need

    need = depth_need(config.propagate)
    if need is None:
        return []
    reason = f"propagate.backend: {config.propagate.backend} ({need} depth video)"
    return [_section("depth", config.depth, "depth", reason)]


def _insert(config: PipelineConfig) -> list[RequiredModel]:
    insert = config.insert
    if insert.backend != "flux-fill":
        return []
    flux, reason = insert.flux_fill, "insert.backend: flux-fill"
    if flux.control == "depth":
        depth_reason = reason + ", control: depth"
        needed = [RequiredModel("insert.flux_fill.depth_model", flux.depth_model, "insert", depth_reason),
                  RequiredModel("insert.flux_fill.depth_estimator", flux.depth_estimator, "insert", depth_reason)]
    else:
        needed = [_section("insert.flux_fill", flux, "insert", reason)]
    reference = flux.reference
    if "redux" in reference:  # FLUX.1-Redux turns B's photo into prompt tokens
        needed.append(RequiredModel("insert.flux_fill.redux_model", flux.redux_model, "insert",
                                    f"{reason}, reference: {reference}"))
    return needed


def _propagate(config: PipelineConfig) -> list[RequiredModel]:
    from pvtt.propagate import BACKENDS

    p = config.propagate
    reason = f"propagate.backend: {p.backend}"
    if p.backend in ("motion-lora", "i2vedit", "svd-points"):  # the SVD weights, each under its own section
        return [_section(f"propagate.{BACKENDS[p.backend].section}", BACKENDS.settings_of(p), "propagate", reason)]
    needed = []
    auto = p.backend == "auto" and p.auto.models
    if p.backend in ("vace-depth", "vace-points") or (auto and p.vace.model):
        needed.append(_section("propagate.vace", p.vace, "propagate", reason))
        if p.backend != "vace-points":  # estimates the clip's depth itself when the depth stage left no video
            needed.append(RequiredModel("propagate.vace.depth_model", p.vace.depth_model, "propagate",
                                        reason + " (depth when the clip has no depth video)"))
    if auto and p.auto.svd and p.i2vedit.model:  # the SVD family: i2vedit and svd-points
        needed += [_section("propagate.i2vedit", p.i2vedit, "propagate", reason + ", auto.svd: true"),
                   _section("propagate.svd_points", p.svd_points, "propagate", reason + ", auto.svd: true")]
    return needed


def _judge(config: PipelineConfig) -> list[RequiredModel]:
    judge, needed = config.judge, []
    identity = judge.identity
    if identity in ("dinov2", "both"):
        needed.append(_section("embed", config.embed, "judge", f"judge.identity: {identity}"))
    if judge.vlm:
        needed.append(_section("vlm", config.vlm, "judge", "judge.vlm: true"))
    return needed


Rule = Callable[["PipelineConfig"], list[RequiredModel]]

RULES: dict[str, Rule] = {  # in pipeline order
    "locate": _locate,
    "segment": _segment,
    "track": _track,
    "curate": _curate,
    "cutout": _cutout,
    "pairing": _pairing,
    "depth": _depth,
    "insert": _insert,
    "propagate": _propagate,
    "judge": _judge,
}


# 2. the list


def required_models(config: PipelineConfig) -> list[RequiredModel]:
    """Every model setting the run configured by ``config`` reads, once per key, in pipeline order.

    A key needed by several stages (``embed.model`` for curate's dedup and the judge's identity) is
    listed once, with the stages and reasons joined.
    """
    by_key: dict[str, RequiredModel] = {}
    for rule in RULES.values():
        for need in rule(config):
            seen = by_key.get(need.key)
            if seen is None:
                by_key[need.key] = need
            elif need.stage not in seen.stage.split(", "):
                by_key[need.key] = replace(seen, stage=f"{seen.stage}, {need.stage}",
                                           reason=f"{seen.reason}; {need.reason}")
    return list(by_key.values())


def model_sections(settings: BaseModel, prefix: str = "") -> Iterator[tuple[str, ModelSettings]]:
    """Every :class:`~pvtt.models.ModelSettings` section reachable from ``settings``, with its dotted path."""
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, BaseModel):
            path = f"{prefix}{name}"
            if isinstance(value, ModelSettings):
                yield path, value
            yield from model_sections(value, path + ".")


__all__ = ["RULES", "RequiredModel", "model_sections", "required_models"]
