"""``groklab runs``, ``groklab plot`` and ``groklab report``: what a store holds, drawn and written up."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..analysis import ANALYSES
from ..errors import ConfigError
from ..figures import FIGURES, selection
from ..queries import config_of, modulus_of, task_words, varying
from ..queries import where as where_rows
from ..report import run_report, store_report
from ..rundir import FINISHED, Status
from ..store import Store
from ..tasks import TASKS
from .app import analysis_note, app, check_folder, check_output, existing, given, run_ids, save, with_fields


@app.command()
def runs(store: Path = typer.Option(..., help="SQLite store"),
         task: Optional[str] = typer.Option(None, help="only this task"),
         status: Optional[str] = typer.Option(None, help="only this status"),
         csv: Optional[Path] = typer.Option(None, help="export the (filtered) runs to this CSV file"),
         metrics_csv: Optional[Path] = typer.Option(None, help="export every metrics row to this CSV file")):
    """List the runs of a store."""
    if status is not None and status not in {str(s) for s in Status}:
        raise ConfigError(f"status {status!r} is not allowed; allowed: {', '.join(str(s) for s in Status)}")
    for path in (csv, metrics_csv):
        if path is not None:
            check_folder(path)
    st = Store(existing(store), create=False)
    st.mark_stale()
    rows = st.runs(task=task, status=status)
    try:
        if csv:
            frame = st.to_dataframe()
            frame[frame["id"].isin([r["id"] for r in rows])].to_csv(csv, index=False)
        if metrics_csv:
            st.export_csv(metrics_csv, metrics=True)
    except OSError as e:
        raise ConfigError(f"cannot write {str(e.filename or csv or metrics_csv)!r}: {e.strerror or e}") from None
    said = {f for t in TASKS.values() if t.describe is not None for f in t.params}  # in the task column
    extra = [k for k in varying(rows, exclude=("task", "modulus", "train_fraction")) if k not in said]
    words = {r["id"]: task_words(r) for r in rows}
    w = max([12, *(len(v) for v in words.values())])
    typer.echo(f"{'id':>4} {'task':<{w}} {'p':>4} {'frac':>5} {'seed':>4} {'status':<16} {'steps':>8} "
               f"{'train99':>8} {'val99':>8} {'best_val':>8}" + "".join(f" {k:>12}" for k in extra))
    fmt = lambda v: "-" if v is None else f"{v}"  # noqa: E731
    for r in rows:
        best = "-" if r["best_val_acc"] is None else f"{r['best_val_acc']:.3f}"
        cfg = config_of(r)
        typer.echo(f"{r['id']:>4} {words[r['id']]:<{w}} {fmt(modulus_of(r)):>4} {r['train_fraction']:>5.2f} "
                   f"{r['seed']:>4} {r['status']:<16} {fmt(r['steps_run']):>8} {fmt(r['step_train_acc_99']):>8} "
                   f"{fmt(r['step_val_acc_99']):>8} {best:>8}" + "".join(f" {fmt(cfg.get(k)):>12}" for k in extra))


@app.command()
def plot(kind: str = typer.Argument(..., help=f"which figure [{'|'.join(FIGURES)}]"),
         store: Path = typer.Option(..., help="SQLite store"),
         output: Path = typer.Option(..., "-o", "--output", help="image file to write (.png, .pdf, .svg)"),
         task: Optional[str] = typer.Option(None, help="only this task"),
         run_id: Optional[str] = typer.Option(None, help="curves: run ids, e.g. 1,4,7 (default: the first 12)"),
         where: Optional[list[str]] = typer.Option(None, help="only runs whose config has field=value, e.g. "
                                                              "--where weight_decay=1 (repeatable)")):
    """Draw a figure from a store. Runs that differ in a setting other than the seed are drawn apart (or, for
    model-wise, refused with the setting named): a figure never pools settings as if they were seeds."""
    if kind not in FIGURES:
        raise ConfigError(f"plot kind {kind!r} is not allowed; allowed: {', '.join(FIGURES)}")
    check_output(output)
    st = Store(existing(store), create=False)
    rows = where_rows([r for r in st.runs(task=task) if r["status"] in FINISHED], where or [])
    if not rows:
        raise ConfigError(f"store {str(store)!r} holds no finished runs" + (f" of task {task!r}" if task else "")
                          + (f" with {' and '.join(where)}" if where else ""))
    fig = FIGURES[kind].draw(selection(st, rows, run_ids(run_id), f"store {str(store)!r}"))
    save(fig, output)


@app.command()
@with_fields(lambda: ANALYSES.fields().values(), note=analysis_note)
def report(run: Optional[Path] = typer.Argument(None, help="run directory (or use --store)"),
           store: Optional[Path] = typer.Option(None, help="SQLite store: the report of all its runs"),
           output: Path = typer.Option(..., "-o", "--output", help="folder to write index.html and figures/ to"),
           runs: Optional[str] = typer.Option(None, help="with --store: run ids whose curves, double descent and "
                                                         "analyses the report shows, e.g. 1,4"),
           analyses: bool = typer.Option(True, help="analyse the chosen runs' weights (groklab analyze's figures; "
                                                    "its settings as groklab analyze takes them)"),
           **settings):
    """A self-contained HTML report (opens from the file system, no server, no network): the runs table, the
    figures the store has the runs for, and chosen runs' analyses; every figure as PNG and SVG."""
    if (run is None) == (store is None):
        raise ConfigError("give a run directory, or --store (not both)")
    opts = given(settings, ANALYSES.fields())  # checked by the report, before anything is read or written
    if store is not None:
        written = store_report(store, output, run_ids(runs), analyses, **opts)
    else:
        if runs:
            raise ConfigError("--runs chooses runs of a --store; a run directory's report is that run's")
        written = run_report(run, output, analyses, **opts)
    typer.echo(f"wrote {written / 'index.html'}")
