"""The local executor: a sweep's groups trained in this process, or in a pool of worker processes.

Each group trains as one stacked model (``train.train_group``) into its run directories, resuming runs from their
checkpoints, and writes each run to the store as it ends. With one worker, or one group, this process trains
them itself; otherwise a pool of ``spawn``ed processes does, each with ``work.threads`` PyTorch threads.

A worker leaves SIGINT to the driver (a terminal's Ctrl-C reaches the whole process group; between runs a worker
would die of it with a traceback; while training, its loop checkpoints on the driver's stop event), and watches
the driver: when the driver dies (SIGKILL), its runs checkpoint and the worker exits, leaving no process behind.
"""

from __future__ import annotations

import os
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path

from .. import rundir
from ..config import RunConfig
from ..runtime import set_threads
from ..signals import StopFlags, watch_driver
from ..store import Store
from ..train import train_group
from .spec import Executor, Work

# in a worker process: why to stop (the driver's stop event, the driver's death); set by _init_worker
_WORKER = StopFlags()


def train_into_store(cfg_dicts: list[dict], run_dirs: list[str], store_path: str, threads: int,
                     stop_flag, fixed_threads: int | None = None) -> list[dict]:
    """Train one group into its run directories, writing each run to the store as it ends; returns the
    summaries. ``threads``: the most CPU threads it takes (as many as other processes leave free), or
    ``fixed_threads``. ``stop_flag()`` True interrupts the runs (they checkpoint)."""
    if stop_flag():  # queued when the sweep was stopped: not started (the driver marks its runs interrupted)
        return []
    set_threads(fixed_threads, cap=threads)
    cfgs = [RunConfig.from_dict(d) for d in cfg_dicts]
    store = Store(store_path)
    try:
        for cfg, rd in zip(cfgs, run_dirs):
            Path(rd).mkdir(parents=True, exist_ok=True)
            rundir.atomic_json(Path(rd) / "config.json", cfg.to_dict())
            store.start_run(cfg, rd)
        results = train_group(cfgs, [Path(r) for r in run_dirs], resume=True, stop_flag=stop_flag,
                              on_finish=lambda r: store.finish_run(r.config, r.summary, r.history, r.run_dir))
    finally:
        store.close()
    return [r.summary for r in results]


def _init_worker(driver_pid: int, stop) -> None:
    """Worker initializer: the driver's stop event, SIGINT left to the driver, the watch on the driver."""
    _WORKER.stop = stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch_driver(driver_pid, _WORKER)


def _worker_group(cfg_dicts: list[dict], run_dirs: list[str], store_path: str, threads: int,
                  fixed_threads: int | None) -> list[dict]:
    """In a worker process: ``train_into_store`` under the worker's stop flags."""
    if _WORKER.driver_gone.is_set():  # a group still queued when the driver died: leave it (and the store) alone
        os._exit(1)
    out = train_into_store(cfg_dicts, run_dirs, store_path, threads, _WORKER, fixed_threads)
    if _WORKER.driver_gone.is_set():
        os._exit(1)  # nobody is left to take the result
    return out


def execute(work: Work) -> None:
    """Train the groups in this process (one worker, or one group), else in a pool of worker processes."""
    if work.workers == 1 or len(work.groups) <= 1:
        flags = StopFlags(work.stop)
        for g in work.groups:
            if flags():
                break
            train_into_store([c.to_dict() for c in g], work.dirs(g), str(work.store_path), work.threads, flags,
                             work.fixed_threads)
            work.tick()
        return
    _pool(work)


def _pool(work: Work) -> None:
    pool = ProcessPoolExecutor(max_workers=min(work.workers, len(work.groups)), mp_context=get_context("spawn"),
                               initializer=_init_worker, initargs=(os.getpid(), work.stop))
    try:
        pending = {pool.submit(_worker_group, [c.to_dict() for c in g], work.dirs(g), str(work.store_path),
                               work.threads, work.fixed_threads) for g in work.groups}
        while pending:
            if work.stop.is_set():  # queued groups never start; running ones checkpoint and return
                for f in pending:
                    f.cancel()
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for f in done:
                if not f.cancelled():
                    f.result()  # re-raise a worker's error
            work.tick()
    except BaseException:  # a worker's error, or a second Ctrl-C: the workers are stopped, not waited for
        for p in list(getattr(pool, "_processes", {}).values()):
            p.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


LOCAL = Executor("local", "this process, or a pool of worker processes on this machine", execute)
