"""Sweeps: grids of run configs, and the executors that run them into a store.

A sweep file is TOML::

    preset = "paper"                      # optional, as for `groklab train`
    [base]                                # RunConfig fields shared by every run
    task = "add"
    modulus = 23
    [axes]                                # the grid: every combination is one run
    task = ["add", "sub"]
    train_fraction = "0.3:0.9:0.1"        # start:stop:step, stop included
    seed = [0, 1, 2]

The same axes can be given on the command line (``--train-fraction 0.3:0.9:0.1
--seed 0,1,2``). Every config is validated before anything is written.

Running a sweep again skips the runs the store holds as finished and resumes
the interrupted ones from their checkpoints. A comparison (``Comparison``,
``groklab compare``) is a sweep file with named ``[variants]`` of the base. Compatible runs (same task and
architecture) train together as one stacked model (``groklab.train.train_group``).
Executors: in-process, local worker processes, or Ray tasks whose results the
driver writes to the store (no shared file system needed).
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from . import rundir
from .config import FIELDS, RunConfig, check_keys, read_toml
from .errors import ConfigError
from .events import of_rows
from .loggers import check_available
from .engine import GroupSpec
from .rundir import FINISHED
from .runtime import resolve_device
from .store import Store
from .train import SignalTrap, bar_pace, train_group

_SWEEP_KEYS = {"preset", "base", "axes", "zip"}
_COMPARE_KEYS = _SWEEP_KEYS | {"variants"}


def _parse_scalar(name: str, text: str) -> Any:
    typ = FIELDS[name].type
    text = text.strip()
    try:
        if typ == "int":
            return int(text)
        if typ == "float":
            return float(text)
        if typ == "bool":
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        if name == "batch_size" and text not in ("auto", "full"):
            return int(text)
    except ValueError:
        raise ConfigError(f"axis {name}: {text!r} is not a valid {typ}") from None
    return text


def expand_range(name: str, start, stop, step) -> list:
    """start:stop:step with the stop included; the step must be positive and fit a whole number of times."""
    if FIELDS[name].type not in ("int", "float"):
        raise ConfigError(f"axis {name}: a range needs a numeric field, {name} is {FIELDS[name].type}")
    if not step > 0:
        raise ConfigError(f"axis {name}: range {start}:{stop}:{step} has step {step}; the step must be > 0")
    if stop < start:
        raise ConfigError(f"axis {name}: range {start}:{stop}:{step} ends before it starts")
    n = (stop - start) / step
    if abs(n - round(n)) > 1e-6:
        raise ConfigError(f"axis {name}: range {start}:{stop}:{step} does not reach {stop} in whole steps of {step}")
    values = [start + i * step for i in range(int(round(n)) + 1)]
    return [int(v) for v in values] if FIELDS[name].type == "int" else [round(v, 10) for v in values]


def parse_axis(name: str, text: str) -> list:
    """A command-line axis: ``a,b,c`` or ``start:stop:step``."""
    if name not in FIELDS:
        check_keys({name: None}, "axis")
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise ConfigError(f"axis {name}: range {text!r} must be start:stop:step")
        return expand_range(name, *(_parse_scalar(name, p) for p in parts))
    values = [_parse_scalar(name, v) for v in text.split(",") if v.strip()]
    if not values:
        raise ConfigError(f"axis {name} is empty")
    return values


def _axis_values(name: str, value) -> list:
    if isinstance(value, str) and ":" in value:
        return parse_axis(name, value)
    if isinstance(value, dict):
        if set(value) != {"start", "stop", "step"}:
            raise ConfigError(f"axis {name}: a range table needs exactly start, stop, step (got {', '.join(value)})")
        return expand_range(name, value["start"], value["stop"], value["step"])
    if isinstance(value, list):
        if not value:
            raise ConfigError(f"axis {name} is empty")
        return value
    return [value]


@dataclass
class Sweep:
    """A base config, axes (every combination is a run) and optionally ``zipped``: fields whose lists have one
    length and vary together, as one more axis (``[zip] d_model = [32, 64], d_mlp = [128, 256]``: two sizes)."""

    base: dict
    axes: dict[str, list]
    preset: str | None = None
    zipped: dict[str, list] | None = None

    def configs(self) -> list[RunConfig]:
        """Every combination of the axes (and rows of the zipped fields) over the base, validated; duplicates
        removed."""
        names = list(self.axes)
        rows = [dict(zip(self.zipped, vals)) for vals in zip(*self.zipped.values())] if self.zipped else [{}]
        out, seen = [], set()
        for combo, row in itertools.product(itertools.product(*(self.axes[n] for n in names)), rows):
            cfg = RunConfig.from_dict({**self.base, **row, **dict(zip(names, combo))}, preset=self.preset)
            if cfg.hash() not in seen:
                seen.add(cfg.hash())
                out.append(cfg)
        return out


def load_sweep(path: str | Path, overrides: dict[str, list] | None = None, data: dict | None = None) -> Sweep:
    if data is None:
        data = read_toml(path) if path else {}
        unknown = set(data) - _SWEEP_KEYS
        if unknown:
            raise ConfigError(f"sweep file {str(path)!r}: unknown key {sorted(unknown)[0]!r}; "
                              "allowed: base, axes, preset")
    base = data.get("base", {})
    raw_axes = data.get("axes", {})
    if not isinstance(base, dict) or not isinstance(raw_axes, dict):
        raise ConfigError(f"sweep file {str(path)!r}: base and axes must be tables")
    check_keys(base, "sweep base")
    check_keys(raw_axes, "sweep axis")
    axes = {k: _axis_values(k, v) for k, v in raw_axes.items()}
    axes.update(overrides or {})
    zipped = data.get("zip") or None
    if zipped is not None:
        if not isinstance(zipped, dict) or not all(isinstance(v, list) and v for v in zipped.values()):
            raise ConfigError(f"sweep file {str(path)!r}: [zip] must hold non-empty lists, e.g. d_model = [32, 64]")
        check_keys(zipped, "sweep zip")
        lengths = {k: len(v) for k, v in zipped.items()}
        if len(set(lengths.values())) > 1:
            raise ConfigError(f"sweep file {str(path)!r}: the [zip] lists must have one length; got "
                              + ", ".join(f"{k} {n}" for k, n in lengths.items()))
        both = set(zipped) & set(axes)
        if both:
            raise ConfigError(f"sweep file {str(path)!r}: {sorted(both)[0]} is both an axis and in [zip]")
    return Sweep(base, axes, data.get("preset"), zipped)


# -- comparisons of named variants -------------------------------------------------------


@dataclass
class Comparison:
    """Named variants (each a set of RunConfig overrides) over one base config and grid (a ``Sweep``).

    A comparison file is a sweep file with a ``[variants]`` table::

        preset = "paper"
        [base]
        task = "s5_mul"
        optimizer = "adam"
        weight_decay = 0.0
        [axes]
        train_fraction = [0.3, 0.5, 0.7]
        seed = [0, 1, 2]
        [variants]
        "Adam" = {}
        "AdamW, weight decay 1" = { optimizer = "adamw", weight_decay = 1.0 }
        "dropout 0.1" = { dropout = 0.1 }

    Variant ``v`` runs base <- v's overrides, for every point of the axes. A variant may not set an
    axis field. Variants whose configs coincide share their runs.
    """

    sweep: Sweep
    variants: dict[str, dict]

    def configs(self) -> dict[str, list[RunConfig]]:
        """Each variant's configs (validated), in file order."""
        out = {}
        for name, over in self.variants.items():
            try:
                sweep = Sweep({**self.sweep.base, **over}, self.sweep.axes, self.sweep.preset, self.sweep.zipped)
                out[name] = sweep.configs()
            except ConfigError as e:
                raise ConfigError(f"variant {name!r}: {e}") from None
        return out

    def all_configs(self) -> list[RunConfig]:
        """Every distinct config of every variant, once."""
        seen, out = set(), []
        for cfgs in self.configs().values():
            for c in cfgs:
                if c.hash() not in seen:
                    seen.add(c.hash())
                    out.append(c)
        return out


def load_comparison(path: str | Path, overrides: dict[str, list] | None = None) -> Comparison:
    data = read_toml(path)
    where = f"comparison file {str(path)!r}"
    unknown = set(data) - _COMPARE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}; allowed: base, axes, preset, variants")
    variants = data.pop("variants", None)
    if not isinstance(variants, dict) or not variants:
        raise ConfigError(f"{where} needs a [variants] table of named config overrides, e.g. "
                          "\"AdamW\" = { optimizer = \"adamw\" }")
    sweep = load_sweep(path, overrides, data=data)
    for name, over in variants.items():
        if not isinstance(over, dict):
            raise ConfigError(f"{where}: variant {name!r} must be a table of config overrides, got {over!r}")
        check_keys(over, f"variant {name!r}")
        clash = sorted(set(over) & set(sweep.axes))
        if clash:
            raise ConfigError(f"{where}: variant {name!r} sets {clash[0]}, an axis of the comparison; "
                              "put it in the base or remove it from the axes")
    return Comparison(sweep, variants)


def compare_results(comparison: Comparison, store: Store) -> dict[str, list[dict]]:
    """Each variant's finished runs in ``store`` (store rows with their config's ``steps`` budget)."""
    rows = {r["config_hash"]: r for r in store.runs() if r["status"] in FINISHED}
    return {name: [rows[c.hash()] for c in cfgs if c.hash() in rows]
            for name, cfgs in comparison.configs().items()}


def compare_table(results: dict[str, list[dict]]):
    """One row per (variant, training fraction): runs, median and range of the best validation accuracy,
    runs that reached 99% validation accuracy and the median step they did (a pandas DataFrame)."""
    import numpy as np
    import pandas as pd

    out = []
    for name, rows in results.items():
        by_frac: dict[float, list[dict]] = {}
        for r in rows:
            by_frac.setdefault(float(r["train_fraction"]), []).append(r)
        for frac in sorted(by_frac):
            rs = by_frac[frac]
            best = np.array([r["best_val_acc"] or 0.0 for r in rs])
            reached = [r["step_val_acc_99"] for r in rs if r["step_val_acc_99"] is not None]
            out.append({"variant": name, "train_fraction": frac, "runs": len(rs),
                        "seeds": ",".join(str(r["seed"]) for r in sorted(rs, key=lambda r: r["seed"])),
                        "best_val_median": float(np.median(best)), "best_val_min": float(best.min()),
                        "best_val_max": float(best.max()), "generalized": len(reached),
                        "step_val99_median": float(np.median(reached)) if len(reached) == len(rs) else None})
    return pd.DataFrame(out)


# -- planning --------------------------------------------------------------------------


def run_dir_for(runs_root: Path, cfg: RunConfig) -> Path:
    return runs_root / f"{cfg.task}-f{cfg.train_fraction:g}-s{cfg.seed}-{cfg.hash()[:10]}"


def plan(configs: list[RunConfig], store: Store, runs_root: Path) -> tuple[list[RunConfig], int, list[RunConfig]]:
    """The runs this sweep trains, claimed in the store (``Store.claim``); how many are already finished (files
    of runs that finished before their store write are imported, not recomputed); and the runs another live
    process is training, left to it."""
    todo, finished, busy = [], 0, []
    for cfg in configs:
        row = store.get(cfg)
        if row and row["status"] in FINISHED:
            finished += 1
            continue
        rd = run_dir_for(runs_root, cfg)
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


# -- executors -------------------------------------------------------------------------


# set in a worker process whose driver has died: its runs checkpoint, are marked interrupted, and it exits
_DRIVER_GONE = threading.Event()
_STOP = None  # in a worker: the driver's stop event (one Ctrl-C or SIGTERM to the driver sets it)
ORPHAN_GRACE_S = 30.0  # what an orphaned worker gets to checkpoint before it exits regardless


class SweepInterrupted(KeyboardInterrupt):
    """A sweep stopped by SIGINT or SIGTERM after its runs checkpointed (``signum``: which)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stopping() -> bool:
    return _DRIVER_GONE.is_set() or (_STOP is not None and _STOP.is_set())


class _DriverSignals(SignalTrap):
    """In the driver, while a sweep runs: the first SIGINT / SIGTERM asks every worker to checkpoint and stop
    (``stop`` is set) and is remembered in ``signum``; a second one stops waiting (``KeyboardInterrupt``)."""

    def __init__(self, stop):
        super().__init__()
        self.stop, self.signum = stop, None

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt  # a second signal: do not wait for the workers any longer
        self.signum = signum
        self.stop.set()


def _init_worker(driver_pid: int, stop) -> None:
    """Worker initializer: the driver's stop event, SIGINT left to the driver (a terminal's Ctrl-C reaches the
    whole process group; between runs a worker would die of it with a traceback; while training, the loop
    checkpoints on it), and the watch on the driver."""
    global _STOP
    _STOP = stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _watch_driver(driver_pid)


def _watch_driver(driver_pid: int, poll_s: float = 0.5) -> None:
    """A thread that notices the driver's death (this process is re-parented) and then stops the worker, so
    that a SIGKILLed sweep leaves no process behind."""
    def watch():
        while os.getppid() == driver_pid:
            time.sleep(poll_s)
        _DRIVER_GONE.set()  # the training loop interrupts its runs at the next update
        time.sleep(ORPHAN_GRACE_S)
        os._exit(1)

    threading.Thread(target=watch, name="groklab-driver-watch", daemon=True).start()


def _run_group_local(cfg_dicts: list[dict], run_dirs: list[str], store_path: str, threads: int) -> list[dict]:
    """Worker: train one group, writing each run to the store as it ends."""
    if _DRIVER_GONE.is_set():  # a group still queued when the driver died: leave it (and the store) alone
        os._exit(1)
    if _stopping():  # queued when the sweep was stopped: not started (the driver marks its runs interrupted)
        return []
    import torch

    torch.set_num_threads(threads)
    cfgs = [RunConfig.from_dict(d) for d in cfg_dicts]
    store = Store(store_path)
    for cfg, rd in zip(cfgs, run_dirs):
        Path(rd).mkdir(parents=True, exist_ok=True)
        rundir.atomic_json(Path(rd) / "config.json", cfg.to_dict())
        store.start_run(cfg, rd)
    results = train_group(cfgs, [Path(r) for r in run_dirs], resume=True, stop_flag=_stopping,
                          on_finish=lambda r: store.finish_run(r.config, r.summary, r.history, r.run_dir))
    if _DRIVER_GONE.is_set():
        os._exit(1)  # nobody is left to take the result
    store.close()
    return [r.summary for r in results]


def _run_group_remote(cfg_dicts: list[dict], threads: int) -> list[tuple[dict, dict, list]]:
    """Ray task: train one group on the worker; return configs, summaries and histories to the driver."""
    import torch

    torch.set_num_threads(threads)
    results = train_group([RunConfig.from_dict(d) for d in cfg_dicts])
    return [(r.config.to_dict(), r.summary, r.history) for r in results]


def _progress(total: int, finished: int):
    from tqdm.auto import tqdm

    return tqdm(total=total + finished, initial=finished, unit="run", dynamic_ncols=True, **bar_pace())


def run_sweep(configs: list[RunConfig], store_path: str | Path, workers: int | None = None,
              executor: str = "local", address: str | None = None, max_ensemble: int | None = None,
              runs_root: str | Path | None = None, progress: bool = True) -> dict:
    """Run every config not yet finished into the store; returns counts (total, skipped, ran, busy: left to
    another process training them). SIGINT / SIGTERM: the runs checkpoint, then ``SweepInterrupted``."""
    if executor not in ("local", "ray"):
        raise ConfigError(f"executor {executor!r} is not allowed; allowed: local, ray")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers {workers} is too small; must be >= 1")
    if executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError("the Ray executor needs Ray: pip install 'groklab[ray]'") from None
    for spec in {c.logger for c in configs}:
        check_available(spec)
    for c in configs:
        resolve_device(c.device)
    store_path = Path(store_path)
    store = Store(store_path)
    runs_root = Path(runs_root) if runs_root else store_path.with_name(store_path.name + ".runs")
    store.mark_stale()
    todo, finished, busy = plan(configs, store, runs_root)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1  # taskset
    workers = workers or cores
    groups = make_groups(todo, workers, max_ensemble)
    threads = max(1, cores // min(workers, max(len(groups), 1)))
    bar = _progress(len(todo), finished) if progress else None
    hashes = {c.hash() for c in todo}
    global _STOP
    ctx = get_context("spawn")
    stop = ctx.Event()
    try:
        with _DriverSignals(stop) as signals:
            if executor == "ray":
                _execute_ray(groups, store, threads, address, bar, stop)
            elif workers == 1 or len(groups) <= 1:
                _STOP = stop  # this process trains the groups itself
                for g in groups:
                    if stop.is_set():
                        break
                    _run_group_local([c.to_dict() for c in g], [str(run_dir_for(runs_root, c)) for c in g],
                                     str(store_path), threads)
                    _update(bar, store, hashes)
            else:
                _execute_processes(groups, store, store_path, runs_root, workers, threads, bar, hashes, ctx, stop)
    finally:
        _STOP = None
        if bar is not None:
            bar.close()
        store.release(hashes)  # claimed runs this sweep did not finish (stopped, or a worker failed)
    store.close()
    if signals.signum is not None:
        raise SweepInterrupted(signals.signum)
    return {"total": len(configs), "skipped": finished, "ran": len(todo), "busy": len(busy)}


def _update(bar, store: Store, hashes: set[str]) -> None:
    if bar is None:
        return
    rows = [r for r in store.runs() if r["config_hash"] in hashes]
    done = sum(r["status"] in FINISHED for r in rows)
    running = sum(r["status"] == "running" for r in rows)
    bar.n = bar.initial + done
    bar.set_postfix_str(f"running {running}, left {len(hashes) - done - running}", refresh=False)
    bar.update(0)  # redraws at the bar's pace (bar_pace), not at every poll


def _execute_processes(groups, store, store_path, runs_root, workers, threads, bar, hashes, ctx, stop) -> None:
    pool = ProcessPoolExecutor(max_workers=min(workers, len(groups)), mp_context=ctx,
                               initializer=_init_worker, initargs=(os.getpid(), stop))
    try:
        pending = {pool.submit(_run_group_local, [c.to_dict() for c in g],
                               [str(run_dir_for(runs_root, c)) for c in g], str(store_path), threads)
                   for g in groups}
        while pending:
            if stop.is_set():  # queued groups never start; running ones checkpoint and return
                for f in pending:
                    f.cancel()
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for f in done:
                if not f.cancelled():
                    f.result()  # re-raise a worker's error
            _update(bar, store, hashes)
    except BaseException:  # a worker's error, or a second Ctrl-C: the workers are stopped, not waited for
        for p in list(getattr(pool, "_processes", {}).values()):
            p.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _execute_ray(groups, store: Store, threads: int, address: str | None, bar, stop) -> None:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 **({} if address else {"num_cpus": os.cpu_count()}))
    try:
        remote = ray.remote(num_cpus=threads)(_run_group_remote)
        pending = []
        for g in groups:
            for c in g:
                store.start_run(c, None)
            pending.append(remote.remote([c.to_dict() for c in g], threads))
        while pending:
            if stop.is_set():  # Ray tasks are cancelled (they keep no run directory: they start again next time)
                for ref in pending:
                    ray.cancel(ref, force=True)
                break
            done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
            if not done:
                continue
            for cfg_dict, summary, history in ray.get(done[0]):
                store.finish_run(RunConfig.from_dict(cfg_dict), summary, history)
                if bar is not None:
                    bar.update(1)
    finally:
        if started_here:
            ray.shutdown()
