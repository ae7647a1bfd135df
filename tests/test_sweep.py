import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import SMALL, alive, kill_after_first_finished, sweep_cmd, worker_pids, write_sweep

from groklab import RunConfig, rundir
from groklab.cli import main
from groklab.errors import ConfigError
from groklab.grid import load_sweep, parse_axis
from groklab.store import Store
from groklab.sweep import make_groups, run_sweep


def test_axes_from_lists_and_ranges(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path / "s.toml", {"train_fraction": "0.3:0.9:0.2", "seed": [0, 1]}),
                       {"task": parse_axis("task", "add,sub")})
    configs = sweep.configs()
    assert len(configs) == 4 * 2 * 2
    assert sorted({c.train_fraction for c in configs}) == [0.3, 0.5, 0.7, 0.9]
    assert parse_axis("steps", "100:300:100") == [100, 200, 300]


@pytest.mark.parametrize("axes, message", [
    ({"train_fracton": [0.5]}, "unknown sweep axis key 'train_fracton'"),
    ({"seed": []}, "axis seed is empty"),
    ({"train_fraction": "0.2:0.8:0.25"}, "does not reach 0.8 in whole steps"),
    ({"train_fraction": "0.2:0.8:0"}, "the step must be > 0"),
    ({"train_fraction": [0.5, 1.5]}, "train_fraction 1.5 is outside (0, 1)"),
])
def test_bad_sweep_files_are_refused_with_nothing_written(tmp_path, capsys, axes, message):
    store = tmp_path / "s.db"
    code = main(["sweep", str(write_sweep(tmp_path / "s.toml", axes)), "--store", str(store), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not store.exists() and not (tmp_path / "s.db.runs").exists()


def test_sweep_into_a_file_that_is_not_a_store_is_refused(tmp_path, capsys):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("my notes\n")
    assert main(["sweep", "--seed", "0", "--store", str(bogus), "--quiet"]) == 2
    assert "not a groklab store" in capsys.readouterr().err
    assert bogus.read_text() == "my notes\n"


def test_compatible_runs_are_grouped_into_ensembles():
    cfgs = [RunConfig(task=t, modulus=7, seed=s) for t in ("add", "sub") for s in range(10)]
    groups = make_groups(cfgs, workers=1, max_ensemble=4)
    assert sorted(len(g) for g in groups) == [2, 2, 4, 4, 4, 4]
    assert all(len({c.task for c in g}) == 1 for g in groups)
    # dropout masks are drawn per run, so dropout runs stack too
    assert [len(g) for g in make_groups([RunConfig(modulus=7, dropout=0.1, seed=s) for s in range(3)], 1, 8)] == [3]
    # a group pads every run to its largest batch: full-batch runs group with full-batch runs
    mixed = [RunConfig(modulus=23, seed=s, batch_size=b) for s in range(4) for b in ("auto", "full")]
    assert [{c.batch_size for c in g} for g in make_groups(mixed, workers=2, max_ensemble=None)] == [{"auto"}, {"full"}]


def test_sweep_writes_every_run_and_a_rerun_skips_them(tmp_path, capsys):
    f = write_sweep(tmp_path / "s.toml", {"seed": [0, 1], "task": ["add", "mul"]})
    store = tmp_path / "s.db"
    assert main(["sweep", str(f), "--store", str(store), "--workers", "1", "--quiet"]) == 0
    assert "4 runs: 0 already finished, 4 run now; 4 budget exhausted; store:" in capsys.readouterr().out
    rows = Store(store).runs()
    assert len(rows) == 4 and all(r["status"] == "budget_exhausted" and r["steps_run"] == 40 for r in rows)
    stamps = {r["config_hash"]: r["updated_at"] for r in rows}
    assert main(["sweep", str(f), "--store", str(store)]) == 0
    printed = capsys.readouterr()
    assert "4 runs: 4 already finished, 0 run now; 4 budget exhausted;" in printed.out
    assert "run/s" not in printed.err  # a finished sweep draws no bar
    assert {r["config_hash"]: r["updated_at"] for r in Store(store).runs()} == stamps
    assert main(["plot", "data-efficiency", "--store", str(store), "-o", str(tmp_path / "f.png")]) == 0
    assert main(["plot", "curves", "--store", str(store), "-o", str(tmp_path / "c.png")]) == 0
    assert main(["plot", "best-val", "--store", str(store), "-o", str(tmp_path / "b.png")]) == 0
    assert (tmp_path / "f.png").stat().st_size > 1000


def test_sigkilled_sweep_resumes_with_every_run_once_and_none_recomputed(tmp_path):
    base = {**SMALL, "steps": 400, "checkpoint_every": 50}
    f = write_sweep(tmp_path / "s.toml", {"seed": [0, 1, 2, 3]}, base)
    store = tmp_path / "s.db"
    proc = subprocess.Popen(sweep_cmd(f, store, "--workers", "1", "--ensemble", "1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    kill_after_first_finished(proc, store, tmp_path / "s.db.runs")
    before = {r["config_hash"]: r["updated_at"] for r in Store(store).runs() if r["status"] == "budget_exhausted"}
    assert 1 <= len(before) < 4
    subprocess.run(sweep_cmd(f, store, "--workers", "1"), check=True, timeout=300)
    rows = Store(store).runs()
    assert len(rows) == 4 and all(r["status"] == "budget_exhausted" and r["steps_run"] == 400 for r in rows)
    assert all(r["updated_at"] == before[r["config_hash"]] for r in rows if r["config_hash"] in before)
    for r in rows:
        steps = [m["step"] for m in Store(store).metrics(r["id"])]
        assert steps == sorted(set(steps)) and steps[-1] == 400


def test_two_sweeps_writing_one_store_at_once_lose_nothing(tmp_path):
    store = tmp_path / "s.db"
    fa = write_sweep(tmp_path / "a.toml", {"seed": [0, 1, 2]})
    fb = write_sweep(tmp_path / "b.toml", {"seed": [10, 11, 12]})
    procs = [subprocess.Popen(sweep_cmd(f, store, "--workers", "1", "--ensemble", "1")) for f in (fa, fb)]
    assert [p.wait(300) for p in procs] == [0, 0]
    rows = Store(store).runs()
    assert sorted(r["seed"] for r in rows) == [0, 1, 2, 10, 11, 12]
    assert all(len(Store(store).metrics(r["id"])) == r["steps_run"] // 10 + 1 for r in rows)


def test_two_sweeps_of_the_same_runs_on_one_store_train_each_run_once(tmp_path):
    store = tmp_path / "s.db"
    f = write_sweep(tmp_path / "a.toml", {"seed": [0, 1, 2, 3]}, base={**SMALL, "steps": 150})
    procs = [subprocess.Popen(sweep_cmd(f, store, "--workers", "1", "--ensemble", "1"), stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    ran = [int(re.search(r"(\d+) run now", o).group(1)) for o in outs]
    assert sum(ran) == 4, outs  # each run claimed by one sweep; the other skipped it as finished or busy
    for r in Store(store).runs():
        assert r["status"] == "budget_exhausted"
        lines = (Path(r["run_dir"]) / "metrics.csv").read_text().splitlines()[1:]
        assert len(lines) == len({ln.split(",")[0] for ln in lines}) == 150 // 10 + 1  # every step once


def test_a_run_running_under_a_live_process_is_left_to_it(tmp_path):
    from groklab.sweep import plan

    cfgs = [RunConfig(task="add", seed=s, **SMALL) for s in (0, 1)]
    store = Store(tmp_path / "s.db")
    assert store.claim(cfgs[0], None) == "claimed"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        store.db.execute("UPDATE runs SET owner=? WHERE seed=0", (f"{socket.gethostname()}:{other.pid}",))
        store.db.commit()
        todo, finished, busy = plan(cfgs, store, tmp_path / "runs")
        assert [c.seed for c in todo] == [1] and [c.seed for c in busy] == [0] and finished == 0
    finally:
        other.kill()
        other.wait()
    todo, _, busy = plan(cfgs, store, tmp_path / "runs")  # its owner is gone: this process takes it
    assert sorted(c.seed for c in todo) == [0, 1] and busy == []


@pytest.mark.slow
def test_ray_executor_gives_the_same_summaries_as_local(tmp_path):
    """Shared run directories (the default) and --ship-runs (the driver writes what the tasks send back): the
    same store rows as a local sweep, and every file of a run directory."""
    ray = pytest.importorskip("ray")
    cfgs = [RunConfig(task="add", seed=s, **SMALL, snapshots=3) for s in (0, 1)]
    run_sweep(cfgs, tmp_path / "local.db", workers=1, max_ensemble=1, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for name, ship in (("ray", False), ("ship", True)):
            run_sweep(cfgs, tmp_path / f"{name}.db", workers=2, max_ensemble=1, executor="ray", progress=False,
                      ship_runs=ship)
    finally:
        ray.shutdown()
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("id", "run_dir", "owner", "updated_at",  # noqa: E731
                                                                   "wall_time_s")} for r in rows]
    local = sorted(strip(Store(tmp_path / "local.db").runs()), key=lambda r: r["seed"])
    for name in ("ray", "ship"):
        assert sorted(strip(Store(tmp_path / f"{name}.db").runs()), key=lambda r: r["seed"]) == local
        for r in Store(tmp_path / f"{name}.db").runs():
            files = sorted(str(p.relative_to(r["run_dir"])) for p in Path(r["run_dir"]).rglob("*")
                           if not p.name.startswith("."))
            assert files == ["checkpoint.pt", "config.json", "curves.png", "metrics.csv", "snapshots",
                             "snapshots/step_000000000.pt", "snapshots/step_000000001.pt",
                             "snapshots/step_000000040.pt", "summary.json"]


def test_ray_executor_without_ray_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"pip install 'groklab\[ray\]'"):
        run_sweep([RunConfig(modulus=7, **{k: v for k, v in SMALL.items() if k != "modulus"})], tmp_path / "s.db",
                  executor="ray", progress=False)
    assert not (tmp_path / "s.db").exists()


def test_zipped_fields_vary_together_and_bad_zips_are_refused(tmp_path):
    from groklab.grid import load_sweep

    f = tmp_path / "z.toml"
    f.write_text('[base]\ntask = "add"\nmodulus = 7\n[zip]\nd_model = [16, 32]\nd_mlp = [64, 128]\n'
                 '[axes]\nseed = [0, 1]\n')
    cfgs = load_sweep(f).configs()
    assert sorted((c.d_model, c.d_mlp, c.seed) for c in cfgs) == [(16, 64, 0), (16, 64, 1), (32, 128, 0), (32, 128, 1)]
    f.write_text('[zip]\nd_model = [16, 32]\nd_mlp = [64]\n')
    with pytest.raises(ConfigError, match="one length; got d_model 2, d_mlp 1"):
        load_sweep(f)
    f.write_text('[zip]\nd_model = [16, 32]\n[axes]\nd_model = [8]\n')
    with pytest.raises(ConfigError, match="d_model is both an axis and in"):
        load_sweep(f)
    f.write_text('[zip]\nd_modle = [16, 32]\n')
    with pytest.raises(ConfigError, match="unknown sweep zip key 'd_modle'"):
        load_sweep(f)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_one_ctrl_c_or_sigterm_stops_the_whole_sweep(tmp_path, how):
    """Ctrl-C in a terminal (SIGINT to the process group) or SIGTERM to the driver alone: the running runs
    checkpoint, the queued ones never start, every worker exits, the store says interrupted, exit 130 / 143."""
    import signal

    f = write_sweep(tmp_path / "s.toml", {"seed": [0, 1, 2, 3, 4, 5]},
                    {**SMALL, "steps": 100_000, "checkpoint_every": 50})
    store = tmp_path / "s.db"
    proc = subprocess.Popen(sweep_cmd(f, store, "--workers", "2", "--ensemble", "1"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline, workers = time.time() + 120, []
    while time.time() < deadline and len(list((tmp_path / "s.db.runs").glob("*/checkpoint.pt"))) < 2:
        workers = worker_pids(proc.pid) or workers
        time.sleep(0.2)
    assert len(workers) == 2
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (130 if how == "ctrl-c" else 143), err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert not any(alive(p) for p in workers)
    rows = Store(store).runs()
    assert len(rows) == 6 and {r["status"] for r in rows} == {"interrupted"}
    started = [d for d in (tmp_path / "s.db.runs").iterdir() if (d / "checkpoint.pt").exists()]
    assert len(started) == 2  # the four queued runs never started


def test_a_sweep_finds_an_interrupted_run_where_its_store_row_says(tmp_path):
    """A store written by a groklab that named run directories otherwise: the run resumes from the checkpoint in
    the directory its row records, not from step 0 in a new one."""
    from helpers import train_interrupted

    cfg = RunConfig(task="add", seed=0, **{**SMALL, "steps": 100, "checkpoint_every": 20})
    legacy = tmp_path / "s.db.runs" / "add-f0.5-s0-old-name"
    first = train_interrupted(cfg, legacy, after=50)
    store = Store(tmp_path / "s.db")
    store.claim(cfg, legacy)
    store.release([cfg.hash()])
    before = {r["step"]: r["elapsed_s"] for r in rundir.read_metrics(legacy)}
    run_sweep([cfg], tmp_path / "s.db", workers=1, progress=False)
    row = Store(tmp_path / "s.db").runs()[0]
    assert row["status"] == "budget_exhausted" and row["run_dir"] == str(legacy)
    after = {r["step"]: r["elapsed_s"] for r in rundir.read_metrics(legacy)}
    assert first.summary["steps_run"] == 50 and after[40] == before[40]  # kept, not recomputed
    assert [d.name for d in (tmp_path / "s.db.runs").iterdir()] == ["add-f0.5-s0-old-name"]


def test_an_executor_is_one_function_and_one_registry_entry(tmp_path):
    """The extension point docs/architecture.md describes: a registered executor trains a sweep's groups."""
    from groklab.executors import EXECUTORS, Executor
    from groklab.executors.local import train_into_store
    from groklab.signals import StopFlags

    seen = []

    def serial(work):
        for g in work.groups:
            seen.append(len(g))
            train_into_store([c.to_dict() for c in g], work.dirs(g), str(work.store_path), 1, StopFlags(work.stop))

    EXECUTORS.register(Executor("serial", "one group after another, in this process", serial))
    try:
        cfgs = [RunConfig(task="add", seed=s, **SMALL) for s in (0, 1, 2)]
        counts = run_sweep(cfgs, tmp_path / "s.db", executor="serial", max_ensemble=2, progress=False)
    finally:
        EXECUTORS.unregister("serial")
    assert counts["ran"] == 3 and sorted(seen) == [1, 2]
    assert all(r["status"] == "budget_exhausted" for r in Store(tmp_path / "s.db").runs())
    with pytest.raises(ConfigError, match="executor 'serial' is not allowed; allowed: local, ray"):
        run_sweep(cfgs, tmp_path / "t.db", executor="serial", progress=False)
