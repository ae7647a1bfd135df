"""What an executor is: ``Executor``, what trains a sweep's groups of runs and where, and ``Work``, what it is
handed.

``sweep.run_sweep`` plans a sweep (which runs to train, in which stacked groups, their run directories) and hands
an executor a ``Work``; the executor trains every group, writes each run to the store as it finishes, redraws the
progress (``work.tick()``) while it waits, and stops early when ``work.stop`` is set (the driver's first Ctrl-C or
SIGTERM): running runs checkpoint and return, queued groups never start. The driver marks the claimed runs it did
not finish as interrupted, whatever the executor did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..fields import Field


@dataclass
class Work:
    """What an executor is handed: the groups to train (each trains as one stacked model, a list of RunConfig) and
    where their results go."""

    groups: list[list[Any]]
    run_dirs: dict[str, Path]  # config hash -> the run's directory
    store_path: Path
    workers: int  # most groups trained at once
    threads: int  # PyTorch threads per group: the most it takes (as many as other processes leave free)
    stop: Any  # a multiprocessing Event: set when the sweep is asked to stop
    tick: Callable[[], None] = lambda: None  # redraw the progress; called while waiting
    fixed_threads: int | None = None  # --threads N: exactly N threads per group
    options: dict[str, Any] = field(default_factory=dict)  # the executor's own settings (its fields), by name

    def dirs(self, group: list) -> list[str]:
        """The run directories of a group's runs."""
        return [str(self.run_dirs[c.hash()]) for c in group]


def _nothing_to_check(options: dict[str, Any], runs_root: Path | None) -> None:
    return None


@dataclass(frozen=True)
class Executor:
    """One executor: ``execute(work)`` trains the work's groups (see the module doc); ``check(options,
    runs_root)`` runs before anything is written (not even the store) and raises ConfigError, one line, for what
    it cannot run: a missing package (with the install line), a cluster that does not answer, a runs folder its
    workers cannot see; ``fields``: its own settings (``--address``), flags of ``groklab sweep`` and ``compare``.
    Each group's threads: at most ``work.threads``, or exactly ``work.fixed_threads``
    (``runtime.set_threads``)."""

    name: str
    doc: str
    execute: Callable[[Work], None]
    check: Callable[[dict, Path | None], None] = _nothing_to_check
    fields: tuple[Field, ...] = ()
