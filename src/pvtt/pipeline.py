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
from pvtt.config import PipelineConfig, dump_config
from pvtt.normalize import NormalizeStage
from pvtt.products import ProductStage
from pvtt.runners.factory import Runner, make_runner
from pvtt.store import Workspace, write_json, write_text
from pvtt.types import ItemRecord, Status

log = logging.getLogger("pvtt")


@dataclass
class RunSummary:
    """Counts per stage of one run, plus the failures and rejections with their reasons."""

    workspace: Path
    counts: dict[str, Counter] = field(default_factory=dict)
    problems: list[ItemRecord] = field(default_factory=list)

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
    retry = config.runner.retry_failed
    summary = RunSummary(ws.root)
    with ws.lock(), contextlib.ExitStack() as stack:
        if runner is None:
            runner = make_runner(config.runner)
            if hasattr(runner, "close"):
                stack.callback(runner.close)
        write_text(ws.root / "config.yaml", f"# pvtt {__version__}: effective config of the last run\n"
                   + dump_config(config))
        # 1. ingest
        catalog = load_catalog(catalog_path)
        summary.add(_record_catalog(ws, catalog, Path(catalog_path)))
        log.info("catalog %s (%s layout): %d templates, %d products, %d problems", catalog.root, catalog.layout,
                 len(catalog.templates), len(catalog.products), len(catalog.problems))
        # 2. shots + normalize, one decoding pass per template
        normalize = NormalizeStage(ws, config.shots, config.normalize, config.media, retry)
        summary.add(runner.run(normalize, catalog.templates, "normalize"))
        # 3. product photos
        products = ProductStage(ws, config.media, retry)
        summary.add(runner.run(products, catalog.products, "products"))
    return summary
