import os

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def tiny():
    """A RunConfig that really groks in seconds: x + y mod 23 on 80% of the table (memorized ~90, generalized ~700)."""
    from groklab import RunConfig

    return RunConfig(task="add", modulus=23, train_fraction=0.8, d_model=64, n_heads=4, d_mlp=128, lr=3e-3,
                     steps=3000, stop_patience=100)


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    """``groklab train --preset quick --snapshots 30`` run once for the session, through the command line: a run
    that really groks (x + y mod 23 on 80% of the table, memorized ~90, generalized ~800), its weights kept at
    ~30 log-spaced steps. Returns (run directory, the finished process). Tests read it; none may write into it."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("quick") / "add23"
    proc = subprocess.run([sys.executable, "-m", "groklab", "train", "--preset", "quick", "--snapshots", "30",
                           "--quiet", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out, proc
