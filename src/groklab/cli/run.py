"""``groklab train`` and ``groklab export``: one run, and its weights in other tools' formats."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer

from .. import rundir
from ..config import RunConfig, check_keys, fields, load_preset, parse_value, preset_names, read_toml
from ..errors import ConfigError
from ..events import describe
from ..export import FORMATS
from ..export import export as run_export
from ..loggers import check_available
from ..runtime import parse_threads, resolve_device, set_threads
from ..tasks import ignored_operand, task_label
from ..train import train as run_train
from .app import THREADS_HELP, app, with_fields


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
    if preset and config and set(load_preset(preset)) <= set(values):
        raise ConfigError(f"--preset {preset} would change nothing: config file {str(config)!r} sets every field "
                          "it sets (a run's config.json holds them all); leave out --preset, or give the fields "
                          "to change as flags")
    typed = [k for k, v in flags.items() if v is not None]
    for k in typed:
        v = flags[k]
        values[k] = parse_value(k, v) if fields()[k].type == "int | str" else v  # typed "int | str": text
    return RunConfig.from_dict(values, preset=preset or file_preset or "paper", given=typed)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@app.command()
@with_fields(lambda: fields().values())
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
    ignored = ignored_operand(cfg.task, cfg.modulus, **cfg.task_params)
    if ignored:
        typer.echo(f"warning: in {task_label(cfg)} the answer does not depend on {ignored}: there is nothing to "
                   "generalize (a network that reads the other operand alone is right everywhere)", err=True)
    result = run_train(cfg, out, resume=resume is not None, progress=not quiet)
    s = result.summary
    typer.echo(f"{describe(s)}; final validation accuracy {s['final_val_acc']:.3f} "
               f"[{s['status']}, {s['steps_run']:,} steps, {s['wall_time_s']:.0f} s]")
    typer.echo(f"run directory: {out}")
    if s["status"] == "interrupted":
        typer.echo(f"resume with: groklab train --resume {out}")
        raise typer.Exit(130)


@app.command()
def export(run: Path = typer.Argument(..., help="run directory"),
           to: str = typer.Option(..., help=f"format [{'|'.join(FORMATS)}]"),
           out: Path = typer.Argument(..., help="folder to write (new, or empty)"),
           step: Optional[int] = typer.Option(None, help="a snapshot's step (default: the final weights)")):
    """Export a run's weights: safetensors with a JSON config (loadable back into groklab), or a
    TransformerLens HookedTransformer (norm pre or none)."""
    written = run_export(run, to, out, step)
    typer.echo(f"wrote {', '.join(sorted(p.name for p in written.iterdir()))} to {written}")
