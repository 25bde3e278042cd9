"""The ``pvtt`` command: parses arguments, builds a validated config, calls one library function.

Exit codes: 0 the run finished (items may still have failed: see ``pvtt status``), 2 bad usage,
config or catalog, 3 the workspace is in use by another pvtt process.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from pvtt import __version__
from pvtt.config import PipelineConfig, dump_config, load_config
from pvtt.errors import BadInput, ConfigError, WorkspaceBusy
from pvtt.store import Workspace
from pvtt.types import Status

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Build Product Video Template Transfer datasets.")
config_app = typer.Typer(no_args_is_help=True, help="Inspect the configuration.")
app.add_typer(config_app, name="config")
console = Console()
err_console = Console(stderr=True)
log = logging.getLogger("pvtt")

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config file.")]
SetOpt = Annotated[
    Optional[list[str]], typer.Option("--set", "-s", help="Override a setting: section.key=value (repeatable).")
]
WorkersOpt = Annotated[Optional[int], typer.Option("--workers", "-w", help="Worker processes (runner.workers).")]
RunnerOpt = Annotated[Optional[str], typer.Option("--runner", help="local or ray (runner.kind).")]
RayAddressOpt = Annotated[
    Optional[str], typer.Option("--ray-address", help="auto or ray://head:10001 (runner.ray.address).")
]


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    handler = RichHandler(console=err_console, show_path=False, show_time=False, markup=False)
    logging.basicConfig(level=level, handlers=[handler], format="%(message)s", force=True)


def _fail(message: str, code: int) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _config(config: Path | None, overrides: list[str] | None, workers: int | None = None,
            no_progress: bool = False, runner: str | None = None, ray_address: str | None = None) -> PipelineConfig:
    extra = list(overrides or [])
    if runner is not None:
        extra.append(f"runner.kind={runner}")
    if ray_address is not None:
        extra.append(f"runner.ray.address={ray_address}")
    if workers is not None:
        extra.append(f"runner.workers={workers}")
    if no_progress:
        extra.append("runner.progress=false")
    try:
        return load_config(config, extra)
    except ConfigError as exc:
        _fail(str(exc), 2)
        raise  # unreachable


@app.callback()
def _main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
) -> None:
    _setup_logging(verbose, quiet)


@app.command()
def version() -> None:
    """Print pvtt's version."""
    console.print(__version__)


@app.command()
def prepare(
    catalog: Annotated[Path, typer.Option("--catalog", help="PVTT layout folder, plain folder, or CSV/JSONL manifest.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Workspace directory (created if missing).")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workers: WorkersOpt = None,
    runner: RunnerOpt = None,
    ray_address: RayAddressOpt = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")] = False,
) -> None:
    """Ingest a catalog, split templates into shots, normalize them into clips, store product photos."""
    from pvtt.pipeline import prepare as run_prepare

    cfg = _config(config, set_, workers, no_progress, runner, ray_address)
    try:
        summary = run_prepare(catalog, out, cfg)
    except (BadInput, ConfigError, WorkspaceBusy) as exc:
        _fail(str(exc), 3 if isinstance(exc, WorkspaceBusy) else 2)
    _print_counts({stage: dict(c) for stage, c in summary.counts.items()}, "this run")
    _print_problems(summary.problems)
    console.print(f"workspace: {summary.workspace}  (details: pvtt status {summary.workspace})")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the rendered catalog and the workspace.")] = Path(
        "pvtt-demo"),
    count: Annotated[int, typer.Option(help="Templates to render.")] = 4,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workers: WorkersOpt = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")] = False,
) -> None:
    """Render a small catalog (templates + product photos) and run the pipeline on it."""
    from pvtt.demo import make_demo_catalog
    from pvtt.pipeline import prepare as run_prepare

    cfg = _config(config, set_, workers, no_progress)
    catalog = out / "catalog"
    if not (catalog / "annotations" / "metadata.json").is_file():
        make_demo_catalog(catalog, count=count)
        log.info("rendered %d demo templates and product photos into %s", count, catalog)
    try:
        summary = run_prepare(catalog, out / "workspace", cfg)
    except (ConfigError, WorkspaceBusy) as exc:
        _fail(str(exc), 3 if isinstance(exc, WorkspaceBusy) else 2)
    _print_counts({stage: dict(c) for stage, c in summary.counts.items()}, "demo")
    _print_problems(summary.problems)
    console.print(f"catalog: {catalog}\nworkspace: {summary.workspace}")


@app.command()
def status(
    workspace: Annotated[Path, typer.Argument(help="Workspace directory.")],
    all_: Annotated[bool, typer.Option("--all", help="List rejected items too, not only failures.")] = False,
) -> None:
    """Counts per stage and the failed items with their reasons."""
    ws = Workspace(workspace)
    if not (ws.root / "records").is_dir():
        _fail(f"{ws.root} is not a pvtt workspace (no records/ folder)", 2)
    counts = {}
    problems = []
    for stage in ws.stages():
        records = ws.records(stage)
        counts[stage] = {s.value: sum(r.status is s for r in records) for s in Status}
        problems += [r for r in records if r.status is Status.FAILED or (all_ and r.status is Status.REJECTED)]
    _print_counts(counts, str(ws.root))
    _print_problems(problems)


def _print_counts(counts: dict[str, dict[str, int]], title: str) -> None:
    table = Table(title=f"pvtt: {title}")
    table.add_column("stage")
    for status in Status:
        table.add_column(status.value, justify="right")
    for stage, row in counts.items():
        table.add_row(stage, *(str(row.get(s.value, 0)) for s in Status))
    console.print(table)


def _print_problems(records: list) -> None:
    if not records:
        return
    table = Table(title="not done")
    for column in ("stage", "item", "status", "reason"):
        table.add_column(column, overflow="fold")
    for r in records:
        table.add_row(r.stage, r.item_id, r.status.value, r.reason)
    console.print(table)


@config_app.command("show")
def config_show(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Print the effective config (defaults, then the file, then --set) as YAML."""
    console.print(dump_config(_config(config, set_)), end="", highlight=False, markup=False)


@config_app.command("reference")
def config_reference_cmd() -> None:
    """Print every setting with its default and meaning, as a Markdown table."""
    from pvtt.config import config_reference

    console.print(config_reference(), end="", highlight=False, markup=False, soft_wrap=True)


from pvtt.estimate import estimate_command  # noqa: E402  (registered as `pvtt estimate`)

app.command("estimate")(estimate_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
