"""The ``groklab`` command: parse, call the library, print. A user's mistake is one line on stderr, exit 2."""

from __future__ import annotations

import inspect
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Optional

import typer

# the usage-error base class of whichever click typer runs on (newer typers carry their own)
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")

from . import rundir
from .config import RunConfig, check_keys, preset_names, read_toml
from .errors import ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=False, rich_markup_mode=None,
                  pretty_exceptions_enable=False,
                  help="groklab: see grokking on a laptop, reproduce the paper, sweep it, look inside.")
tasks_app = typer.Typer(add_completion=False, rich_markup_mode=None, invoke_without_command=True,
                        help="List the tasks, or print one task's table.")
app.add_typer(tasks_app, name="tasks")

_PY_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "int | str": str}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def config_options(func):
    """Give ``func`` one ``--flag`` per RunConfig field (default None: only given flags override)."""
    sig = inspect.signature(func)
    params = [p for p in sig.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
    for f in fields(RunConfig):
        typ = _PY_TYPES[f.type]
        doc = f.metadata["doc"]
        if "choices" in f.metadata and len(f.metadata["choices"]) <= 6:
            doc += f" [{'|'.join(f.metadata['choices'])}]"
        if typ is bool:
            opt = typer.Option(None, f"{_flag(f.name)}/--no-{f.name.replace('_', '-')}", help=doc, show_default=False)
        else:
            opt = typer.Option(None, _flag(f.name), help=f"{doc} (default {f.default})", show_default=False)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=opt,
                                        annotation=Optional[typ]))
    func.__signature__ = sig.replace(parameters=params)
    return func


def _batch_size(value: str):
    if value in ("auto", "full"):
        return value
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"batch_size {value!r} is not allowed; use 'auto', 'full' or an integer >= 1") from None


def build_config(preset: str | None, config: Path | None, flags: dict) -> RunConfig:
    """defaults <- preset <- config file <- flags."""
    values = read_toml(config) if config else {}
    check_keys(values, f"config file {str(config)!r}")
    for k, v in flags.items():
        if v is not None:
            values[k] = _batch_size(v) if k == "batch_size" else v
    return RunConfig.from_dict(values, preset=preset or "paper")


def default_out(cfg: RunConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.task}-p{cfg.modulus}-f{cfg.train_fraction:g}-s{cfg.seed}-{stamp}"


@app.command()
@config_options
def train(
    preset: Optional[str] = typer.Option(None, help=f"start from a preset [{'|'.join(preset_names())}] (default paper)"),
    config: Optional[Path] = typer.Option(None, help="TOML file of RunConfig fields"),
    out: Optional[Path] = typer.Option(None, help="run directory (default runs/<task>-...-<time>)"),
    force: bool = typer.Option(False, help="overwrite a run directory that holds a run"),
    resume: Optional[Path] = typer.Option(None, help="continue the run in this directory from its checkpoint"),
    quiet: bool = typer.Option(False, help="no progress bar"),
    **flags,
):
    """Train one run. With no arguments: the paper's setup on x / y mod 97 with 50% of the data."""
    from .events import describe
    from .train import train as run_train

    if resume is not None:
        given = [k for k, v in flags.items() if v is not None]
        if given or config or preset or out:
            raise ConfigError("--resume continues a run with its own config; drop " +
                              ", ".join([_flag(k) for k in given] + [o for o, v in
                                        (("--config", config), ("--preset", preset), ("--out", out)) if v]))
        cfg = rundir.load_config(resume)
        summary = rundir.read_summary(resume)
        if summary and summary["status"] not in ("running", "interrupted"):
            raise ConfigError(f"{str(resume)!r} holds a finished run (status {summary['status']}); nothing to resume")
        rundir.load_checkpoint(resume, cfg)
        out = resume
    else:
        cfg = build_config(preset, config, flags)
        out = out or default_out(cfg)
        rundir.prepare(out, cfg, force=force)
    typer.echo(f"{cfg.task} mod {cfg.modulus}, {cfg.train_fraction:.0%} of the data, {cfg.optimizer} "
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


@tasks_app.callback()
def tasks_list(ctx: typer.Context,
               modulus: int = typer.Option(97, help="modulus used for the table sizes")):
    """List the tasks: id, equation, table size."""
    if ctx.invoked_subcommand is not None:
        return
    from .tasks import TASKS, check_modulus, n_examples

    typer.echo(f"{'id':<12} {'equation':<40} {'table size':>10}")
    for t in TASKS.values():
        try:
            check_modulus(t.id, modulus)
            size = f"{n_examples(t.id, modulus):>10}"
        except ConfigError:
            size = "needs a prime modulus"
        typer.echo(f"{t.id:<12} {t.equation:<40} {size}")


@tasks_app.command("show")
def tasks_show(task: str = typer.Argument(..., help="task id"),
               modulus: int = typer.Option(97, help="modulus p (ignored by the S5 tasks)")):
    """Print a task's table as CSV with header x,y,z."""
    from .tasks import table_csv

    sys.stdout.write(table_csv(task, modulus))


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
    return 0


if __name__ == "__main__":
    sys.exit(main())
