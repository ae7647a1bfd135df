"""The ``groklab`` command's application, its error handling, and what its commands share: flags made from
settings (``fields.Field``), the sweep options, the checks of output paths.

A user's mistake (``ConfigError``, a usage error) is one line on stderr and exit status 2; Ctrl-C or SIGTERM
during a training or sweep is one line and 130 / 143, after the runs checkpointed.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Optional

import typer

from ..analysis import ANALYSES
from ..errors import ConfigError
from ..executors import EXECUTORS
from ..fields import Field
from ..lazy import lazy
from ..plan import plan
from ..runtime import parse_threads
from ..sweep import check_options

mpl_backend_bases = lazy("matplotlib.backend_bases")

# the usage-error base class of whichever click typer runs on (newer typers carry their own)
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")

THREADS_HELP = ("CPU threads: auto (default: the cores other processes leave free, checked every few seconds) "
                "or a number")
_PY_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "int | str": str}

app = typer.Typer(add_completion=False, no_args_is_help=False, rich_markup_mode=None,
                  pretty_exceptions_enable=False,
                  help="groklab: see grokking on a laptop, reproduce the paper, sweep it, look inside.")


def _option(f: Field, axes: bool, note: Callable[[Field], str] | None) -> inspect.Parameter:
    """One flag of a setting: a keyword parameter whose default is a typer Option (None: not given)."""
    doc = f.help() + (note(f) if note else "")
    names = [f.flag, *("--" + a.replace("_", "-") for a in f.aliases)]
    if axes:
        opt, typ = typer.Option(None, *names, help=f"axis: {doc}; values a,b,c or start:stop:step",
                                show_default=False), str
    elif f.type == "bool":
        opt, typ = typer.Option(None, f"{f.flag}/--no-{f.flag[2:]}", *names[1:], help=doc, show_default=False), bool
    else:
        opt, typ = typer.Option(None, *names, help=doc, show_default=False), _PY_TYPES[f.type]
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=Optional[typ])


def _build(func) -> None:
    """A command's signature: its own parameters, then each step's (fixed options, or one flag per setting of a
    registry as it is now), before its ``**kwargs``."""
    sig = func.__groklab_base__
    params = [p for p in sig.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
    taken = {p.name for p in params}
    for kind, *args in func.__groklab_steps__:
        new = args[0] if kind == "params" else [_option(f, *args[1:]) for f in args[0]()]
        for p in new:
            if p.name not in taken:
                params.append(p)
                taken.add(p.name)
    func.__signature__ = sig.replace(parameters=params)


def _step(func, step: tuple):
    if not hasattr(func, "__groklab_steps__"):
        func.__groklab_base__, func.__groklab_steps__ = inspect.signature(func), []
        COMMANDS.append(func)
    func.__groklab_steps__.insert(0, step)  # decorators apply bottom-up; their flags are listed top-down
    _build(func)
    return func


COMMANDS: list = []  # the commands whose flags come from registries, rebuilt at each ``main`` call (``refresh``)


def with_fields(fields: Callable[[], Iterable[Field]], axes: bool = False, note: Callable[[Field], str] | None = None):
    """A decorator giving a command one flag per setting of ``fields()`` (RunConfig's, an executor's, the
    analyses'), collected in the command's ``**kwargs``; a flag not given is None. With ``axes`` every flag takes
    a list ``a,b,c`` or a range ``start:stop:step``. ``note(field)``: text added to a flag's help (whose setting it
    is). The flags follow the registries: an entry registered later (from Python) has its flag at the next
    ``main`` call."""
    return lambda func: _step(func, ("fields", fields, axes, note))


def refresh() -> None:
    """Rebuild every command's registry-made flags from the registries as they are now."""
    for func in COMMANDS:
        _build(func)


def given(values: dict, names: Iterable[str]) -> dict:
    """The flags of ``names`` that were given (not None), out of a command's ``**kwargs``."""
    return {k: values[k] for k in names if values.get(k) is not None}


def analysis_note(f: Field) -> str:
    """A flag's help note naming the analyses whose setting it is."""
    owners = ANALYSES.owners().get(f.name, ())
    return f"; analysis {', '.join(owners)}" if owners else ""


def _executor_note(f: Field) -> str:
    owners = EXECUTORS.owners().get(f.name, ())
    return f"; with --executor {', '.join(owners)}" if owners else ""


def sweep_options(func):
    """The options a sweep and a comparison share: the store, the workers, the executor and its own settings
    (``EXECUTORS``' fields: Ray's ``--address``), the ensemble size, the runs folder, the bar, the threads."""
    shared = [
        ("store", Optional[Path], typer.Option(None, help="SQLite store the runs are written to (required but with "
                                                         "--plan, where it names the finished runs to skip)")),
        ("workers", Optional[int], typer.Option(None, help="local worker processes (default: the CPU cores)")),
        ("executor", str, typer.Option("local", help=f"where the groups train [{'|'.join(EXECUTORS)}]")),
        ("ensemble", Optional[int], typer.Option(None, help="most runs trained together as one stacked model "
                                                          "(default 8 on CPU, 64 on CUDA)")),
        ("runs_dir", Optional[Path], typer.Option(None, help="where run directories go (default STORE.runs/); with "
                                                             "--executor ray, a folder every node sees")),
        ("quiet", bool, typer.Option(False, help="no progress bar")),
        ("threads", Optional[str], typer.Option(None, help=THREADS_HELP + "; per worker")),
        ("plan", bool, typer.Option(False, help="say what would be trained (the runs the store holds are skipped), "
                                                "the groups and how long they would take on this machine (each "
                                                "group shape calibrated for a few dozen updates); write nothing")),
    ]
    func = with_fields(lambda: EXECUTORS.fields().values(), note=_executor_note)(func)
    return _step(func, ("params", [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=o, annotation=t)
                                   for n, t, o in shared]))


def show_plan(configs, opts: dict, repeats: int = 1) -> None:
    """``--plan``: the sweep's cost (``plan.plan``), printed; nothing written."""
    kw = sweep_kwargs(opts)
    check_options(configs, kw["workers"], kw["executor"], kw["max_ensemble"], kw["threads"],
                  **given(opts, EXECUTORS.fields()))
    result = plan(configs, opts["store"], kw["workers"], kw["max_ensemble"], kw["runs_root"], kw["threads"],
                  repeats=repeats)
    for line in result.lines():
        typer.echo(line)
    if kw["executor"] != "local":
        typer.echo(f"(calibrated here: --executor {kw['executor']}'s nodes may differ; --workers is the groups "
                   "trained at once)")


def sweep_kwargs(opts: dict) -> dict:
    """A command's sweep options as ``sweep.run_sweep``'s keywords (the executor's settings included); a store
    is required unless the command only plans."""
    if opts["store"] is None and not opts.get("plan"):
        raise ConfigError("--store is required: the SQLite store the runs are written to (only --plan goes "
                          "without one)")
    out = {"workers": opts["workers"], "executor": opts["executor"], "max_ensemble": opts["ensemble"],
           "runs_root": opts["runs_dir"], "progress": not opts["quiet"], "threads": parse_threads(opts["threads"])}
    return {**out, **given(opts, EXECUTORS.fields())}


# -- checks and outputs ------------------------------------------------------------------------------------------


def check_output(output: Path) -> None:
    """Refuse an image path that cannot be written before any work is done."""
    kinds = mpl_backend_bases.FigureCanvasBase.get_supported_filetypes()
    suffix = Path(output).suffix.lower().lstrip(".")
    if suffix not in kinds:
        raise ConfigError(f"output {str(output)!r} has no image type matplotlib writes; use one of: "
                          + ", ".join("." + k for k in sorted(kinds)))
    check_folder(output)


def check_folder(output: Path) -> None:
    if not Path(output).absolute().parent.is_dir():
        raise ConfigError(f"cannot write {str(output)!r}: folder {str(Path(output).parent)!r} does not exist")


def save(fig, output: Path) -> None:
    try:
        fig.savefig(output, dpi=110)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot write {str(output)!r}: {e}") from None
    typer.echo(f"wrote {output}")


def existing(path: Path) -> Path:
    if not Path(path).exists():
        raise ConfigError(f"store {str(path)!r} does not exist")
    return path


def run_ids(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(i) for i in text.split(",") if i.strip()]
    except ValueError:
        raise ConfigError(f"run id list {text!r} is not allowed; give integers like 1,4,7") from None


def stoppable(fn, *args, said: str = "interrupted; running runs checkpointed, the same command resumes them",
              **kwargs):
    """``fn(...)`` (a sweep); Ctrl-C or SIGTERM, after the runs checkpointed: one line, exit 130 / 143."""
    try:
        return fn(*args, **kwargs)
    except KeyboardInterrupt as e:
        typer.echo(f"groklab: {said}", err=True)
        raise typer.Exit(128 + getattr(e, "signum", 2)) from None


def busy(counts: dict) -> str:
    n = counts.get("busy", 0)
    return (f", {n} left to another process that is training them (run the command again once it ends)"
            if n else "")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; ConfigError and usage errors become one line and exit 2."""
    try:
        refresh()
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
