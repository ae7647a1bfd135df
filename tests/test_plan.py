"""What a sweep costs before it starts (``groklab.plan``, ``--plan``): the evaluations counted exactly, nothing
written, the store's finished runs skipped, and an estimate close to the sweep's measured time."""

import time

import pytest

from groklab import RunConfig
from groklab.cli import main
from groklab.plan import n_evaluations, plan
from groklab.store import Store
from groklab.sweep import run_sweep
from groklab.train import is_eval_step

SMALL = dict(task="add", modulus=11, d_model=32, n_heads=2, d_mlp=64, early_stop=False)


@pytest.mark.parametrize("steps, every", [(0, 10), (1, 10), (9, 10), (10, 10), (1234, 10), (100_000, 10),
                                          (5000, 7), (99, 200), (12_345, 50)])
def test_the_evaluations_are_counted_as_the_loop_makes_them(steps, every):
    cfg = RunConfig(task="add", modulus=7, steps=max(steps, 1), eval_every=every)
    want = sum(is_eval_step(s, cfg) for s in range(cfg.steps + 1))
    assert n_evaluations(cfg.steps, every) == want


def test_a_plan_writes_nothing_and_skips_what_the_store_holds(tmp_path, capsys):
    f = tmp_path / "s.toml"
    f.write_text('[base]\ntask = "add"\nmodulus = 7\nd_model = 16\nn_heads = 2\nd_mlp = 16\nsteps = 30\n'
                 'early_stop = false\n[axes]\nseed = [0, 1, 2]\n')
    store = tmp_path / "s.db"
    assert main(["sweep", str(f), "--store", str(store), "--plan", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "3 runs: 0 finished already (skipped), 3 to train in 1 groups; budget 90 updates" in out
    assert "nothing written" in out and sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]
    run_sweep([RunConfig(task="add", modulus=7, d_model=16, n_heads=2, d_mlp=16, steps=30, early_stop=False,
                         seed=0)], store, workers=1, progress=False)
    Store(store).close()
    before = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert main(["sweep", str(f), "--store", str(store), "--plan", "--workers", "1"]) == 0
    assert "3 runs: 1 finished already (skipped), 2 to train" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before  # not a byte changed
    assert main(["sweep", str(f), "--store", str(store), "--plan", "--ship-runs"]) == 2  # still checked
    assert main(["tune", str(tmp_path / "missing.toml"), "--store", str(store), "--plan"]) == 2


@pytest.mark.alone
def test_the_estimate_is_within_twice_the_sweeps_measured_time(tmp_path):
    """Four runs in two group shapes (two training fractions: two batch sizes), trained in this process: the
    plan, calibrated on 20 updates of each shape, against the sweep itself."""
    cfgs = [RunConfig(**SMALL, train_fraction=f, seed=s, steps=400) for f in (0.5, 0.8) for s in (0, 1)]
    estimate = plan(cfgs, tmp_path / "s.db", workers=1).wall_s
    t0 = time.perf_counter()
    run_sweep(cfgs, tmp_path / "s.db", workers=1, progress=False)
    measured = time.perf_counter() - t0
    assert measured / 2 < estimate < 2 * measured, (estimate, measured)
