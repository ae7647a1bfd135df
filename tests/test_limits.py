"""Sizes that cannot fit are refused from the config alone, in one line, before anything is allocated."""

import tracemalloc

import pytest

from groklab import limits
from groklab.cli import main
from groklab.config import RunConfig
from groklab.errors import ConfigError
from groklab.tasks import check_task, get_task, make_table, n_symbols


@pytest.mark.parametrize("args, says", [
    (["--task", "add", "--modulus", "1000003"], "task 'add' with modulus 1,000,003: its table of "
                                                "1,000,006,000,009 equations needs about 116.4 TiB of memory"),
    (["--task", "custom", "--expression", "x^3 + y", "--modulus", "1000003"], "task 'custom' with modulus 1,000,003"),
    (["--task", "parity", "--n-examples", "10000000000"], "n_examples 10,000,000,000: its table of 10,000,000,000"),
    (["--d-model", "1000000"], "model 'transformer' with n_layers 2, d_model 1,000,000"),
    (["--task", "parity", "--n-bits", "1024", "--n-examples", "200000", "--batch-size", "full"],
     "and batches of 100,000 needs about"),
])
def test_a_size_that_cannot_fit_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, args, says):
    assert main(["train", *args, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and "this machine has" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_a_sweep_with_one_run_too_large_writes_no_store(tmp_path, capsys):
    assert main(["sweep", "--task", "add", "--modulus", "7,1000003", "--store", str(tmp_path / "s.db")]) == 2
    assert "modulus 1,000,003" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_limit_is_this_machines_memory(monkeypatch):
    check_task("add", 3001)  # 9M equations, about 1.1 GiB: fits the machines this runs on
    monkeypatch.setenv("GROKLAB_MEMORY_BYTES", str(2**30))
    with pytest.raises(ConfigError, match="modulus 3,001: .* this machine has 1.0 GiB"):
        check_task("add", 3001)
    check_task("add", 2003)
    with pytest.raises(ConfigError, match="model 'mlp' with n_layers 2, d_model 128, d_mlp 4,000,000"):
        RunConfig(task="add", modulus=23, model="mlp", d_mlp=4_000_000)


@pytest.mark.parametrize("task, modulus, params", [
    ("add", 211, {}), ("div", 211, {}), ("x2_xy_y2_x", 211, {}),
    ("custom", 211, {"expression": "x^3 + x*y^2 + y / (x + 1)"}),
    ("parity", 2, {"n_bits": 64, "parity_k": 3, "n_examples": 5000, "seed": 0}),
    ("group", 2, {"group": "S4xZ5", "group_op": "conj"}),
])
def test_the_estimates_bound_what_building_a_table_takes(task, modulus, params):
    """The refusals rest on estimates: each is at least the measured peak of building the table (NumPy's
    allocations, as tracemalloc sees them)."""
    from groklab.groups import get_group
    from groklab.tasks.custom import _table
    from groklab.tasks.parity import parity_data

    for cached in (_table, parity_data, get_group):  # built afresh here, whatever ran before
        cached.cache_clear()
    t = get_task(task)
    full = {"modulus": modulus, **params}
    tracemalloc.start()
    try:
        x, _, _ = make_table(task, modulus, **params)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    n = n_symbols(task, modulus, **params)
    rows = t.size(full) if t.size else n * (n - 1 if t.y_nonzero else n)
    assert len(x) <= rows
    bound = t.footprint(full) if t.footprint else rows * limits.BYTES_PER_EQUATION
    assert 1000 < peak <= bound, (peak, bound)
