"""Shared by the tests that interrupt runs and sweeps mid-way."""

import os
import signal
import time

from groklab.store import Store

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
