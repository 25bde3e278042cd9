"""The pipeline, wired from the validated config, top to bottom.

``prepare``: ingest → shots → normalize (per template) and product photos (per product).
Every stage is a :class:`~pvtt.stage.Stage` run by a runner; every outcome is a record in the
workspace, so ``pvtt status`` can tell what happened and a re-run picks up where it stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pvtt import __version__
from pvtt.catalog import Catalog, load_catalog
from pvtt.config import PipelineConfig, dump_config, settings_key
from pvtt.runners.factory import Runner, make_runner
from pvtt.stages.product import CutoutStage, ProductStage, VideoCutoutStage
from pvtt.stages.template import NormalizeStage
from pvtt.store import Workspace, write_json, write_text
from pvtt.types import ItemRecord, Status

log = logging.getLogger("pvtt")


@dataclass
class RunSummary:
    """Counts per stage of one run, plus the failures and rejections with their reasons."""

    workspace: Path
    counts: dict[str, Counter] = field(default_factory=dict)
    problems: list[ItemRecord] = field(default_factory=list)
    dataset: dict | None = None  # export statistics, when a dataset was written

    def add(self, records: list[ItemRecord]) -> None:
        for record in records:
            self.counts.setdefault(record.stage, Counter())[record.status.value] += 1
            if record.status is not Status.DONE:
                self.problems.append(record)


def _record_catalog(ws: Workspace, catalog: Catalog, catalog_path: Path) -> list[ItemRecord]:
    """Write the ingested catalog and one ``ingest`` record per item (failed ones with their reason)."""
    write_json(ws.root / "catalog.json", {
        "path": str(catalog_path),
        "layout": catalog.layout,
        "templates": [dataclasses.asdict(t) for t in catalog.templates],
        "products": [dataclasses.asdict(p) for p in catalog.products],
    })
    records = []
    for template in catalog.templates:
        records.append(ItemRecord("ingest", f"template-{template.id}", "", Status.DONE,
                                  outputs={"video": str(template.video)}))
    for product in catalog.products:
        records.append(ItemRecord("ingest", f"product-{product.id}", "", Status.DONE,
                                  outputs={"image": str(product.image)}))
    for problem in catalog.problems:
        records.append(ItemRecord("ingest", f"{problem.kind}-{problem.item_id}", "", Status.FAILED,
                                  reason=problem.reason))
    for record in records:
        ws.write_record(record)
    return records


def prepare(catalog_path: str | Path, workspace: str | Path, config: PipelineConfig,
            runner: Runner | None = None) -> RunSummary:
    """Ingest a catalog, split and normalize its templates, and store its product photos."""
    ws = Workspace(workspace)
    summary = RunSummary(ws.root)
    with ws.lock(), contextlib.ExitStack() as stack:
        runner = runner or _own_runner(config, stack)
        _prepare_steps(ws, Path(catalog_path), config, runner, summary)
    return summary


def _prepare_steps(ws: Workspace, catalog_path: Path, config: PipelineConfig, runner: Runner,
                   summary: RunSummary) -> None:
    """ingest → shots + normalize (per template) → product photos (per product)."""
    retry = config.runner.retry_failed
    write_text(ws.root / "config.yaml", f"# pvtt {__version__}: effective config of the last run\n" + dump_config(config))
    # 1. ingest
    catalog = load_catalog(catalog_path)
    summary.add(_record_catalog(ws, catalog, Path(catalog_path)))
    log.info("catalog %s (%s layout): %d templates, %d products, %d problems", catalog.root, catalog.layout,
             len(catalog.templates), len(catalog.products), len(catalog.problems))
    # 2. shots + normalize, one decoding pass per template
    summary.add(runner.run(NormalizeStage(ws, config.shots, config.normalize, config.media, retry),
                           catalog.templates, "normalize"))
    # 3. product photos
    summary.add(runner.run(ProductStage(ws, config.media, retry), catalog.products, "products"))


def _passing(records: list[ItemRecord], items: list) -> list:
    done = {r.item_id for r in records if r.status is Status.DONE}
    return [item for item in items if item.id in done]


def _analyze_steps(ws: Workspace, config: PipelineConfig, runner: Runner, summary: RunSummary) -> list:
    """Per clip: locate → segment → track → curate → near-duplicates. Returns the clips that passed."""
    from pvtt.items import collect_clips
    from pvtt.stages.clip import CurateStage, LocateStage, SegmentStage, TrackStage

    retry = config.runner.retry_failed
    clips = collect_clips(ws, [r.item_id for r in ws.records("normalize") if r.status is Status.DONE])
    for stage in (LocateStage(ws, config.locate, retry), SegmentStage(ws, config.segment, retry, config.media.crf),
                  TrackStage(ws, config.track, retry), CurateStage(ws, config.curate, retry, hands=config.hands)):
        if stage.name == "track" and config.track.points == "vlm":  # the VLM's points; track falls back without
            from pvtt.stages.vlm import PointsStage

            summary.add(runner.run(PointsStage(ws, config.track, config.vlm, retry), clips, "points"))
        records = runner.run(stage, clips, stage.name)
        summary.add(records)
        clips = _passing(records, clips)
    return _dedup_steps(ws, config, runner, summary, clips)


def _dedup_steps(ws: Workspace, config: PipelineConfig, runner: Runner, summary: RunSummary, clips: list) -> list:
    """Near-duplicate clips, by curate's thumbnail vectors or (``curate.dedup: embedding``) by DINOv2 clip vectors
    from the ``embed`` stage (cached per clip). Returns the clips that are not near-duplicates."""
    from pvtt.stages.clip import mark_near_duplicates

    threshold, source = config.curate.near_duplicate_threshold, "curate"
    if config.curate.dedup == "embedding":
        from pvtt.stages.embed import EmbedStage

        records = runner.run(EmbedStage(ws, config.embed, config.runner.retry_failed), clips, "embed")
        summary.add(records)
        clips = _passing(records, clips)
        threshold, source = config.curate.embedding_threshold, "embed"
    records = mark_near_duplicates(ws, clips, threshold, source)
    summary.add(records)
    return _passing(records, clips)


def analyze(workspace: str | Path, config: PipelineConfig, runner: Runner | None = None) -> RunSummary:
    """Run the per-clip perception stages on a prepared workspace."""
    from pvtt.stages.vlm import check_vlm_weights

    check_vlm_weights(config, ("track",))  # missing VLM weights stop the run now, not at the first clip
    ws = Workspace(workspace)
    summary = RunSummary(ws.root)
    with ws.lock(), contextlib.ExitStack() as stack:
        runner = runner or _own_runner(config, stack)
        _analyze_steps(ws, config, runner, summary)
    return summary


def _strategy_steps(ws: Workspace, config: PipelineConfig, runner: Runner, summary: RunSummary, clips: list) -> list:
    """The clip artifacts the propagation strategy uses (:func:`pvtt.propagate.clip_artifacts`: the depth video,
    the motion LoRA, the point registration). Returns the clips whose required artifacts are done; an optional
    artifact whose weights are missing is skipped with a warning (``auto`` then chooses without it)."""
    from pvtt.models import ModelNotAvailable
    from pvtt.propagate import clip_artifacts
    from pvtt.stages.clip import DepthStage, MotionLoraStage, PointsRegistrationStage

    retry = config.runner.retry_failed
    stages = {"depth": lambda: DepthStage(ws, config.depth, retry, config.media.crf),
              "motion_lora": lambda: MotionLoraStage(ws, config.propagate, retry),
              "points_registration": lambda: PointsRegistrationStage(ws, config.propagate, retry)}
    for name, need in clip_artifacts(config.propagate).items():
        try:
            records = runner.run(stages[name](), clips, name)
        except ModelNotAvailable as exc:
            if need == "required":
                raise
            log.warning("%s: %s; propagate goes on without it (auto chooses among the other strategies)", name, exc)
            continue
        summary.add(records)
        if need == "required":
            clips = _passing(records, clips)
    return clips


def _own_runner(config: PipelineConfig, stack: contextlib.ExitStack) -> Runner:
    runner = make_runner(config.runner)
    if hasattr(runner, "close"):
        stack.callback(runner.close)
    return runner


def build(catalog_path: str | Path, out: str | Path, config: PipelineConfig, workspace: str | Path | None = None,
          runner: Runner | None = None) -> RunSummary:
    """Everything: prepare → analyze → erase (+ depth / motion LoRA), cutout (photo, else video) → pairing →
    synthesize → export."""
    from pvtt.export import export_dataset, pair_rows
    from pvtt.hands import make_hand_detector
    from pvtt.items import collect_products
    from pvtt.pairing import make_pair_items
    from pvtt.stages.clip import EraseStage
    from pvtt.stages.pair import SynthesizeStage
    from pvtt.stages.vlm import check_vlm_weights, vlm_instructions

    check_vlm_weights(config)  # a setting that needs the VLM and no weights: stop now, not after hours of work
    out = Path(out).expanduser().resolve()
    ws = Workspace(workspace or out / ".pvtt-workspace")
    retry = config.runner.retry_failed
    summary = RunSummary(ws.root)
    with ws.lock(), contextlib.ExitStack() as stack:
        runner = runner or _own_runner(config, stack)
        # 1. per template and per product photo
        _prepare_steps(ws, Path(catalog_path), config, runner, summary)
        # 2. per clip: perception and curation, the clean background, what the propagation strategy needs
        clips = _analyze_steps(ws, config, runner, summary)
        records = runner.run(EraseStage(ws, config.erase, retry, config.media.crf), clips, "erase")
        summary.add(records)
        clips = _passing(records, clips)
        clips = _strategy_steps(ws, config, runner, summary, clips)
        # 3. per product: the target image, cut out from the catalog photo, or from the product's own template
        #    clips where the photo was rejected (a lifestyle shot); pvtt.artifacts.target says which
        products = collect_products(ws)
        records = runner.run(CutoutStage(ws, config.cutout, retry, hands=config.hands), products, "cutout")
        summary.add(records)
        targets = {p.id for p in _passing(records, products)}
        if config.video_cutout.enabled:
            from_video = [p for p in products if p.id not in targets and p.template_id]
            hands = make_hand_detector(config.hands) if config.video_cutout.max_hand_fraction < 1 else None
            records = runner.run(VideoCutoutStage(ws, config.video_cutout, config.cutout, retry, hand_mask=hands,
                                                  salient=config.curate.salient),
                                 from_video, "video_cutout")
            summary.add(records)
            targets |= {p.id for p in _passing(records, from_video)}
        products = [p for p in products if p.id in targets]
        # 4. pairs: cross clips with products, then synthesize and judge each
        pairs = make_pair_items(ws, clips, products, config)
        if config.pairing.instruction == "vlm":  # Ditto-1M's two steps: a caption per clip, an instruction per pair
            pairs = vlm_instructions(ws, config, runner, summary, pairs)
        write_json(ws.root / "pairs.json", [{"pair_id": p.id, "clip_id": p.clip.id, "product_id": p.product.id,
                                             "difficulty": p.difficulty, "instruction": p.instruction}
                                            for p in pairs])
        records = runner.run(SynthesizeStage(ws, config.insert, config.propagate, config.judge, retry,
                                             config.media.crf, embed=config.embed, vlm=config.vlm), pairs,
                             "synthesize")
        summary.add(records)
        # 5. export
        rows = pair_rows(ws, pairs, config)
        stats = export_dataset(rows, out, settings_hash=settings_key(config), shard_size=config.export.shard_size,
                               include_rejected=config.export.include_rejected)
        summary.dataset = stats
    return summary
