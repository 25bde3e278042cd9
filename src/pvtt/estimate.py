"""Project a dataset's size, compute and storage before building it (``pvtt estimate``).

From ``N`` templates and ``M`` product photos:

1. **clips** = ``N`` × clips per template (measured from a workspace's normalize records, else the
   cost table's default, measured on the development data);
2. **pairs** from the clips that survive the per-clip stages, by the pairing strategy:
   ``all`` = clips × products; ``same-category`` = clips × products × the fraction of
   (template, product) combinations that share a category (measured from a workspace's catalog,
   else ``1 / categories``); ``sampled:K`` = clips × min(K, products);
3. **compute** per stage = items × seconds per item / 3600, in device-hours of the stage's device (GPU
   stages on the chosen GPU kind, CPU stages per worker); clip and pair stages scale with the clip's
   frames × pixels relative to the table's reference clip;
4. **storage** per artifact = count × bytes per item (bytes per source clip and per product photo
   measured from a workspace when one is given).

The seconds, pass rates and sizes come from a cost table (YAML or JSON). The default ships in the
package (``pvtt/data/costs.yaml``); each number says whether it was measured (where, when) or is a
placeholder to be replaced by profiling output.

This module is the cost model only; ``pvtt estimate`` (its options, tables and JSON) is in :mod:`pvtt.cli`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pvtt.config import PipelineConfig
from pvtt.errors import ConfigError
from pvtt.store import Workspace
from pvtt.types import Status

Unit = Literal["template", "clip", "product", "pair"]
Count = Literal["clips", "kept_clips", "products", "pairs", "kept_pairs"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class StageCost(_Model):
    unit: Unit = Field()
    """What one item of the stage is."""
    device: Literal["cpu", "gpu"] = Field()
    """Where the stage's configured backend runs."""
    seconds: dict[str, float] = Field()
    """Seconds per item by device kind ('cpu', 'h100', ...)."""
    pass_rate: float = Field(1.0, gt=0, le=1)
    """Fraction of items kept by this stage."""
    source: str = Field()
    """'measured: where, when' or 'placeholder: why this number'."""
    when: str | None = None
    """Only when the config has this setting: 'section.key=value' (the VLM's caption stage runs only with
    pairing.instruction=vlm)."""
    scales: bool = True
    """Scaled with frames x pixels of the clip (false: the stage samples a fixed number of frames at a fixed size, as
    the VLM does)."""
    sources: dict[str, str] = Field(default_factory=dict)
    """Per device kind, a source that replaces `source` for that kind's seconds (a number measured on one GPU kind
    while the others stay placeholders)."""


class StorageCost(_Model):
    count: Count = Field()
    """Which count the artifact is written for."""
    bytes: float = Field(0.0, ge=0)
    """Bytes per item."""
    clip_bytes: float = Field(0.0, ge=0)
    """Bytes per item in units of one source clip's bytes."""
    source: str


class ReferenceClip(_Model):
    """The normalize settings the table's clip and pair numbers were measured (or guessed) with."""

    max_frames: int = Field(101, ge=1)
    short_side: int = Field(720, ge=16)


class CostTable(_Model):
    """Per-stage costs and the defaults the projection starts from."""

    reference: ReferenceClip = Field(default_factory=ReferenceClip)
    """The clip size that clip and pair numbers are for."""
    clips_per_template: float = Field(gt=0)
    clips_per_template_source: str
    clip_bytes: float = Field(gt=0)
    """Bytes of one source clip of the reference size."""
    clip_bytes_source: str
    categories: int = Field(ge=1)
    """Product categories, for same-category pairing without a workspace."""
    stages: dict[str, StageCost]
    storage: dict[str, StorageCost]


def default_costs_path() -> Path:
    return Path(str(resources.files("pvtt") / "data" / "costs.yaml"))


def load_costs(path: str | Path | None = None) -> CostTable:
    """The cost table at ``path`` (YAML or JSON), or the packaged default."""
    path = Path(path) if path is not None else default_costs_path()
    if not path.is_file():
        raise ConfigError(f"cost table not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML
        return CostTable.model_validate(data)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cost table {path} is not valid YAML/JSON: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"cost table {path}: {problems}") from None


@dataclass(frozen=True)
class Pairing:
    """How clips are crossed with products: ``all``, ``same-category`` or ``sampled:K``."""

    kind: Literal["all", "same-category", "sampled"]
    k: int = 0

    @classmethod
    def parse(cls, text: str) -> Pairing:
        if text in ("all", "same-category"):
            return cls(text)  # type: ignore[arg-type]
        name, _, k = text.partition(":")
        if name == "sampled" and k.isdigit() and int(k) > 0:
            return cls("sampled", int(k))
        raise ConfigError(f"pairing: {text!r} is not one of all, same-category, sampled:K (K a positive integer)")

    def pairs(self, clips: float, products: int, same_category_fraction: float) -> float:
        if self.kind == "all":
            return clips * products
        if self.kind == "same-category":
            return clips * products * same_category_fraction
        return clips * min(self.k, products)

    def __str__(self) -> str:
        return f"sampled:{self.k}" if self.kind == "sampled" else self.kind


@dataclass
class Measured:
    """What a workspace tells about the data: averages that replace the cost table's defaults."""

    clips_per_template: float | None = None
    clip_bytes: float | None = None
    product_bytes: float | None = None
    same_category_fraction: float | None = None
    seconds: dict[str, tuple[float, int]] = field(default_factory=dict)  # stage → (mean seconds, items)


def measure_workspace(workspace: str | Path) -> Measured:
    """Averages from a workspace's records: clips per template, bytes per clip and product photo,
    seconds per item of each stage (computed items only, not cached ones), and the same-category fraction."""
    ws = Workspace(workspace)
    if not (ws.root / "records").is_dir():
        raise ConfigError(f"workspace: {ws.root} is not a pvtt workspace (no records/ folder)")
    out = Measured()
    normalize = ws.records("normalize")
    if normalize:
        clips = [c for r in normalize for c in r.outputs.get("clips", [])]
        out.clips_per_template = len(clips) / len(normalize)
        sizes = [ws.abs(c["path"]).stat().st_size for c in clips if ws.abs(c["path"]).is_file()]
        out.clip_bytes = sum(sizes) / len(sizes) if sizes else None
    products = [r for r in ws.records("product") if r.status is Status.DONE]
    sizes = [ws.abs(r.outputs["image_path"]).stat().st_size for r in products
             if ws.abs(r.outputs.get("image_path", "")).is_file()]
    out.product_bytes = sum(sizes) / len(sizes) if sizes else None
    for stage in ws.stages():
        timed = [r.seconds for r in ws.records(stage)
                 if r.status is Status.DONE and r.seconds and not r.metrics.get("cached")]
        if timed:
            out.seconds[stage] = (sum(timed) / len(timed), len(timed))
    catalog = ws.root / "catalog.json"
    if catalog.is_file():
        data = json.loads(catalog.read_text(encoding="utf-8"))
        templates = [t.get("category") for t in data.get("templates", [])]
        products_cat = [p.get("category") for p in data.get("products", [])]
        if templates and products_cat and any(templates) and any(products_cat):
            same = sum(t == p for t in templates if t for p in products_cat if p)
            out.same_category_fraction = same / (len(templates) * len(products_cat))
    return out


@dataclass
class StageRow:
    stage: str
    unit: str
    items: float
    device: str  # the device kind the seconds are for: 'cpu', 'h100', ...
    seconds_per_item: float
    hours: float
    source: str


@dataclass
class StorageRow:
    artifact: str
    items: float
    bytes_per_item: float
    total_bytes: float
    source: str


@dataclass
class Estimate:
    templates: int
    products: int
    pairing: str
    gpu: str
    gpus: int
    clips_per_template: float
    clips: float
    kept_clips: float
    pairs: float
    kept_pairs: float
    stages: list[StageRow]
    storage: list[StorageRow]
    gpu_hours: float
    gpu_days: float
    wall_days: float  # GPU-days spread over `gpus` GPUs
    cpu_hours: float
    total_bytes: float
    notes: list[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _config_has(config: PipelineConfig, condition: str) -> bool:
    """Whether ``config`` has the setting ``condition`` names ("pairing.instruction=vlm"; values compared as text)."""
    key, _, value = condition.partition("=")
    node: Any = config
    for part in key.strip().split("."):
        if not hasattr(node, part):
            raise ConfigError(f"cost table: `when: {condition}` names no setting ({part!r} is unknown)")
        node = getattr(node, part)
    return str(node).lower() == value.strip().lower()


def estimate(templates: int, products: int, pairing: str | Pairing = "all", *, config: PipelineConfig | None = None,
             costs: CostTable | None = None, workspace: str | Path | None = None, gpu: str = "h100",
             gpus: int = 8, categories: int | None = None) -> Estimate:
    """Project clips, pairs, device-hours per stage and storage for ``templates`` × ``products``."""
    # 1. check inputs
    if templates < 0 or products < 0:
        raise ConfigError(f"`templates` and `products` must not be negative but are {templates} and {products}")
    if gpus < 1:
        raise ConfigError(f"`gpus` must be at least 1 but is {gpus}")
    pairing = pairing if isinstance(pairing, Pairing) else Pairing.parse(pairing)
    config = config or PipelineConfig()
    costs = costs or load_costs()
    measured = measure_workspace(workspace) if workspace is not None else Measured()
    notes: list[str] = []

    # 2. averages: measured from the workspace, else the table's defaults
    if measured.clips_per_template is not None:
        cpt = measured.clips_per_template
        notes.append(f"clips per template {cpt:.3g}: measured in workspace {workspace}")
    else:
        cpt = costs.clips_per_template
        notes.append(f"clips per template {cpt:.3g}: {costs.clips_per_template_source}")
        if config.normalize.windows != "first":
            notes.append("warning: the default clips per template is for normalize.windows=first; pass a "
                         "workspace prepared with this config to measure it")
    ref = costs.reference
    scale = config.normalize.max_frames / ref.max_frames * (config.normalize.short_side / ref.short_side) ** 2
    if not math.isclose(scale, 1.0):
        notes.append(f"clip and pair stages scaled by {scale:.3g} (frames × pixels against the table's "
                     f"normalize.max_frames={ref.max_frames}, normalize.short_side={ref.short_side})")
    clip_bytes = measured.clip_bytes if measured.clip_bytes is not None else costs.clip_bytes * scale
    if categories is not None:
        same_fraction, why = 1.0 / categories, f"{categories} equally frequent categories (--categories)"
    elif measured.same_category_fraction is not None:
        same_fraction, why = measured.same_category_fraction, f"measured from the catalog of {workspace}"
    else:
        same_fraction, why = 1.0 / costs.categories, f"{costs.categories} equally frequent categories (cost table)"
    if pairing.kind == "same-category":
        notes.append(f"same-category fraction of template × product combinations {same_fraction:.3g}: {why}")

    # 3. items and device-hours per stage, in pipeline order
    counts: dict[str, float] = {"template": templates, "clip": templates * cpt, "product": products}
    clips = counts["clip"]
    pairs: float | None = None
    rows: list[StageRow] = []
    for name, cost in costs.stages.items():
        if cost.when is not None and not _config_has(config, cost.when):
            continue
        if cost.unit == "pair" and pairs is None:
            pairs = counts["pair"] = pairing.pairs(counts["clip"], products, same_fraction)
        kind = "cpu" if cost.device == "cpu" else gpu
        source = cost.sources.get(kind, cost.source)
        if cost.device == "cpu" and name in measured.seconds:
            seconds, n = measured.seconds[name]
            source = f"measured: workspace {workspace} ({n} items)"
        elif kind in cost.seconds:
            seconds = cost.seconds[kind] * (scale if cost.unit in ("clip", "pair") and cost.scales else 1.0)
        else:
            raise ConfigError(f"cost table: stage {name!r} has no seconds for device {kind!r} "
                              f"(has: {', '.join(sorted(cost.seconds)) or 'none'})")
        items = counts[cost.unit]
        rows.append(StageRow(name, cost.unit, items, kind, seconds, items * seconds / 3600.0, source))
        counts[cost.unit] = items * cost.pass_rate
    kept_clips = counts["clip"]
    if pairs is None:
        pairs = counts["pair"] = pairing.pairs(kept_clips, products, same_fraction)
    kept_pairs = counts["pair"]

    # 4. storage
    amount = {"clips": clips, "kept_clips": kept_clips, "products": products, "pairs": pairs, "kept_pairs": kept_pairs}
    storage: list[StorageRow] = []
    for name, item in costs.storage.items():
        per_item = item.bytes + item.clip_bytes * clip_bytes
        source = item.source
        if name == "images/target" and measured.product_bytes is not None:
            per_item, source = measured.product_bytes, f"measured: workspace {workspace}"
        elif item.clip_bytes and measured.clip_bytes is not None:
            source = f"{item.source} (× source clip bytes measured in workspace {workspace})"
        n = amount[item.count]
        storage.append(StorageRow(name, n, per_item, n * per_item, source))

    gpu_hours = sum(r.hours for r in rows if r.device != "cpu")
    return Estimate(
        templates=templates, products=products, pairing=str(pairing), gpu=gpu, gpus=gpus, clips_per_template=cpt,
        clips=clips, kept_clips=kept_clips, pairs=pairs, kept_pairs=kept_pairs, stages=rows, storage=storage,
        gpu_hours=gpu_hours, gpu_days=gpu_hours / 24.0, wall_days=gpu_hours / 24.0 / gpus,
        cpu_hours=sum(r.hours for r in rows if r.device == "cpu"), total_bytes=sum(s.total_bytes for s in storage),
        notes=notes,
    )
