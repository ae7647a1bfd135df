"""What a sweep costs before it starts (``groklab sweep FILE --plan``, ``compare --plan``, ``tune --plan``).

``plan(configs, store)`` says which runs the store already holds (they would be skipped), how the others would
stack into groups and share the workers, their update budget, and how long they would take on this machine:
each distinct group shape (its model and size, table size, batch, runs stacked, interventions) is calibrated by
building it and timing a few dozen updates and one evaluation, with the threads its group would get; a group's
time is its updates and evaluations at those rates (the evaluation schedule counted exactly), and the groups are
laid over the workers longest first. Every run is assumed to train its whole budget (runs that never generalize
do; one that generalizes stops ``stop_patience`` updates after its validation accuracy holds 99%, sooner).
Workers training at once slow each other a little (shared memory bandwidth), which the calibration, alone, does
not see: measured, a 39-run sweep in two workers took 1.2x its estimate. Nothing is written: no store, no run
directory, no run claimed.

    >>> from groklab import RunConfig
    >>> p = plan([RunConfig(task="add", modulus=7, steps=50, seed=s) for s in (0, 1)], "nowhere.db")  # doctest: +SKIP
    >>> print("\\n".join(p.lines()))                                                                   # doctest: +SKIP
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import rundir
from .bars import duration
from .config import RunConfig
from .engine import Group, GroupSpec
from .interventions import active_transforms
from .lazy import lazy
from .plots import curves
from .rundir import FINISHED
from .runtime import configure, resolve_device, usable_cores
from .store import finished_runs
from .sweep import make_groups, run_dir_of, runs_root_of
from .tasks import get_task, shape_of
from .train import eval_interval

torch = lazy("torch")

CALIBRATION_UPDATES = 20  # timed per group shape, after two untimed ones
CALIBRATION_S = 2.0  # ... or as many as fit in this time (at least 3): a big group's updates take a second each


def n_evaluations(steps: int, eval_every: int) -> int:
    """How many evaluations a run of ``steps`` updates makes (``train.is_eval_step``: step 0, every ``eval_every``
    updates early on, a tenth of the current power of ten later, and the last step), counted per decade."""
    count, decade = 1, 0  # step 0
    while 10 ** decade <= steps:
        lo, hi = 10 ** decade, min(10 ** (decade + 1) - 1, steps)
        every = eval_interval(lo, eval_every)  # the same interval over the whole decade
        count += hi // every - (lo - 1) // every
        decade += 1
    return count + (steps % eval_interval(steps, eval_every) != 0 and steps > 0)


def shape_key(cfgs: list[RunConfig]) -> tuple:
    """What a group's cost depends on: what its runs share (``GroupSpec.key``) but the task's own identity, in its
    place the table's size and symbols, and how many runs it stacks and which interventions they switch on."""
    cfg = cfgs[0]
    own = {"task", "modulus", *get_task(cfg.task).params}
    shape = shape_of(cfg)
    return (tuple((n, v) for n, v in GroupSpec.key(cfg) if n not in own)
            + (("equations", cfg.table_size), ("symbols", shape.n_symbols), ("inputs", shape.n_inputs),
               ("runs", len(cfgs)), ("interventions", tuple(t.name for t in active_transforms(cfgs)))))


@dataclass
class Rate:
    """One group shape, calibrated: seconds to build the group, per update, per evaluation, and to write a
    finished run's files (its checkpoint, its curves)."""

    build_s: float
    update_s: float
    eval_s: float
    finish_s: float
    label: str


def _finish_cost(g: Group, history: list[dict]) -> float:
    """What ending a run costs besides training: its checkpoint saved and its curves drawn (into memory)."""
    t0 = time.perf_counter()
    torch.save(g.member_state(0), io.BytesIO())
    curves({"run": history}).savefig(io.BytesIO(), dpi=90)
    return time.perf_counter() - t0


def _start_cost() -> float:
    """What a worker process costs to start: Python, groklab and PyTorch imported (a pool starts one per worker)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import groklab.train, torch"], capture_output=True, check=False)
    return time.perf_counter() - t0


def calibrate(cfgs: list[RunConfig], updates: int = CALIBRATION_UPDATES, seconds: float = CALIBRATION_S) -> Rate:
    """Build the group of ``cfgs`` (fresh, in memory) and time ``updates`` updates (fewer where they take over
    ``seconds``, but at least 3), one evaluation and a finished run's files."""
    device = resolve_device(cfgs[0].device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    g = Group.build(cfgs)
    build = time.perf_counter() - t0
    for _ in range(2):  # untimed: the first updates allocate
        g.step()
    sync()
    t0 = time.perf_counter()
    done = 0
    while done < updates and (done < 3 or time.perf_counter() - t0 < seconds):
        g.step()
        done += 1
    sync()
    t1 = time.perf_counter()
    row = g.evaluate()[0]
    t2 = time.perf_counter()
    history = [{"step": s, **row} for s in range(0, 1000, 10)]
    c = cfgs[0]
    moved = active_transforms(cfgs)
    label = (f"{c.model} d_model {c.d_model}, {c.table_size:,} equations, batch {c.resolved_batch_size}, "
             f"{len(cfgs)} run{'s' if len(cfgs) > 1 else ''} stacked"
             + (f", {', '.join(t.name for t in moved)}" if moved else ""))
    return Rate(build, (t1 - t0) / done, t2 - t1, _finish_cost(g, history), label)


@dataclass
class Plan:
    """A sweep's cost, before it starts (``plan``)."""

    total: int  # runs in the sweep
    skipped: int  # finished in the store, or in their run directory: not trained again
    groups: list[list[RunConfig]]
    workers: int
    threads: int  # PyTorch threads per group
    device: str
    rates: dict[tuple, Rate] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)  # each group's estimate, in ``groups`` order
    repeats: int = 1  # a tune: the trials, one after another
    start_s: float = 0.0  # starting the worker processes (a pool), once

    @property
    def updates(self) -> int:
        """The updates of every run that would train, each at its whole budget."""
        return self.repeats * sum(c.steps for g in self.groups for c in g)

    @property
    def wall_s(self) -> float:
        """The groups laid over the workers, longest first (each to the worker free soonest)."""
        free = [self.start_s] * max(1, self.workers)
        for s in sorted(self.seconds, reverse=True):
            free[free.index(min(free))] += s
        return self.repeats * max(free)

    def estimate(self) -> str:
        """The wall time if every run trains its whole budget, in words ("12 min"); "0 s" with nothing to train."""
        return duration(self.wall_s) if self.groups else "0 s"

    def lines(self) -> list[str]:
        """The plan as the lines ``--plan`` prints."""
        runs = sum(len(g) for g in self.groups)
        out = [f"{self.total:,} runs: {self.skipped:,} finished already (skipped), {runs:,} to train in "
               f"{len(self.groups):,} groups" + (f", {self.repeats} times (trials)" if self.repeats > 1 else "")
               + f"; budget {self.updates:,} updates"]
        if not self.groups:
            return out + ["nothing to train; nothing written"]
        out.append(f"calibrated on this machine ({self.device}, {self.workers} worker{'s' if self.workers > 1 else ''}"
                   f" x {self.threads} thread{'s' if self.threads > 1 else ''}), {len(self.rates)} group "
                   f"shape{'s' if len(self.rates) > 1 else ''}, {CALIBRATION_UPDATES} updates (fewer past {CALIBRATION_S:.0f} s) "
                   "and one evaluation each:")
        for rate in self.rates.values():
            out.append(f"  {rate.label}: {rate.update_s * 1000:,.1f} ms per update, {rate.eval_s * 1000:,.0f} ms per "
                       f"evaluation")
        stop = {c.stop_patience for g in self.groups for c in g if c.early_stop}
        out.append(f"estimate: {self.estimate()} if every run trains its whole budget (runs that never "
                   "generalize do)" + (f"; a run that generalizes stops {', '.join(map(str, sorted(stop)))} updates "
                                       "(stop_patience) after its validation accuracy holds 99%, so a sweep whose "
                                       "runs hold 99% at a tenth of their budget takes about a tenth of that"
                                       if stop else ""))
        out.append("nothing written: no store, no run directory, no run claimed")
        return out


def plan(configs: list[RunConfig], store_path: str | Path | None, workers: int | None = None,
         max_ensemble: int | None = None, runs_root: str | Path | None = None, threads: int | None = None,
         calibrate_updates: int = CALIBRATION_UPDATES, repeats: int = 1, known: dict | None = None) -> Plan:
    """The cost of ``run_sweep(configs, store_path, ...)`` with the same options, without running it (see the
    module doc). ``repeats``: the same groups trained that many times one after another (a tune's trials);
    ``known``: rates calibrated before, by thread count and group shape, reused and added to (several plans)."""
    store_path = Path(store_path) if store_path is not None else None
    root = Path(runs_root) if runs_root else runs_root_of(store_path) if store_path else None
    done = finished_runs(store_path) if store_path else {}
    todo = []
    for cfg in configs:
        if cfg.hash() in done:
            continue
        # finished before its store write: the sweep imports it
        summary = rundir.read_summary(run_dir_of(None, root, cfg)) if root else None
        if not (summary and summary.get("status") in FINISHED):
            todo.append(cfg)
    workers = workers or usable_cores()
    groups = make_groups(todo, workers, max_ensemble)
    share = threads or max(1, usable_cores() // min(workers, max(len(groups), 1)))
    device = resolve_device(configs[0].device).type if configs else "cpu"
    result = Plan(len(configs), len(configs) - len(todo), groups, workers, share, device, repeats=repeats)
    if groups:
        configure(resolve_device(groups[0][0].device), groups[0][0].precision)
    if workers > 1 and len(groups) > 1:  # executors.local trains in a pool of processes
        result.start_s = _start_cost()
    before = torch.get_num_threads()
    torch.set_num_threads(share)
    try:
        for g in groups:
            key = shape_key(g)
            if key not in result.rates:
                cache = {} if known is None else known  # keyed by the threads too: they change the rate
                if (share, key) not in cache:
                    cache[share, key] = calibrate(g, calibrate_updates)
                result.rates[key] = cache[share, key]
            rate = result.rates[key]
            steps = max(c.steps for c in g)
            evals = max(n_evaluations(c.steps, c.eval_every) for c in g)
            result.seconds.append(rate.build_s + steps * rate.update_s + evals * rate.eval_s + len(g) * rate.finish_s)
    finally:
        torch.set_num_threads(before)
    return result

