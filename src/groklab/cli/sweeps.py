"""``groklab sweep``, ``groklab compare`` and ``groklab tune``: many runs into a store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from .. import rundir
from ..compare import format_table, load_comparison, run_comparison
from ..config import fields
from ..errors import ConfigError
from ..grid import load_sweep, parse_axis
from ..plots import compare as draw_compare
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
    counts = stoppable(run_sweep, configs, options["store"], **sweep_kwargs(options))
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
    **options,
):
    """Compare named variants over fractions and seeds (paper Figure 2, left): run them into a store (a run
    already finished is skipped, an interrupted one resumed), print the table and draw the chart."""
    comparison = load_comparison(file, _axes(options))
    if options["plan"]:
        show_plan(comparison.all_configs(), options)
        return
    store = options["store"]
    output = output or Path(store).with_suffix(".png")
    check_output(output)
    t0 = time.perf_counter()
    outcome = stoppable(run_comparison, comparison, store, **sweep_kwargs(options))
    if csv:
        outcome.table.to_csv(csv, index=False)
    counts = outcome.counts
    typer.echo(f"{len(comparison.variants)} variants, {counts['total']} runs: {counts['skipped']} already finished, "
               f"{counts['ran']} run now in {time.perf_counter() - t0:.0f} s" + busy(counts)
               + f"; {outcome_line(counts)}; store: {store}")
    typer.echo(format_table(outcome.table))
    save(draw_compare(outcome.results, title=outcome.saved.title), output)


@app.command()
def tune(
    file: Path = typer.Argument(..., help="tune TOML file: base config, [search] space, [tune] trials and seeds"),
    store: Path = typer.Option(..., help="SQLite store every trial's runs are written to"),
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
        show_plan(configs, {"store": store, "workers": workers, "executor": "local", "ensemble": None,
                            "runs_dir": None, "quiet": True, "threads": None}, repeats=tuning.trials)
        return
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
