"""Running a sweep: which of its runs to train, in which stacked groups, by which executor, into a store.

``run_sweep(configs, store)`` is the whole workflow, for a sweep file (``groklab.grid``), a comparison
(``groklab.compare``) or a tuning trial (``groklab.tune``):

1. ``plan``: each run the store holds as finished is skipped; one whose run directory finished before its store
   write is imported; the others are claimed in the store (``Store.claim``), except those another live process
   is training (left to it);
2. ``make_groups``: compatible runs (``engine.GroupSpec.key``) train together as one stacked model, in groups as
   large as allowed but enough to keep every worker busy;
3. an executor (``groklab.executors``) trains the groups, resuming interrupted runs from their checkpoints;
4. the runs this sweep claimed and did not finish are marked interrupted: running the sweep again goes on.

One Ctrl-C or SIGTERM stops the whole sweep: running runs checkpoint, queued groups never start, and
``signals.SweepInterrupted`` is raised once they are safe (a second signal stops waiting).

    >>> from groklab import RunConfig
    >>> run_sweep([RunConfig(task="add", modulus=7, seed=s) for s in (0, 1)], "sweep.db")   # doctest: +SKIP
    {'total': 2, 'skipped': 0, 'ran': 2, 'busy': 0, 'outcomes': {'budget_exhausted': 2}}
"""

from __future__ import annotations

import math
from collections import Counter
from multiprocessing import get_context
from pathlib import Path

from . import rundir
from .bars import show_sweep, sweep_bar
from .config import RunConfig
from .engine import GroupSpec
from .errors import ConfigError
from .events import of_rows
from .executors import EXECUTORS, Work
from .loggers import check_available
from .rundir import FINISHED
from .runtime import resolve_device, usable_cores
from .signals import DriverSignals, SweepInterrupted
from .store import Store


def runs_root_of(store_path: str | Path) -> Path:
    """Where a store's run directories go by default: ``STORE.runs/`` beside it."""
    store_path = Path(store_path)
    return store_path.with_name(store_path.name + ".runs")


def run_dir_of(row: dict | None, runs_root: Path, cfg: RunConfig) -> Path:
    """A run's directory: the one its store row records (so a store's runs are found whatever the naming of the
    groklab that wrote it), else ``runs_root / rundir.run_name(cfg)``."""
    if row and row.get("run_dir"):
        return Path(row["run_dir"])
    return runs_root / rundir.run_name(cfg)


def plan(configs: list[RunConfig], store: Store, runs_root: Path) -> tuple[list[RunConfig], int, list[RunConfig]]:
    """The runs this sweep trains, claimed in the store (``Store.claim``, which records their run directories);
    how many are already finished (files of runs that finished before their store write are imported, not
    recomputed); and the runs another live process is training, left to it."""
    todo, finished, busy = [], 0, []
    for cfg in configs:
        row = store.get(cfg)
        if row and row["status"] in FINISHED:
            finished += 1
            continue
        rd = run_dir_of(row, runs_root, cfg)
        summary = rundir.read_summary(rd)
        if summary and summary["status"] in FINISHED:  # events read again: a summary may predate their rules
            history = rundir.read_metrics(rd)
            store.finish_run(cfg, {**summary, **of_rows(history)}, history, rd)
            finished += 1
            continue
        claim = store.claim(cfg, rd)  # another sweep on this store may be training it now
        if claim == "claimed":
            todo.append(cfg)
        elif claim == "busy":
            busy.append(cfg)
        else:
            finished += 1
    return todo, finished, busy


def make_groups(configs: list[RunConfig], workers: int, max_ensemble: int | None) -> list[list[RunConfig]]:
    """Split compatible runs into ensembles: as large as allowed, but enough groups to keep every worker busy
    (with as many kinds of runs as workers, one group per kind will do)."""
    by_key: dict[tuple, list[RunConfig]] = {}
    for c in configs:
        by_key.setdefault(GroupSpec.key(c), []).append(c)
    per_key = math.ceil(max(workers, 1) / max(len(by_key), 1))  # groups each kind must at least split into
    groups = []
    for key, cs in by_key.items():
        cap = max_ensemble or (64 if dict(key)["device"] == "cuda" else 8)
        size = max(1, min(cap, math.ceil(len(cs) / per_key)))
        groups += [cs[i: i + size] for i in range(0, len(cs), size)]
    return groups


def executor_options(executor: str, options: dict) -> dict:
    """The chosen executor's settings from ``options`` (its fields' values; a field left out, or None, has its
    default). Refused in one line: a setting no executor has, one that belongs to another executor, a bad value."""
    chosen = EXECUTORS[executor]
    table, owners = EXECUTORS.fields(), EXECUTORS.owners()
    out = {f.name: f.default for f in chosen.fields}
    for name, value in options.items():
        if name not in table:
            raise ConfigError(f"unknown executor option {name!r}; allowed: {', '.join(table) or 'none'}")
        if value is None or value == table[name].default:
            continue
        if executor not in owners[name]:
            raise ConfigError(f"{table[name].flag} is for --executor {', '.join(owners[name])}, not {executor}")
        table[name].check(value)
        out[name] = value
    return out


def check_options(configs: list[RunConfig], workers: int | None, executor: str, max_ensemble: int | None,
                  threads: int | None = None, **options) -> dict:
    """Refuse bad counts, an executor's setting given to another, a missing logger package, a device this machine
    lacks (one line each); returns the executor's settings."""
    for name, n in (("workers", workers), ("ensemble", max_ensemble), ("threads", threads)):
        if n is not None and n < 1:
            raise ConfigError(f"{name} {n} is too small; must be >= 1")
    opts = executor_options(executor, options)
    for spec in {c.logger for c in configs}:
        check_available(spec)
    for c in configs:
        resolve_device(c.device)
    return opts


def check_sweep(configs: list[RunConfig], workers: int | None, executor: str, max_ensemble: int | None,
                threads: int | None = None, runs_root: Path | None = None, **options) -> dict:
    """Refuse, before anything is written, what the sweep cannot run: ``check_options``'s refusals and what the
    executor cannot run (``Executor.check``: a missing package, a cluster that does not answer, a runs folder its
    nodes do not see). Returns the executor's settings."""
    opts = check_options(configs, workers, executor, max_ensemble, threads, **options)
    EXECUTORS[executor].check(opts, runs_root)
    return opts


def run_sweep(configs: list[RunConfig], store_path: str | Path, workers: int | None = None,
              executor: str = "local", max_ensemble: int | None = None, runs_root: str | Path | None = None,
              progress: bool = True, threads: int | None = None, **options) -> dict:
    """Run every config not yet finished into the store; returns counts (total, skipped, ran, busy: left to
    another process training them). Each group takes the cores other processes leave free, at most its share
    (the usable cores over the workers), or exactly ``threads``. SIGINT / SIGTERM: the runs checkpoint, then
    ``SweepInterrupted``. ``options``: the executor's own settings (Ray's ``address``, ``ship_runs``: see
    ``executors.ray``)."""
    store_path = Path(store_path)
    runs_root = Path(runs_root) if runs_root else runs_root_of(store_path)
    opts = check_sweep(configs, workers, executor, max_ensemble, threads, runs_root, **options)
    store = Store(store_path)
    store.mark_stale()
    todo, finished, busy = plan(configs, store, runs_root)
    dirs = {c.hash(): run_dir_of(store.get(c), runs_root, c) for c in todo}  # as claimed
    workers = workers or usable_cores()
    groups = make_groups(todo, workers, max_ensemble)
    share = threads or max(1, usable_cores() // min(workers, max(len(groups), 1)))
    bar = sweep_bar(len(todo), finished) if progress and todo else None  # nothing to run: no bar
    hashes = {c.hash() for c in todo}

    def tick() -> None:
        if bar is not None:
            show_sweep(bar, [r for r in store.runs() if r["config_hash"] in hashes], len(hashes))

    stop = get_context("spawn").Event()
    work = Work(groups, dirs, store_path, workers, share, stop, tick, fixed_threads=threads, options=opts)
    try:
        with DriverSignals(stop) as signals:
            EXECUTORS[executor].execute(work)
    finally:
        if bar is not None:
            bar.close()
        store.release(hashes)  # claimed runs this sweep did not finish (stopped, or a worker failed)
    every = {c.hash() for c in configs}
    outcomes = Counter(r["status"] for r in store.runs() if r["config_hash"] in every)
    store.close()
    if signals.signum is not None:
        raise SweepInterrupted(signals.signum)
    return {"total": len(configs), "skipped": finished, "ran": len(todo), "busy": len(busy),
            "outcomes": dict(outcomes)}


def outcome_line(counts: dict) -> str:
    """What a sweep's runs came to, in words: '24 generalized, 6 budget exhausted, 1 diverged'."""
    seen = counts.get("outcomes", {})
    order = [*FINISHED, *(s for s in rundir.Status if s not in FINISHED)]
    return ", ".join(f"{seen[s]} {s.replace('_', ' ')}" for s in order if seen.get(s)) or "no runs"
