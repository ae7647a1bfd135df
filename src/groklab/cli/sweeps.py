"""``groklab sweep``, ``groklab compare`` and ``groklab tune``: many runs into a store."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Optional

import typer

from .. import rundir
from ..analysis.progress import measure_keys, series_of
from ..compare import format_table, load_comparison, run_comparison
from ..config import fields
from ..errors import ConfigError
from ..grid import load_sweep, parse_axis
from ..plots import compare as draw_compare
from ..plots import measure_over as draw_measure
from ..sweep import outcome_line, run_sweep
from ..tune import load_tuning
from ..tune import tune as run_tune
from .app import (app, busy, check_folder, check_output, save, show_plan, stoppable, sweep_kwargs, sweep_options,
                  with_fields)


def _axes(values: dict) -> dict[str, list]:
    """The command-line axes given (``--seed 0,1,2``), parsed."""
    table = fields()
    return {k: parse_axis(k, v) for k, v in values.items() if k in table and v is not None}


@app.command()
@sweep_options
@with_fields(lambda: fields().values(), axes=True)
def sweep(file: Optional[Path] = typer.Argument(None, help="sweep TOML file (base config and axes)"), **options):
    """Run a sweep into a store; running it again skips finished runs and resumes interrupted ones."""
    overrides = _axes(options)
    if file is None and not overrides:
        raise ConfigError("give a sweep file or at least one axis (e.g. --seed 0,1,2)")
    configs = load_sweep(file, overrides).configs()
    if options["plan"]:
        show_plan(configs, options)
        return
    kw = sweep_kwargs(options)
    counts = stoppable(run_sweep, configs, options["store"], **kw)
    typer.echo(f"{counts['total']} runs: {counts['skipped']} already finished, {counts['ran']} run now"
               + busy(counts) + f"; {outcome_line(counts)}; store: {options['store']}")


@app.command()
@sweep_options
@with_fields(lambda: fields().values(), axes=True)
def compare(
    file: Path = typer.Argument(..., help="comparison TOML file: base config, axes, [variants]"),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="chart to write (default: the store's name with .png)"),
    csv: Optional[Path] = typer.Option(None, help="also write the table to this CSV file"),
    measure: Optional[str] = typer.Option(None, help="also draw this measure over every run's snapshots, one colour "
                                          "per variant (llc, mean_effective_rank, compressed_bytes, fourier_gini, "
                                          "sharpness, val_loss, ...; measured by its analysis where analysis.json "
                                          "lacks it) into OUTPUT-MEASURE.png; the runs need snapshots"),
    **options,
):
    """Compare named variants over fractions and seeds (paper Figure 2, left): run them into a store (a run
    already finished is skipped, an interrupted one resumed), print the table and draw the chart."""
    comparison = load_comparison(file, _axes(options))
    if measure is not None:
        _check_measure(measure, comparison.all_configs())
    if options["plan"]:
        show_plan(comparison.all_configs(), options)
        return
    kw = sweep_kwargs(options)
    store = options["store"]
    output = output or Path(store).with_suffix(".png")
    check_output(output)
    t0 = time.perf_counter()
    outcome = stoppable(run_comparison, comparison, store, **kw)
    if csv:
        outcome.table.to_csv(csv, index=False)
    counts = outcome.counts
    typer.echo(f"{len(comparison.variants)} variants, {counts['total']} runs: {counts['skipped']} already finished, "
               f"{counts['ran']} run now in {time.perf_counter() - t0:.0f} s" + busy(counts)
               + f"; {outcome_line(counts)}; store: {store}")
    typer.echo(format_table(outcome.table))
    save(draw_compare(outcome.results, title=outcome.saved.title), output)
    if measure is not None:
        path = output.with_name(f"{output.stem}-{measure}.png")
        series = {name: [(r, series_of(r["run_dir"], measure)) for r in rows if r.get("run_dir")]
                  for name, rows in outcome.results.items()}
        save(draw_measure(series, measure, title=outcome.saved.title), path)


def _check_measure(measure: str, configs) -> None:
    """A measure compare can draw, over runs that keep snapshots: refused before anything trains."""
    keys = measure_keys()
    if measure not in keys:
        raise ConfigError(f"--measure {measure!r} is not a measure; allowed: {', '.join(keys)}")
    if any(c.snapshots == 0 for c in configs):
        raise ConfigError(f"--measure {measure} needs snapshots: set snapshots = 20 (say) in the file's [base]")


@app.command()
def tune(
    file: Path = typer.Argument(..., help="tune TOML file: base config, [search] space, [tune] trials and seeds"),
    store: Optional[Path] = typer.Option(None, help="SQLite store every trial's runs are written to (required but "
                                                    "with --plan)"),
    trials: Optional[int] = typer.Option(None, help="number of trials (default: the file's, else 20)"),
    workers: Optional[int] = typer.Option(None, help="local worker processes (default: the CPU cores)"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="write the best config as TOML here"),
    force: bool = typer.Option(False, help="with -o when no trial reached 99%: write the trial with the highest "
                                           "best validation accuracy"),
    quiet: bool = typer.Option(False, help="no progress bar"),
    plan: bool = typer.Option(False, help="say how many runs the trials train and how long they would take on this "
                                          "machine (the first trial's group calibrated); write nothing"),
):
    """Search hyper-parameters for the fewest updates to 99% validation accuracy (median over the seeds), with
    Optuna; every trial's runs go into the store, and the same command again replays finished trials."""
    tuning = load_tuning(file, trials)
    if plan:
        first = {k: v for k, v in (tuning.start or {}).items() if k in tuning.search}
        configs = [tuning.config({**tuning.corner(), **first}, s) for s in tuning.seeds]
        show_plan(configs, {"plan": True, "store": store, "workers": workers, "executor": "local", "ensemble": None,
                            "runs_dir": None, "quiet": True, "threads": None}, repeats=tuning.trials)
        return
    if store is None:
        raise ConfigError("--store is required: the SQLite store every trial's runs are written to (only --plan "
                          "goes without one)")
    if output is not None:
        check_folder(output)
    t0 = time.perf_counter()
    outcome = stoppable(run_tune, tuning, store, workers=workers, progress=not quiet,
                        said="tuning interrupted; the same command replays the finished trials and goes on")
    typer.echo(outcome.table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    typer.echo(f"{tuning.trials} trials x {len(tuning.seeds)} seeds in {time.perf_counter() - t0:.0f} s")
    typer.echo(outcome.describe())
    if output is None:
        return
    chosen = outcome.choice(force)
    if chosen is None:
        typer.echo(f"{output} not written: nothing reached the target (--force writes the closest trial)")
        return
    rundir.atomic_write(Path(output), tuning.config(chosen, tuning.seeds[0]).to_toml().encode())
    typer.echo(f"wrote {output}")


def _bundled_configs(entry) -> tuple[list, int]:
    """A bundled file's distinct runs and how many times they train (a tune file: its trials, with the first
    trial's configs standing for every trial's)."""
    if entry.kind == "sweep":
        return load_sweep(entry.name).configs(), 1
    if entry.kind == "compare":
        return load_comparison(entry.name).all_configs(), 1
    tuning = load_tuning(entry.name)
    first = {k: v for k, v in (tuning.start or {}).items() if k in tuning.search}
    return [tuning.config({**tuning.corner(), **first}, s) for s in tuning.seeds], tuning.trials


def first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence (not "(x . y)" or "et al. 2022")."""
    match = re.search(r"(?<=[a-z0-9)\]])\.\s+(?=[A-Z])", text)
    return text[: match.start() + 1] if match else text


@app.command("sweeps")
def sweeps_list(
    plan: bool = typer.Option(False, help="add each file's wall-time estimate on this machine (each group shape "
                                          "calibrated: a few minutes in all on 2 CPU cores)"),
    workers: Optional[int] = typer.Option(None, help="with --plan: local worker processes (default: the cores)"),
):
    """The sweep, comparison and tune files that ship with groklab: each command takes one by name
    (groklab sweep quick), from a checkout or an installed wheel."""
    from .. import bundled
    from ..plan import plan as plan_of

    rows, known = [], {}
    for name in bundled.names():
        entry = bundled.describe(name)
        configs, repeats = _bundled_configs(entry)
        row = [name, entry.command, f"{len(configs) * repeats:,}", f"{repeats * sum(c.steps for c in configs):,}"]
        if plan:
            row.append(plan_of(configs, None, workers, repeats=repeats, known=known).estimate())
        rows.append((row, entry.description))
    head = ["name", "command", "runs", "updates"] + (["estimate"] if plan else [])
    widths = [max(len(r[i]) for r in [head] + [r for r, _ in rows]) for i in range(len(head))]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
    for row, description in rows:
        typer.echo("  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))))
        typer.echo(f"    {first_sentence(description)}")
    if plan:
        typer.echo("estimate: every run training its whole budget, on this machine (groklab sweep NAME --plan says "
                   "more); nothing written")
