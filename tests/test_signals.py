"""What SIGINT and SIGTERM do (``groklab.signals``): the training loop's flag, a sweep driver's stop event and its
second signal, a worker that outlives its driver; and a real SIGTERM to ``groklab train``."""

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from helpers import SMALL, TINY, alive, groklab, sweep_cmd, wait_for_checkpoint, worker_pids, write_sweep

from groklab import rundir
from groklab.signals import DriverSignals, Interrupt, StopFlags
from groklab.store import Store


def test_the_loops_flag_is_set_and_a_handler_before_it_is_told_once():
    told = []
    before = signal.signal(signal.SIGTERM, lambda s, f: told.append(s))
    try:
        with Interrupt() as it:
            assert not it.hit
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            assert it.hit and told == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is not it._handle  # put back on the way out
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_drivers_first_signal_stops_the_workers_and_a_second_stops_waiting():
    stop = threading.Event()
    with DriverSignals(stop) as driver:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.is_set() and driver.signum == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)


def test_a_worker_stops_when_the_driver_asks_or_is_gone():
    stop = threading.Event()
    flags = StopFlags(stop)
    assert not flags()
    stop.set()
    assert flags()
    orphan = StopFlags()
    orphan.driver_gone.set()
    assert orphan()


def test_sigterm_checkpoints_marks_interrupted_and_resume_finishes(tmp_path):
    run = tmp_path / "R"
    proc = groklab("train", *TINY, "--steps", "100000", "--no-early-stop", "--checkpoint-every", "50",
                   "--out", str(run))
    wait_for_checkpoint(run, 50, proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "groklab train --resume" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert rundir.load_checkpoint(run)["step"] == summary["steps_run"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_workers_exit_when_the_sweep_driver_is_killed(tmp_path):
    f = write_sweep(tmp_path / "s.toml", {"seed": [0, 1]}, {**SMALL, "steps": 100_000, "checkpoint_every": 50})
    store = tmp_path / "s.db"
    proc = subprocess.Popen(sweep_cmd(f, store, "--workers", "2", "--ensemble", "1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, workers = time.time() + 120, []
    while time.time() < deadline and len(list((tmp_path / "s.db.runs").glob("*/checkpoint.pt"))) < 2:
        workers = worker_pids(proc.pid) or workers
        time.sleep(0.2)
    assert len(workers) == 2
    proc.kill()
    proc.wait()
    deadline = time.time() + 30
    while time.time() < deadline and any(alive(p) for p in workers):
        time.sleep(0.2)
    assert not any(alive(p) for p in workers)
    rows = Store(store).runs()
    assert sorted(r["status"] for r in rows) == ["interrupted", "interrupted"]  # checkpointed on the way out
