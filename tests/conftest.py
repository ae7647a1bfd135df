"""Shared fixtures, and how the suite shares the machine.

The suite runs in two worker processes (pytest-xdist, ``-n 2`` in pyproject's addopts): each trains with one
PyTorch thread, so the two fill the two cores without fighting over them. A test that measures the machine
itself (the thread governor reads how busy the cores are) is marked ``alone``: it runs while the other worker
waits (a shared lock that every other test holds, taken exclusively).
"""

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = os.environ.get("PYTEST_XDIST_WORKER")
torch.set_num_threads(1 if WORKER else max(1, min(2, os.cpu_count() or 1)))


def pytest_configure(config):
    config.addinivalue_line("markers", "alone: runs while no other test runs (it measures the machine)")
    config.addinivalue_line("markers", "slow: a long end-to-end check, started first so that the short tests fill "
                                       "the time beside it")


def pytest_collection_modifyitems(config, items):
    """The slow tests first, the ``alone`` ones last (where the other worker's tests are short: little to wait
    for); otherwise in order."""
    def rank(item) -> int:
        return 2 if item.get_closest_marker("alone") else 0 if item.get_closest_marker("slow") else 1

    items.sort(key=rank)


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory) -> Path:
    """A folder every worker of this test run sees: the parent of the workers' temporary folders (pytest keeps
    the last few runs' and removes older ones)."""
    base = tmp_path_factory.getbasetemp()
    path = (base.parent if WORKER else base) / "shared"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(autouse=True)
def _machine(request, shared_dir):
    """Every test holds the machine shared; an ``alone`` test holds it exclusively."""
    if not WORKER:
        yield
        return
    fd = os.open(shared_dir / "machine.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if request.node.get_closest_marker("alone") else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


@pytest.fixture
def tiny():
    """A RunConfig that really groks in seconds: x + y mod 23 on 80% of the table (memorized ~90, generalized ~700)."""
    from groklab import RunConfig

    return RunConfig(task="add", modulus=23, train_fraction=0.8, d_model=64, n_heads=4, d_mlp=128, lr=3e-3,
                     steps=3000, stop_patience=100)


@pytest.fixture(scope="session")
def quick_run(shared_dir):
    """``groklab train --preset quick --snapshots 30`` run once for the whole test run (the first worker to ask trains
    it, the other waits for it), through the command line: a run that really groks (x + y mod 23 on 80% of the
    table, memorized ~90, generalized ~800), its weights kept at ~30 log-spaced steps. Returns (run directory,
    the finished process's output). Tests read it; none may write into it."""
    shared = shared_dir
    out = shared / "quick" / "add23"
    fd = os.open(shared / "quick.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not (shared / "quick.done").exists():
            proc = subprocess.run([sys.executable, "-m", "groklab", "train", "--preset", "quick", "--snapshots", "30",
                                   "--quiet", "--out", str(out)], capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, proc.stderr
            (shared / "quick.stdout").write_text(proc.stdout)
            (shared / "quick.stderr").write_text(proc.stderr)
            (shared / "quick.done").touch()
    finally:
        os.close(fd)
    return out, subprocess.CompletedProcess([], 0, (shared / "quick.stdout").read_text(),
                                            (shared / "quick.stderr").read_text())
