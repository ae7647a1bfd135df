"""The ``groklab`` command: parse, call the library, print. A user's mistake is one line on stderr, exit 2."""

from __future__ import annotations

import inspect
import json
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Optional

import typer

# the usage-error base class of whichever click typer runs on (newer typers carry their own)
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")

from . import rundir
from .analysis.sharpness import SHARPNESS_EXAMPLES, SHARPNESS_ITERS
from .bars import pace
from .rundir import FINISHED
from .config import RunConfig, check_keys, parse_value, preset_names, read_toml
from .errors import ConfigError
from .loggers import check_available
from .runtime import parse_threads, resolve_device, set_threads

THREADS_HELP = ("CPU threads: auto (default: the cores other processes leave free, checked every few seconds) "
                "or a number")

app = typer.Typer(add_completion=False, no_args_is_help=False, rich_markup_mode=None,
                  pretty_exceptions_enable=False,
                  help="groklab: see grokking on a laptop, reproduce the paper, sweep it, look inside.")
tasks_app = typer.Typer(add_completion=False, rich_markup_mode=None, invoke_without_command=True,
                        help="List the tasks, or print one task's table.")
app.add_typer(tasks_app, name="tasks")

_PY_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "int | str": str}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def config_options(func=None, *, axes: bool = False):
    """Give ``func`` one ``--flag`` per RunConfig field (default None: only given flags override).

    With ``axes`` every flag takes a list ``a,b,c`` or a range ``start:stop:step``.
    """
    if func is None:
        return lambda f: config_options(f, axes=axes)
    sig = inspect.signature(func)
    params = [p for p in sig.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
    for f in fields(RunConfig):
        typ = str if axes else _PY_TYPES[f.type]
        doc = f.metadata["doc"]
        if "choices" in f.metadata and len(f.metadata["choices"]) <= 6:
            doc += f" [{'|'.join(f.metadata['choices'])}]"
        if axes:
            doc = f"axis: {doc}; values a,b,c or start:stop:step"
        if typ is bool:
            opt = typer.Option(None, f"{_flag(f.name)}/--no-{f.name.replace('_', '-')}", help=doc, show_default=False)
        else:
            opt = typer.Option(None, _flag(f.name), help=f"{doc} (default {f.default})", show_default=False)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=opt,
                                        annotation=Optional[typ]))
    func.__signature__ = sig.replace(parameters=params)
    return func


def read_config_file(path: Path) -> tuple[dict, str | None]:
    """A config file's fields and the preset it names: TOML (a ``preset = "..."`` line allowed) or a run's
    ``config.json``."""
    if str(path).endswith(".json"):
        try:
            values = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {str(path)!r} does not exist") from None
        except (OSError, ValueError) as e:
            raise ConfigError(f"config file {str(path)!r} is not valid JSON: {e}") from None
        if not isinstance(values, dict):
            raise ConfigError(f"config file {str(path)!r} must hold an object of config fields")
    else:
        values = read_toml(path)
    preset = values.pop("preset", None)
    if preset is not None and not isinstance(preset, str):
        raise ConfigError(f"config file {str(path)!r}: preset {preset!r} must be a name ({', '.join(preset_names())})")
    check_keys(values, f"config file {str(path)!r}")
    return values, preset


def build_config(preset: str | None, config: Path | None, flags: dict) -> RunConfig:
    """defaults <- preset (--preset, else the config file's, else paper) <- config file <- flags."""
    values, file_preset = read_config_file(config) if config else ({}, None)
    if preset and config:
        from .config import load_preset

        if set(load_preset(preset)) <= set(values):
            raise ConfigError(f"--preset {preset} would change nothing: config file {str(config)!r} sets every field "
                              "it sets (a run's config.json holds them all); leave out --preset, or give the fields "
                              "to change as flags")
    for k, v in flags.items():
        if v is not None:
            values[k] = parse_value(k, v) if k == "batch_size" else v  # the one flag typed "int | str"
    return RunConfig.from_dict(values, preset=preset or file_preset or "paper")


@app.command()
@config_options
def train(
    preset: Optional[str] = typer.Option(None, help=f"start from a preset [{'|'.join(preset_names())}] (default paper)"),
    config: Optional[Path] = typer.Option(None, help="TOML file of RunConfig fields (may name a preset = ...), "
                                                     "or a run's config.json"),
    out: Optional[Path] = typer.Option(None, help="run directory (default runs/<task>-...-<time>)"),
    force: bool = typer.Option(False, help="overwrite a run directory that holds a run"),
    resume: Optional[Path] = typer.Option(None, help="continue the run in this directory from its checkpoint"),
    quiet: bool = typer.Option(False, help="no progress bar"),
    threads: Optional[str] = typer.Option(None, help=THREADS_HELP),
    **flags,
):
    """Train one run. With no arguments: the paper's setup on x / y mod 97 with 50% of the data."""
    from .events import describe
    from .tasks import task_label
    from .train import train as run_train

    set_threads(parse_threads(threads))

    if resume is not None:
        given = [k for k, v in flags.items() if v is not None and k not in rundir.EXTENDABLE]
        if given or config or preset or out:
            raise ConfigError("--resume continues a run with its own config (only " +
                              ", ".join(_flag(k) for k in rundir.EXTENDABLE) + " may change); drop " +
                              ", ".join([_flag(k) for k in given] + [o for o, v in
                                        (("--config", config), ("--preset", preset), ("--out", out)) if v]))
        cfg = rundir.resume_config(resume, {k: v for k, v in flags.items() if v is not None})
        check_available(cfg.logger)
        if not rundir.has_checkpoint(resume):
            typer.echo(f"{resume} was stopped before its first checkpoint: starting it again from step 0", err=True)
        out = resume
    else:
        cfg = build_config(preset, config, flags)
        check_available(cfg.logger)
        resolve_device(cfg.device)  # refused before anything is written
        out = out or Path("runs") / rundir.run_name(cfg, stamp=time.strftime("%Y%m%d-%H%M%S"))
        rundir.prepare(out, cfg, force=force)
    typer.echo(f"{task_label(cfg)}, {cfg.train_fraction:.0%} of the data, {cfg.optimizer} "
               f"lr {cfg.lr:g} wd {cfg.weight_decay:g}, batch {cfg.resolved_batch_size}, budget {cfg.steps:,} "
               f"-> {out}", err=True)
    result = run_train(cfg, out, resume=resume is not None, progress=not quiet)
    s = result.summary
    typer.echo(f"{describe(s)}; final validation accuracy {s['final_val_acc']:.3f} "
               f"[{s['status']}, {s['steps_run']:,} steps, {s['wall_time_s']:.0f} s]")
    typer.echo(f"run directory: {out}")
    if s["status"] == "interrupted":
        typer.echo(f"resume with: groklab train --resume {out}")
        raise typer.Exit(130)


@app.command()
@config_options(axes=True)
def sweep(
    file: Optional[Path] = typer.Argument(None, help="sweep TOML file (base config and axes)"),
    store: Path = typer.Option(..., help="SQLite store the runs are written to"),
    workers: Optional[int] = typer.Option(None, help="local worker processes (default: the CPU cores)"),
    executor: str = typer.Option("local", help="local | ray"),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (default: start a local Ray)"),
    ensemble: Optional[int] = typer.Option(None, help="most runs trained together as one stacked model "
                                                     "(default 8 on CPU, 64 on CUDA)"),
    runs_dir: Optional[Path] = typer.Option(None, help="where run directories go (default STORE.runs/); with "
                                                       "--executor ray, a folder every node sees"),
    quiet: bool = typer.Option(False, help="no progress bar"),
    threads: Optional[str] = typer.Option(None, help=THREADS_HELP + "; per worker"),
    ship_runs: bool = typer.Option(False, help="Ray without a shared file system: the driver writes each run's "
                                               "directory from what its task sends back (a lost node's runs "
                                               "start again)"),
    **axes,
):
    """Run a sweep into a store; running it again skips finished runs and resumes interrupted ones."""
    from .grid import load_sweep, parse_axis
    from .sweep import outcome_line, run_sweep

    overrides = {k: parse_axis(k, v) for k, v in axes.items() if v is not None}
    if file is None and not overrides:
        raise ConfigError("give a sweep file or at least one axis (e.g. --seed 0,1,2)")
    configs = load_sweep(file, overrides).configs()
    counts = _stoppable(run_sweep, configs, store, workers=workers, executor=executor, address=address,
                        max_ensemble=ensemble, runs_root=runs_dir, progress=not quiet, threads=parse_threads(threads),
                        ship_runs=ship_runs)
    typer.echo(f"{counts['total']} runs: {counts['skipped']} already finished, {counts['ran']} run now"
               + _busy(counts) + f"; {outcome_line(counts)}; store: {store}")


@app.command()
@config_options(axes=True)
def compare(
    file: Path = typer.Argument(..., help="comparison TOML file: base config, axes, [variants]"),
    store: Path = typer.Option(..., help="SQLite store the runs are written to"),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="chart to write (default: the store's name with .png)"),
    workers: Optional[int] = typer.Option(None, help="local worker processes (default: the CPU cores)"),
    executor: str = typer.Option("local", help="local | ray"),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (default: start a local Ray)"),
    ensemble: Optional[int] = typer.Option(None, help="most runs trained together as one stacked model"),
    runs_dir: Optional[Path] = typer.Option(None, help="where run directories go (default STORE.runs/); with "
                                                       "--executor ray, a folder every node sees"),
    csv: Optional[Path] = typer.Option(None, help="also write the table to this CSV file"),
    quiet: bool = typer.Option(False, help="no progress bar"),
    threads: Optional[str] = typer.Option(None, help=THREADS_HELP + "; per worker"),
    ship_runs: bool = typer.Option(False, help="Ray without a shared file system: the driver writes each run's "
                                               "directory from what its task sends back (a lost node's runs "
                                               "start again)"),
    **axes,
):
    """Compare named variants over fractions and seeds (paper Figure 2, left): run them into a store (a run
    already finished is skipped, an interrupted one resumed), print the table and draw the chart."""
    from .compare import format_table, load_comparison, run_comparison
    from .grid import parse_axis
    from .plots import compare as draw
    from .sweep import outcome_line

    overrides = {k: parse_axis(k, v) for k, v in axes.items() if v is not None}
    comparison = load_comparison(file, overrides)
    output = output or Path(store).with_suffix(".png")
    _check_output(output)
    t0 = time.perf_counter()
    outcome = _stoppable(run_comparison, comparison, store, workers=workers, executor=executor, address=address,
                         max_ensemble=ensemble, runs_root=runs_dir, progress=not quiet,
                         threads=parse_threads(threads), ship_runs=ship_runs)
    if csv:
        outcome.table.to_csv(csv, index=False)
    counts = outcome.counts
    typer.echo(f"{len(comparison.variants)} variants, {counts['total']} runs: {counts['skipped']} already finished, "
               f"{counts['ran']} run now in {time.perf_counter() - t0:.0f} s" + _busy(counts)
               + f"; {outcome_line(counts)}; store: {store}")
    typer.echo(format_table(outcome.table))
    _save(draw(outcome.results, title=outcome.saved.title), output)


def _stoppable(fn, *args, said: str = "interrupted; running runs checkpointed, the same command resumes them",
               **kwargs):
    """``fn(...)`` (a sweep); Ctrl-C or SIGTERM, after the runs checkpointed: one line, exit 130 / 143."""
    try:
        return fn(*args, **kwargs)
    except KeyboardInterrupt as e:
        typer.echo(f"groklab: {said}", err=True)
        raise typer.Exit(128 + getattr(e, "signum", 2)) from None


def _busy(counts: dict) -> str:
    n = counts.get("busy", 0)
    return (f", {n} left to another process that is training them (run the command again once it ends)"
            if n else "")


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
):
    """Search hyper-parameters for the fewest updates to 99% validation accuracy (median over the seeds), with
    Optuna; every trial's runs go into the store, and the same command again replays finished trials."""
    from .tune import load_tuning, tune as run_tune

    tuning = load_tuning(file, trials)
    if output is not None:
        _check_folder(output)
    t0 = time.perf_counter()
    outcome = _stoppable(run_tune, tuning, store, workers=workers, progress=not quiet,
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


def _check_output(output: Path) -> None:
    """Refuse an image path that cannot be written before any work is done."""
    from matplotlib.backend_bases import FigureCanvasBase

    kinds = FigureCanvasBase.get_supported_filetypes()
    suffix = Path(output).suffix.lower().lstrip(".")
    if suffix not in kinds:
        raise ConfigError(f"output {str(output)!r} has no image type matplotlib writes; use one of: "
                          + ", ".join("." + k for k in sorted(kinds)))
    _check_folder(output)


def _check_folder(output: Path) -> None:
    if not Path(output).absolute().parent.is_dir():
        raise ConfigError(f"cannot write {str(output)!r}: folder {str(Path(output).parent)!r} does not exist")


def _save(fig, output: Path) -> None:
    try:
        fig.savefig(output, dpi=110)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot write {str(output)!r}: {e}") from None
    typer.echo(f"wrote {output}")


@app.command()
def runs(store: Path = typer.Option(..., help="SQLite store"),
         task: Optional[str] = typer.Option(None, help="only this task"),
         status: Optional[str] = typer.Option(None, help="only this status"),
         csv: Optional[Path] = typer.Option(None, help="export the (filtered) runs to this CSV file"),
         metrics_csv: Optional[Path] = typer.Option(None, help="export every metrics row to this CSV file")):
    """List the runs of a store."""
    from .queries import config_of, varying
    from .rundir import Status
    from .store import Store

    if status is not None and status not in {str(s) for s in Status}:
        raise ConfigError(f"status {status!r} is not allowed; allowed: {', '.join(str(s) for s in Status)}")
    for path in (csv, metrics_csv):
        if path is not None:
            _check_folder(path)
    st = Store(_existing(store), create=False)
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
    extra = varying(rows, exclude=("task", "modulus", "train_fraction"))  # the settings that differ
    typer.echo(f"{'id':>4} {'task':<12} {'p':>4} {'frac':>5} {'seed':>4} {'status':<16} {'steps':>8} "
               f"{'train99':>8} {'val99':>8} {'best_val':>8}" + "".join(f" {k:>12}" for k in extra))
    fmt = lambda v: "-" if v is None else f"{v}"  # noqa: E731
    for r in rows:
        best = "-" if r["best_val_acc"] is None else f"{r['best_val_acc']:.3f}"
        cfg = config_of(r)
        typer.echo(f"{r['id']:>4} {r['task']:<12} {r['modulus']:>4} {r['train_fraction']:>5.2f} {r['seed']:>4} "
                   f"{r['status']:<16} {fmt(r['steps_run']):>8} {fmt(r['step_train_acc_99']):>8} "
                   f"{fmt(r['step_val_acc_99']):>8} {best:>8}" + "".join(f" {fmt(cfg.get(k)):>12}" for k in extra))


def _existing(path: Path) -> Path:
    if not Path(path).exists():
        raise ConfigError(f"store {str(path)!r} does not exist")
    return path


def _figure_names() -> str:
    from .plots import FIGURES

    return "|".join(FIGURES)


@app.command()
def plot(kind: str = typer.Argument(..., help=f"which figure [{_figure_names()}]"),
         store: Path = typer.Option(..., help="SQLite store"),
         output: Path = typer.Option(..., "-o", "--output", help="image file to write (.png, .pdf, .svg)"),
         task: Optional[str] = typer.Option(None, help="only this task"),
         run_id: Optional[str] = typer.Option(None, help="curves: run ids, e.g. 1,4,7 (default: the first 12)"),
         where: Optional[list[str]] = typer.Option(None, help="only runs whose config has field=value, e.g. "
                                                              "--where weight_decay=1 (repeatable)")):
    """Draw a figure from a store. Runs that differ in a setting other than the seed are drawn apart (or, for
    model-wise, refused with the setting named): a figure never pools settings as if they were seeds."""
    from .plots import FIGURES, selection
    from .queries import where as where_rows
    from .store import Store

    if kind not in FIGURES:
        raise ConfigError(f"plot kind {kind!r} is not allowed; allowed: {', '.join(FIGURES)}")
    _check_output(output)
    st = Store(_existing(store), create=False)
    rows = where_rows([r for r in st.runs(task=task) if r["status"] in FINISHED], where or [])
    if not rows:
        raise ConfigError(f"store {str(store)!r} holds no finished runs" + (f" of task {task!r}" if task else "")
                          + (f" with {' and '.join(where)}" if where else ""))
    fig = FIGURES[kind].draw(selection(st, rows, _run_ids(run_id), f"store {str(store)!r}"))
    _save(fig, output)


@app.command()
def analyze(run: Optional[Path] = typer.Argument(None, help="run directory (or use --store and --run-id)"),
            store: Optional[Path] = typer.Option(None, help="SQLite store holding the run"),
            run_id: Optional[int] = typer.Option(None, help="with --store: the run's id (groklab runs lists them)"),
            out: Optional[Path] = typer.Option(None, help="folder to write (default RUN/analysis)"),
            sharpness_examples: int = typer.Option(SHARPNESS_EXAMPLES, help="training examples the sharpness is "
                                                                               "measured on"),
            sharpness_iters: int = typer.Option(SHARPNESS_ITERS, help="power iterations for the top Hessian "
                                                                       "eigenvalue"),
            tsne: bool = typer.Option(True, help="draw the t-SNE panel (scikit-learn; a few seconds)"),
            logger: Optional[str] = typer.Option(None, help="log the measures over the snapshots as analysis/* to "
                                                 "these loggers (default: the run's own, its config's logger)"),
            quiet: bool = typer.Option(False, "--quiet", help="no progress bar")):
    """Look inside a run: embeddings, Fourier progress measures, sharpness, softmax collapse, over its snapshots."""
    from .analysis import applicable, write_analysis
    from .rundir import load_config
    from .tasks import params_of

    if (run is None) == (store is None):
        raise ConfigError("give a run directory, or --store and --run-id (not both)")
    if store is not None:
        from .store import Store

        if run_id is None:
            raise ConfigError("--store needs --run-id (groklab runs --store S lists the ids)")
        run = Store(_existing(store), create=False).run_dir(run_id)
    if not run.is_dir() or not (run / "config.json").exists():
        raise ConfigError(f"{str(run)!r} is not a run directory (no config.json)")
    if sharpness_examples < 1:
        raise ConfigError(f"sharpness examples {sharpness_examples} is too small; must be >= 1")
    if sharpness_iters < 1:
        raise ConfigError(f"sharpness iterations {sharpness_iters} is too small; must be >= 1")
    cfg = load_config(run)
    logger = cfg.logger if logger is None else logger
    check_available(logger)
    app_ = applicable(cfg.task, params_of(cfg))
    typer.echo(f"{cfg.task} ({cfg.model}): " + ", ".join(f"{k.replace('_', ' ')} {'yes' if v else 'no'}"
                                                         for k, v in app_.items()), err=True)
    bars = []  # a bar over the snapshots, made at the first one (none for a run without snapshots)

    def tick(i: int, n: int) -> None:
        if quiet or n < 2:
            return
        if not bars:
            from tqdm.auto import tqdm

            bars.append(tqdm(total=n, unit="snapshot", dynamic_ncols=True, **pace()))
        bars[0].update(1)

    result = write_analysis(run, out, sharpness_examples=sharpness_examples, use_tsne=tsne, progress=tick,
                            sharpness_iters=sharpness_iters)
    for bar in bars:
        bar.close()
    if logger != "none":
        from .loggers import Loggers

        lg = Loggers(logger, run, cfg.to_dict())  # appends to what training logged
        try:
            lg.log_analysis(result["snapshots"])
        finally:
            lg.close()
    if result["n_snapshots"] == 0:
        typer.echo("no snapshots: only the final weights were analysed; train with --snapshots 40 for the "
                   "measures over time", err=True)
    last = result["snapshots"][-1]
    keys = result["key_frequencies"]
    typer.echo(f"step {last['step']:,}: train acc {last['train_acc']:.3f}, val acc {last['val_acc']:.3f}"
               + (f", key frequencies {keys}, Fourier Gini {result['fourier_gini']:.2f}" if app_["fourier"] else "")
               + f", sharpness {last['sharpness']:.3g}")
    if "multiplicative" in result:
        m = result["multiplicative"]
        typer.echo(f"multiplicative (generator {m['generator']}): key frequencies {m['key_frequencies']}, "
                   f"Gini {m['gini']:.2f}; {m['zero_residue']}")
    if "irreps" in result:
        r = result["irreps"]
        typer.echo(f"irreps of {r['group']}: key {', '.join(r['key_irreps'])}, Gini {r['gini']:.2f}")
    if "parity" in result:
        q = result["parity"]
        share = "-" if q["relevant_share"] is None else f"{q['relevant_share']:.3f}"
        typer.echo(f"parity of bits {q['relevant_bits']}: their first-layer weight share {share}, Walsh "
                   f"coefficient {q['walsh_parity']:.3f}")
    ph = {k: v for k, v in result["phases"].items() if v}
    if ph:
        typer.echo("phases: " + "; ".join(f"{k.replace('_', ' ')} {a:,}-{b:,}" for k, (a, b) in ph.items()))
    typer.echo(f"wrote {', '.join(result['files'])} to {out or run / 'analysis'}")


@app.command()
def report(run: Optional[Path] = typer.Argument(None, help="run directory (or use --store)"),
           store: Optional[Path] = typer.Option(None, help="SQLite store: the report of all its runs"),
           output: Path = typer.Option(..., "-o", "--output", help="folder to write index.html and figures/ to"),
           runs: Optional[str] = typer.Option(None, help="with --store: run ids whose curves, double descent and "
                                                         "analyses the report shows, e.g. 1,4"),
           analyses: bool = typer.Option(True, help="analyse the chosen runs' weights (groklab analyze's figures)"),
           sharpness_examples: int = typer.Option(SHARPNESS_EXAMPLES, help="training examples the sharpness "
                                                                              "is measured on")):
    """A self-contained HTML report (opens from the file system, no server, no network): the runs table, the
    figures the store has the runs for, and chosen runs' analyses; every figure as PNG and SVG."""
    from .report import run_report, store_report

    if (run is None) == (store is None):
        raise ConfigError("give a run directory, or --store (not both)")
    if sharpness_examples < 1:
        raise ConfigError(f"sharpness examples {sharpness_examples} is too small; must be >= 1")
    if store is not None:
        written = store_report(store, output, _run_ids(runs), analyses, sharpness_examples)
    else:
        if runs:
            raise ConfigError("--runs chooses runs of a --store; a run directory's report is that run's")
        written = run_report(run, output, analyses, sharpness_examples)
    typer.echo(f"wrote {written / 'index.html'}")


@app.command()
def export(run: Path = typer.Argument(..., help="run directory"),
           to: str = typer.Option(..., help="format [safetensors|transformer-lens]"),
           out: Path = typer.Argument(..., help="folder to write (new, or empty)"),
           step: Optional[int] = typer.Option(None, help="a snapshot's step (default: the final weights)")):
    """Export a run's weights: safetensors with a JSON config (loadable back into groklab), or a
    TransformerLens HookedTransformer (norm pre or none)."""
    from .export import export as run_export

    written = run_export(run, to, out, step)
    typer.echo(f"wrote {', '.join(sorted(p.name for p in written.iterdir()))} to {written}")


def _run_ids(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(i) for i in text.split(",") if i.strip()]
    except ValueError:
        raise ConfigError(f"run id list {text!r} is not allowed; give integers like 1,4,7") from None


@tasks_app.callback()
def tasks_list(ctx: typer.Context,
               modulus: int = typer.Option(97, help="modulus used for the table sizes")):
    """List the tasks: id, equation, table size (at the modulus given, for the modular tasks)."""
    if ctx.invoked_subcommand is not None:
        return
    from .tasks import all_tasks, check_modulus, n_examples

    rows = []
    for t in all_tasks().values():
        if t.fields:
            size = "set by its options"
        else:
            try:
                check_modulus(t.id, modulus)
                size = f"{n_examples(t.id, modulus):,}"
            except ConfigError:
                size = "needs a prime modulus"
        rows.append((t.id, t.equation, size))
    w_id, w_eq = (max(len(r[i]) for r in rows) for i in (0, 1))
    typer.echo(f"{'id':<{w_id}}  {'equation':<{w_eq}}  table size (p = {modulus})")
    for tid, equation, size in rows:
        typer.echo(f"{tid:<{w_id}}  {equation:<{w_eq}}  {size}")


@tasks_app.command("show")
def tasks_show(task: str = typer.Argument(..., help="task id"),
               modulus: int = typer.Option(97, help="modulus p (ignored by the S5, group and parity tasks)"),
               expression: Optional[str] = typer.Option(None, help="task custom: the formula in x and y"),
               group: Optional[str] = typer.Option(None, help="task group: S3-S6, A4-A6, D3-D30, Z<n>, products"),
               group_op: Optional[str] = typer.Option(None, help="task group: mul | conj"),
               n_bits: Optional[int] = typer.Option(None, help="task parity: bits per string"),
               parity_k: Optional[int] = typer.Option(None, help="task parity: relevant bits"),
               n_examples: Optional[int] = typer.Option(None, help="task parity: strings"),
               seed: Optional[int] = typer.Option(None, help="task parity: the seed the strings are drawn from")):
    """Print a task's table as CSV with header x,y,z (a group's elements written readably, a parity example's
    x its bit string)."""
    from .tasks import table_csv

    given = {"expression": expression, "group": group, "group_op": group_op, "n_bits": n_bits,
             "parity_k": parity_k, "n_examples": n_examples, "seed": seed}
    cfg = RunConfig.from_dict({"task": task, "modulus": modulus, "model": "mlp",
                               **{k: v for k, v in given.items() if v is not None}})
    sys.stdout.write(table_csv(cfg.task, cfg.modulus, **cfg.task_params))


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; ConfigError and usage errors become one line and exit 2."""
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="groklab")
        if isinstance(rv, int):
            return rv
    except ConfigError as e:
        print(f"groklab: error: {e}", file=sys.stderr)
        return 2
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        print("groklab: aborted", file=sys.stderr)
        return 130
    except _ClickException as e:
        print(f"groklab: error: {e.format_message()}".replace("\n", " "), file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt as e:  # runs were checkpointed and marked interrupted on the way out
        print("groklab: interrupted; the same command continues where it stopped (train: --resume RUN)",
              file=sys.stderr)
        return 128 + getattr(e, "signum", 2)  # 130 for SIGINT, 143 for SIGTERM
    return 0


if __name__ == "__main__":
    sys.exit(main())
