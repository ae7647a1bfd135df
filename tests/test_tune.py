"""`groklab tune`: an Optuna search for the fewest updates to 99% validation accuracy, replayed from the store."""

import pytest

pytest.importorskip("optuna")

from groklab import RunConfig  # noqa: E402
from groklab.cli import main  # noqa: E402
from groklab.store import Store  # noqa: E402
from groklab.tune import load_tuning, objective_value, tune  # noqa: E402

FILE = """
[base]
task = "add"
modulus = 11
train_fraction = 0.8
model = "mlp"
d_model = 32
d_mlp = 64
weight_decay = 1.0
steps = 2000
stop_patience = 20
[search]
lr = { low = 1e-2, high = 3e-2, log = true }
warmup_steps = { choices = [10, 30] }
[tune]
trials = 2
seeds = [0, 1]
"""


def test_tune_searches_writes_every_trial_to_the_store_and_replays(tmp_path, capsys):
    f = tmp_path / "t.toml"
    f.write_text(FILE)
    tuning = load_tuning(f)
    outcome = tune(tuning, tmp_path / "t.db", workers=1)
    best, value, table = outcome.best, outcome.value, outcome.table
    assert len(table) == 2 and set(table.columns) >= {"trial", "lr", "warmup_steps", "objective"}
    assert value == table["objective"].min() and best["warmup_steps"] in (10, 30) and 1e-2 <= best["lr"] <= 3e-2
    assert len(Store(tmp_path / "t.db").runs()) == 2 * 2
    # the objective is the median step to 99% over the seeds, read from the store
    rows = [Store(tmp_path / "t.db").get(tuning.config(best, s)) for s in (0, 1)]
    assert objective_value(rows) == value
    # the same command again replays the same trials from the store
    assert main(["tune", str(f), "--store", str(tmp_path / "t.db"), "--quiet", "--workers", "1", "-o", str(tmp_path / "best.toml")]) == 0
    out = capsys.readouterr().out
    assert "2 trials x 2 seeds" in out and "99% validation accuracy held from step" in out
    assert len(Store(tmp_path / "t.db").runs()) == 4
    best_cfg = RunConfig.from_toml(tmp_path / "best.toml")
    assert best_cfg.lr == pytest.approx(best["lr"]) and best_cfg.warmup_steps == best["warmup_steps"]


def test_a_search_where_nothing_reached_99_names_no_best_and_writes_none(tmp_path, capsys):
    f = tmp_path / "t.toml"
    f.write_text(FILE.replace("steps = 2000", "steps = 20"))  # 20 updates: no trial generalizes
    args = ["tune", str(f), "--store", str(tmp_path / "t.db"), "--quiet", "--workers", "1", "-o", str(tmp_path / "best.toml")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "no trial reached 99% validation accuracy within its 20 updates: none is best" in out
    assert "not written" in out and not (tmp_path / "best.toml").exists()
    assert main(args + ["--force"]) == 0  # replayed from the store; the closest trial written on request
    assert RunConfig.from_toml(tmp_path / "best.toml").steps == 20


@pytest.mark.parametrize("tables, message", [
    ("[axes]\nlr = [1e-3, 3e-3]\n", "a tune file searches a [search] space instead of sweeping [axes]"),
    ("[search]\nlr = { low = 1e-3, high = 1e-2 }\n[tune]\nseeds = \"0,1\"\n", "e.g. seeds = [0, 1, 2]"),
])
def test_tune_files_that_look_like_sweep_files_are_told_what_to_write(tmp_path, capsys, tables, message):
    f = tmp_path / "t.toml"
    f.write_text('[base]\ntask = "add"\nmodulus = 7\n' + tables)
    assert main(["tune", str(f), "--store", str(tmp_path / "t.db"), "--quiet"]) == 2
    assert message in capsys.readouterr().err


def test_objective_counts_never_as_twice_the_budget():
    rows = [{"step_val_acc_99": 100, "steps": 500}, {"step_val_acc_99": None, "steps": 500},
            {"step_val_acc_99": 300, "steps": 500}]
    assert objective_value(rows) == 300
    assert objective_value(rows[1:2]) == 1000


@pytest.mark.parametrize("search, message", [
    ("", "needs a [search] table"),
    ("lr = { low = 1e-2, high = 1e-3 }", "needs 0 < low < high"),
    ("lrr = { low = 1e-3, high = 1e-2 }", "unknown search key 'lrr'"),
    ("act = { low = 1, high = 2 }", "search act has a range but act is str"),
    ("weight_decay = { low = -1.0, high = 1.0 }", "search weight_decay = -1.0: weight_decay -1.0 is too small"),
])
def test_bad_tune_files_are_one_line(tmp_path, capsys, search, message):
    f = tmp_path / "t.toml"
    f.write_text('[base]\ntask = "add"\nmodulus = 7\n[search]\n' + search + "\n")
    assert main(["tune", str(f), "--store", str(tmp_path / "t.db"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "t.db").exists()


def test_an_interrupted_trial_stops_the_search(tmp_path, monkeypatch, capsys):
    """Ctrl-C or SIGTERM leaves a trial's runs interrupted: the search stops there (exit 130), not on the next
    trial, and the same command goes on from the store."""
    import groklab.tune as tune_mod

    calls = []
    monkeypatch.setattr(tune_mod, "run_sweep", lambda cfgs, *a, **k: calls.append(len(cfgs)))  # nothing finishes
    (tmp_path / "t.toml").write_text(FILE)
    assert main(["tune", str(tmp_path / "t.toml"), "--store", str(tmp_path / "s.db"), "--quiet"]) == 130
    assert calls == [2] and "interrupted" in capsys.readouterr().err
