"""``groklab tasks``: the tasks, and one task's table as CSV."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from ..config import RunConfig, fields
from ..errors import ConfigError
from ..tasks import TASKS, check_modulus, n_examples, table_csv
from .app import app, given, with_fields

tasks_app = typer.Typer(add_completion=False, rich_markup_mode=None, invoke_without_command=True,
                        help="List the tasks, or print one task's table.")
app.add_typer(tasks_app, name="tasks")


def task_settings() -> list:
    """The settings a task's table depends on besides the modulus: the tasks' own fields and the RunConfig fields
    some task reads (parity's seed)."""
    table = fields()
    read = {name for t in TASKS.values() for name in t.reads}
    return [*TASKS.fields().values(), *(table[name] for name in table if name in read)]


def _whose(f) -> str:
    users = [t.name for t in TASKS.values() if f.name in t.params]
    return f"; task {', '.join(users)}" if users else ""


@tasks_app.callback()
def tasks_list(ctx: typer.Context,
               modulus: int = typer.Option(97, help="modulus used for the table sizes")):
    """List the tasks: id, equation, table size (at the modulus given, for the modular tasks)."""
    if ctx.invoked_subcommand is not None:
        return
    rows = []
    for t in TASKS.values():
        if t.params:
            size = "set by its options"
        else:
            try:
                check_modulus(t.name, modulus)
                size = f"{n_examples(t.name, modulus):,}"
            except ConfigError:
                size = "needs a prime modulus"
        rows.append((t.name, t.equation, size))
    w_id, w_eq = (max(len(r[i]) for r in rows) for i in (0, 1))
    typer.echo(f"{'id':<{w_id}}  {'equation':<{w_eq}}  table size (p = {modulus})")
    for tid, equation, size in rows:
        typer.echo(f"{tid:<{w_id}}  {equation:<{w_eq}}  {size}")


@tasks_app.command("show")
@with_fields(task_settings, note=_whose)
def tasks_show(task: str = typer.Argument(..., help="task id"),
               modulus: Optional[int] = typer.Option(None, help="modulus p of the modular tasks (default 97)"),
               **settings):
    """Print a task's table as CSV with header x,y,z (a group's elements written readably, a parity example's
    x its bit string and y the relevant bits' parity)."""
    typed = given(settings, [f.name for f in task_settings()])
    if modulus is not None:
        typed["modulus"] = modulus
    cfg = RunConfig.from_dict({"task": task, "model": "mlp", **typed}, given=list(typed))
    sys.stdout.write(table_csv(cfg.task, cfg.modulus, **cfg.task_params))
