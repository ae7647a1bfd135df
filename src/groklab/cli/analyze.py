"""``groklab analyze``: look inside a run, every analysis that applies over its snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..analysis import ANALYSES
from ..analysis.progress import applicable, describe, options, write_analysis
from ..bars import pace
from ..errors import ConfigError
from ..lazy import lazy
from ..loggers import Loggers, check_available
from ..rundir import load_config
from ..store import Store
from .app import analysis_note, app, existing, given, with_fields

tqdm_auto = lazy("tqdm.auto")


@app.command()
@with_fields(lambda: ANALYSES.fields().values(), note=analysis_note)
def analyze(run: Optional[Path] = typer.Argument(None, help="run directory (or use --store and --run-id)"),
            store: Optional[Path] = typer.Option(None, help="SQLite store holding the run"),
            run_id: Optional[int] = typer.Option(None, help="with --store: the run's id (groklab runs lists them)"),
            out: Optional[Path] = typer.Option(None, help="folder to write (default RUN/analysis)"),
            logger: Optional[str] = typer.Option(None, help="log the measures over the snapshots as analysis/* to "
                                                 "these loggers (default: the run's own, its config's logger)"),
            quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
            **settings):
    """Look inside a run: every analysis that applies to it (embeddings, Fourier and group structure, parity's
    hidden progress, sharpness, softmax collapse, and the plugins'), over its snapshots."""
    if (run is None) == (store is None):
        raise ConfigError("give a run directory, or --store and --run-id (not both)")
    if store is not None:
        if run_id is None:
            raise ConfigError("--store needs --run-id (groklab runs --store S lists the ids)")
        run = Store(existing(store), create=False).run_dir(run_id)
    if not run.is_dir() or not (run / "config.json").exists():
        raise ConfigError(f"{str(run)!r} is not a run directory (no config.json)")
    opts = options(given(settings, ANALYSES.fields()))
    cfg = load_config(run)
    logger = cfg.logger if logger is None else logger
    check_available(logger)
    chosen = {a.name for a in applicable(cfg)}
    typer.echo(f"{cfg.task} ({cfg.model}): " + ", ".join(f"{name} {'yes' if name in chosen else 'no'}"
                                                         for name in ANALYSES), err=True)
    bars = []  # a bar over the snapshots, made at the first one (none for a run without snapshots)

    def tick(i: int, n: int) -> None:
        if quiet or n < 2:
            return
        if not bars:
            bars.append(tqdm_auto.tqdm(total=n, unit="snapshot", dynamic_ncols=True, **pace()))
        bars[0].update(1)

    result = write_analysis(run, out, progress=tick, **opts)
    for bar in bars:
        bar.close()
    if logger != "none":
        lg = Loggers(logger, run, cfg.to_dict())  # appends to what training logged
        try:
            lg.log_analysis(result["snapshots"])
        finally:
            lg.close()
    if result["n_snapshots"] == 0:
        typer.echo("no snapshots: only the final weights were analysed; train with --snapshots 40 for the "
                   "measures over time", err=True)
    for line in describe(result):
        typer.echo(line)
    typer.echo(f"wrote {', '.join(result['files'])} to {out or run / 'analysis'}")
