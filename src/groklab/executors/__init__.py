"""Executors: what trains a sweep's groups of runs, and where (``groklab sweep --executor NAME``).

``sweep.run_sweep`` plans a sweep (which runs to train, in which stacked groups, their run directories) and
hands an executor a ``Work``; the executor trains every group, writes each run to the store as it finishes,
redraws the progress (``work.tick()``) while it waits, and stops early when ``work.stop`` is set (the driver's
first Ctrl-C or SIGTERM): running runs checkpoint and return, queued groups never start. The driver marks the
claimed runs it did not finish as interrupted, whatever the executor did.

- ``local``: in this process (one worker, or one group), else a pool of worker processes (``executors.local``);
- ``ray``: Ray tasks on a cluster, or a Ray started here (``executors.ray``).

Adding one: a module with ``execute(work)`` (and a ``check(address, runs_root, ship_runs)`` that refuses, in one
line and before anything is written, what it cannot run: a missing package, an unreachable cluster), and one
``register(Executor(...))`` line below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config import RunConfig
from ..errors import ConfigError


@dataclass
class Work:
    """What an executor is handed: the groups to train (each trains as one stacked model) and where their
    results go."""

    groups: list[list[RunConfig]]
    run_dirs: dict[str, Path]  # config hash -> the run's directory
    store_path: Path
    workers: int  # most groups trained at once
    threads: int  # PyTorch threads per group: the most it takes (as many as other processes leave free)
    stop: Any  # a multiprocessing Event: set when the sweep is asked to stop
    tick: Callable[[], None] = lambda: None  # redraw the progress; called while waiting
    address: str | None = None  # a cluster's address (Ray)
    fixed_threads: int | None = None  # --threads N: exactly N threads per group
    ship_runs: bool = False  # Ray without a shared file system: the driver writes what the tasks send back

    def dirs(self, group: list[RunConfig]) -> list[str]:
        return [str(self.run_dirs[c.hash()]) for c in group]


def _nothing_to_check(address: str | None = None, runs_root: Path | None = None, ship_runs: bool = False) -> None:
    return None


@dataclass(frozen=True)
class Executor:
    """``check(address, runs_root, ship_runs)`` runs before anything is written (not even the store) and raises
    ConfigError, one line, for what this executor cannot run: a missing package, a cluster that does not
    answer, a runs folder its workers cannot see."""

    name: str
    doc: str
    execute: Callable[[Work], None]
    check: Callable[..., None] = field(default=_nothing_to_check)


EXECUTORS: dict[str, Executor] = {}


def register(executor: Executor) -> Executor:
    EXECUTORS[executor.name] = executor
    return executor


def get_executor(name: str) -> Executor:
    if name not in EXECUTORS:
        raise ConfigError(f"executor {name!r} is not allowed; allowed: {', '.join(EXECUTORS)}")
    return EXECUTORS[name]


from . import local, ray  # noqa: E402

register(Executor("local", "this process, or a pool of worker processes on this machine", local.execute))
register(Executor("ray", "Ray tasks (a cluster with --address, else a Ray started here)", ray.execute, ray.check))
