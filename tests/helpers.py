"""Shared by the tests that start groklab in processes of its own and interrupt runs and sweeps mid-way."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from groklab import rundir
from groklab.errors import ConfigError
from groklab.store import Store

# x + y mod 23 on 80% of the table, as flags: a run that groks in seconds (conftest's tiny)
TINY = ["--task", "add", "--modulus", "23", "--train-fraction", "0.8", "--d-model", "64", "--d-mlp", "128",
        "--lr", "3e-3", "--quiet"]
SMALL = {"modulus": 7, "d_model": 32, "d_mlp": 64, "steps": 40, "early_stop": False}  # a sweep's runs, a second each


def groklab(*args, **kw):
    """``groklab ARGS`` in a process of its own, its output captured."""
    return subprocess.Popen([sys.executable, "-m", "groklab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def wait_for_checkpoint(run, min_step, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            if (run / "checkpoint.pt").exists() and rundir.load_checkpoint(run)["step"] >= min_step:
                return
        except ConfigError:
            pass  # being replaced right now
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


def strip(rows):
    """Metrics rows without their wall-clock column (the rest is bitwise reproducible)."""
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]


def write_sweep(path, axes, base=SMALL):
    lines = ["[base]"] + [f"{k} = {json.dumps(v)}" for k, v in base.items()] + ["[axes]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in axes.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def sweep_cmd(f, store, *extra):
    return [sys.executable, "-m", "groklab", "sweep", str(f), "--store", str(store), "--quiet", *extra]


def worker_pids(driver: int) -> list[int]:
    """The driver's multiprocessing workers (not its resource tracker), from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmd = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == driver and b"spawn_main" in cmd:
            pids.append(int(stat.parent.name))
    return pids


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"

FINISHED_OK = ("budget_exhausted", "generalized")


def kill_after_first_finished(proc, store, runs_dir, timeout=240.0) -> None:
    """SIGKILL the process group of ``proc`` once one run of ``store`` has finished and another has a checkpoint."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if store.exists():
            try:
                done = [r for r in Store(store).runs() if r["status"] in FINISHED_OK]
            except Exception:
                continue
            if done and len(list(runs_dir.glob("*/checkpoint.pt"))) > len(done):
                break
    else:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        raise AssertionError(f"no run finished with another checkpointed within {timeout:.0f} s "
                             f"(exit status {proc.returncode})")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def train_interrupted(cfg, run_dir, after: int):
    """Prepare ``run_dir`` and train ``cfg`` there until ``after`` updates, then interrupt it as a signal would
    (runs checkpoint, status interrupted); returns its RunResult."""
    from groklab import rundir
    from groklab.train import train_group

    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > after

    rundir.prepare(run_dir, cfg)
    return train_group([cfg], [run_dir], stop_flag=stop)[0]
