"""RunConfig: validation through the registries, and a run identity that survives new fields."""

import sqlite3
from pathlib import Path

import pytest

from groklab import RunConfig
from groklab.config import FIELDS, HASHED_SINCE_0_1
from groklab.errors import ConfigError
from groklab.store import Store
from groklab.sweep import run_sweep

FIXTURES = Path(__file__).parent / "fixtures"
# the sweep that wrote fixtures/store_v0_1.sql with groklab 0.1 (an SQL dump of its store)
V0_1_BASE = dict(task="add", modulus=7, d_model=16, n_heads=2, d_mlp=16, steps=30)
V0_1_HASHES = {(0, False): "8d36336736ea5772", (0, True): "e79efde7d9f73a4a",
               (1, False): "c6eb0a6e64636544", (1, True): "b284f94acc59137d"}


def _v0_1_store(tmp_path) -> Path:
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript((FIXTURES / "store_v0_1.sql").read_text())
    con.close()
    return path


def test_configs_hash_as_they_did_in_groklab_0_1():
    for (seed, to_init), h in V0_1_HASHES.items():
        assert RunConfig(**V0_1_BASE, seed=seed, decay_to_init=to_init).hash() == h


def test_a_store_written_by_groklab_0_1_keeps_its_finished_runs(tmp_path):
    path = _v0_1_store(tmp_path)
    cfgs = [RunConfig(**V0_1_BASE, seed=s, decay_to_init=d) for s, d in V0_1_HASHES]
    store = Store(path)
    assert all(store.get(c)["status"] == "budget_exhausted" for c in cfgs)
    counts = run_sweep(cfgs, path, workers=1, progress=False)
    assert counts == {"total": 4, "skipped": 4, "ran": 0, "busy": 0, "outcomes": {"budget_exhausted": 4}}


def test_an_older_store_is_migrated_in_place_and_a_newer_one_refused(tmp_path):
    import groklab.store as store_mod

    path = _v0_1_store(tmp_path)
    store = Store(path)
    assert store.db.execute("SELECT value FROM meta").fetchone()[0] == str(store_mod.SCHEMA_VERSION)
    run = store.get(RunConfig(**V0_1_BASE, seed=0))
    rows = store.metrics(run["id"])
    assert len(rows) == 4 and all(r["zero_loss_frac"] is None for r in rows)  # not measured by 0.1
    cfg = RunConfig(**V0_1_BASE, seed=2)
    run_sweep([cfg], path, workers=1, progress=False)
    assert all(r["zero_loss_frac"] == 0.0 for r in store.metrics(store.get(cfg)["id"]))
    store.db.execute("UPDATE meta SET value='99'")
    store.close()
    with pytest.raises(ConfigError, match="schema 99, written by a newer groklab"):
        Store(path)


def test_fields_added_after_0_1_count_only_when_they_differ_from_their_default():
    added = [name for name in FIELDS if name not in HASHED_SINCE_0_1 | {"device", "checkpoint_every"}]
    assert {"model", "loss"} <= set(added)
    base = RunConfig(modulus=7)
    for name in added:
        assert RunConfig(modulus=7, **{name: FIELDS[name].default}).hash() == base.hash()
    assert base.replace(checkpoint_every=7).hash() == base.hash()
    assert base.replace(seed=1).hash() != base.hash()


@pytest.mark.parametrize("values, message", [
    ({"model": "lstm"}, "model 'lstm' is not allowed; allowed: transformer"),
    ({"loss": "hinge"}, "loss 'hinge' is not allowed; allowed: cross_entropy"),
    ({"optimizer": "lion"}, "optimizer 'lion' is not allowed; allowed: adamw, adam, sgd"),
    ({"d_model": 30, "n_heads": 4}, "d_model 30 does not divide by n_heads 4"),
    ({"dropout": 1.0}, "dropout 1.0 is outside [0, 1)"),
    ({"batch_size": 0}, "batch_size 0 is not allowed"),
])
def test_bad_values_name_the_field_and_what_is_allowed(values, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        RunConfig(**values)


def test_registry_entries_become_choices_at_once():
    from groklab.losses import LOSSES, Loss
    from groklab.losses.cross_entropy import cross_entropy

    LOSSES.register(Loss("my_loss", "cross-entropy under another name", cross_entropy))
    try:
        assert RunConfig(loss="my_loss").loss == "my_loss"
    finally:
        LOSSES.unregister("my_loss")
    with pytest.raises(ConfigError):
        RunConfig(loss="my_loss")


@pytest.mark.parametrize("name, text, value", [
    ("seed", " 3 ", 3), ("lr", "1e-3", 1e-3), ("early_stop", "False", False), ("batch_size", "full", "full"),
    ("batch_size", "256", 256), ("task", "sub", "sub")])
def test_one_parser_reads_a_field_from_text_as_its_type(name, text, value):
    from groklab.config import parse_value

    got = parse_value(name, text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("name, text, message", [
    ("seed", "1.5", "seed '1.5' is not allowed; use an integer"), ("lr", "fast", "lr 'fast' is not allowed; use a number"),
    ("early_stop", "yes", "use true or false"), ("batch_size", "huge", "use 'auto', 'full' or an integer >= 1"),
    ("lr_max", "1", "unknown config key 'lr_max'")])
def test_the_parser_refuses_text_that_is_not_the_field_type_in_one_line(name, text, message):
    from groklab.config import parse_value

    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        parse_value(name, text)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("values, message", [
    ({"model": "mlp", "n_heads": 8}, "n_heads 8 does not apply to model 'mlp'; only to model transformer"),
    ({"mlp_embed": "sum"}, "mlp_embed 'sum' does not apply to model 'transformer'; only to model mlp"),
    ({"muon_lr": 0.05}, "muon_lr 0.05 does not apply to optimizer 'adamw'; only to optimizer muon"),
    ({"optimizer": "adam", "momentum": 0.9}, "momentum 0.9 does not apply to optimizer 'adam'; only to optimizer sgd"),
    ({"grokfast_ma_window": 50}, "grokfast_ma_window 50 does nothing while grokfast_ma_lamb is 0.0"),
    ({"weight_decay": 0.0, "decay_to_init": True}, "decay_to_init True does nothing while weight_decay is 0.0"),
    ({"task": "add", "n_bits": 8}, "n_bits 8 does not apply to task 'add'; only to task parity"),
])
def test_a_setting_that_means_nothing_for_the_run_is_refused_not_stored(values, message):
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict(values)
    assert message in str(e.value)


def test_a_presets_settings_that_do_not_apply_are_dropped_and_a_sweep_leaves_them_where_they_do_not(
        tmp_path, capsys, monkeypatch):
    import json

    import groklab.config as config
    from groklab.cli import main
    from groklab.grid import Sweep

    monkeypatch.setattr(config, "load_preset", lambda name: {"n_heads": 8, "beta2": 0.95, "lr": 3e-3})
    mlp = RunConfig.from_dict({"model": "mlp", "optimizer": "sgd"}, preset="mine")
    assert (mlp.n_heads, mlp.beta2, mlp.lr) == (RunConfig().n_heads, RunConfig().beta2, 3e-3)
    assert RunConfig.from_dict({}, preset="mine").n_heads == 8
    monkeypatch.undo()
    configs = Sweep({"modulus": 7, "n_heads": 2, "d_model": 32}, {"model": ["transformer", "mlp"]}).configs()
    assert [(c.model, c.n_heads) for c in configs] == [("transformer", 2), ("mlp", RunConfig().n_heads)]
    with pytest.raises(ConfigError, match="none of its runs uses n_heads 2"):
        Sweep({"modulus": 7, "n_heads": 2, "model": "mlp"}, {"seed": [0, 1]}).configs()
    # a run's config.json sets every field: a preset beside it would change nothing
    (tmp_path / "config.json").write_text(json.dumps(RunConfig(task="add", modulus=7).to_dict()))
    assert main(["train", "--config", str(tmp_path / "config.json"), "--preset", "fast", "--quiet",
                 "--out", str(tmp_path / "R")]) == 2
    assert "--preset fast would change nothing" in capsys.readouterr().err and not (tmp_path / "R").exists()
