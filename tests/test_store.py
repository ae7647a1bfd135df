import multiprocessing as mp
import sqlite3

import pytest

from groklab import RunConfig
from groklab.errors import ConfigError
from groklab.store import Store


def _summary(cfg, status="generalized"):
    return {"task": cfg.task, "modulus": cfg.modulus, "train_fraction": cfg.train_fraction, "seed": cfg.seed,
            "n_train": 10, "n_val": 10, "n_params": 1, "steps_run": 30, "step_train_acc_99": 10,
            "step_val_acc_99": 20, "grok_delay": 2.0, "final_train_acc": 1.0, "final_val_acc": 1.0,
            "best_val_acc": 1.0, "wall_time_s": 0.1, "status": status}


def _history(n):
    return [{"step": s, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.0, "val_acc": 0.5, "weight_norm": 3.0,
             "lr": 1e-3, "elapsed_s": 0.1} for s in range(0, 10 * n, 10)]


def test_finished_run_round_trips_with_its_metrics(tmp_path):
    store = Store(tmp_path / "s.db")
    cfg = RunConfig(task="add", modulus=7)
    rid = store.finish_run(cfg, _summary(cfg), _history(5))
    row = store.get(cfg)
    assert row["id"] == rid and row["status"] == "generalized" and row["step_val_acc_99"] == 20
    assert [m["step"] for m in store.metrics(rid)] == [0, 10, 20, 30, 40]
    assert store.finish_run(cfg, _summary(cfg), _history(3)) == rid  # same config: same row, metrics replaced
    assert len(store.metrics(rid)) == 3 and len(store.runs()) == 1
    df = store.to_dataframe()
    assert list(df["task"]) == ["add"]
    store.export_csv(tmp_path / "m.csv", metrics=True)
    assert (tmp_path / "m.csv").read_text().count("\n") == 4


def _writer(path, seed0, n):
    store = Store(path)
    for s in range(seed0, seed0 + n):
        cfg = RunConfig(task="add", modulus=7, seed=s)
        store.start_run(cfg, None)
        store.finish_run(cfg, _summary(cfg), _history(20))


def test_concurrent_writer_processes_lose_nothing(tmp_path):
    path = tmp_path / "s.db"
    Store(path).close()
    procs = [mp.get_context("spawn").Process(target=_writer, args=(path, 100 * i, 15)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = Store(path)
    assert len(store.runs()) == 60
    assert all(len(store.metrics(r["id"])) == 20 for r in store.runs())
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("content", [b"hello, not a database\n", None])
def test_a_file_that_is_not_a_groklab_store_is_refused_and_left_alone(tmp_path, content):
    path = tmp_path / "x.db"
    if content is None:
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE t (a)")
        con.commit()
        con.close()
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="not a groklab store"):
        Store(path)
    assert path.read_bytes() == before


def test_stale_running_rows_of_dead_processes_become_interrupted(tmp_path):
    store = Store(tmp_path / "s.db")
    cfg = RunConfig(task="add", modulus=7)
    store.start_run(cfg, None)
    store.db.execute("UPDATE runs SET owner=? WHERE 1", (store.get(cfg)["owner"].rsplit(":", 1)[0] + ":999999",))
    assert store.mark_stale() == 1
    assert store.get(cfg)["status"] == "interrupted"


def test_an_error_after_sqlite_rolled_back_is_not_replaced_by_a_rollback_error(tmp_path):
    """After an I/O error or a full disk SQLite has already rolled back; a second ROLLBACK would raise
    'cannot rollback - no transaction is active' and hide the real error."""
    store = Store(tmp_path / "s.db")
    with pytest.raises(ValueError, match="the real error"):
        with store.transaction() as db:
            db.execute("ROLLBACK")  # what SQLite does by itself on SQLITE_IOERR / SQLITE_FULL
            raise ValueError("the real error")
    assert not store.db.in_transaction


def test_transient_errors_run_the_whole_transaction_again(tmp_path):
    store = Store(tmp_path / "s.db")
    cfg = RunConfig(task="add", modulus=7)
    calls = []

    def write(db):
        calls.append(1)
        db.execute("INSERT INTO meta VALUES ('k', 'v')")
        if len(calls) < 3:
            raise sqlite3.OperationalError("disk I/O error")

    store.write(write)
    assert len(calls) == 3 and store.db.execute("SELECT value FROM meta WHERE key='k'").fetchone()[0] == "v"
    store.finish_run(cfg, _summary(cfg), _history(2))
    assert store.get(cfg)["status"] == "generalized"


def test_a_lasting_write_error_is_one_storage_error_and_leaves_nothing(tmp_path):
    from groklab.errors import StorageError

    store = Store(tmp_path / "s.db")

    def full(db):
        db.execute("INSERT INTO meta VALUES ('k', 'v')")
        raise sqlite3.OperationalError("database or disk is full")

    with pytest.raises(StorageError, match="cannot write store .*database or disk is full"):
        store.write(full)
    assert store.db.execute("SELECT count(*) FROM meta WHERE key='k'").fetchone()[0] == 0


def test_reading_commands_never_make_a_store_of_an_empty_file(tmp_path, capsys):
    from groklab.cli import main

    empty = tmp_path / "zero.db"
    empty.write_bytes(b"")
    for args in (["plot", "best-val", "--store", str(empty), "-o", str(tmp_path / "b.png")],
                 ["runs", "--store", str(empty)], ["report", "--store", str(empty), "-o", str(tmp_path / "r")]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is not a groklab store (an empty file)" in err, err
    assert empty.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["zero.db"]
