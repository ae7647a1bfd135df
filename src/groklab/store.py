"""The store: one SQLite file of many runs, safe for several writer processes at once.

``runs`` holds one row per run (identity: the config hash), its config as
JSON, its status and its summary fields; ``metrics`` holds every evaluation
of every run. WAL mode lets readers and one writer proceed together; each
write is one short ``BEGIN IMMEDIATE`` transaction, and writers wait for each
other (busy timeout) rather than fail, so concurrent sweeps lose nothing. A
transient error (busy, locked, a disk I/O hiccup under load) rolls the
transaction back and runs it again; a lasting one (disk full, read-only file)
is a ``StorageError``: one line, nothing half-written.

    >>> store = Store("sweep.db")                                  # doctest: +SKIP
    >>> store.runs(task="div", status="generalized")               # doctest: +SKIP
    >>> store.to_dataframe().to_csv("runs.csv")                    # doctest: +SKIP
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import socket
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .config import RunConfig
from .errors import ConfigError, StorageError
from .events import grok_delay, held_from, steps_at
from .lazy import lazy
from .rundir import FINISHED, METRICS, SUMMARY, metric_values

pd = lazy("pandas")

SCHEMA_VERSION = 4


def _recompute_generalized(db: sqlite3.Connection) -> None:
    """Schema 3 -> 4: step_val_acc_99 was the first evaluation that touched 99%; it becomes the step from which
    validation accuracy held (events.held_from), the first touch moving to step_val_acc_99_first."""
    for run_id, st in db.execute("SELECT id, step_train_acc_99 FROM runs").fetchall():
        rows = db.execute("SELECT step, val_acc FROM metrics WHERE run_id=? ORDER BY step", (run_id,)).fetchall()
        steps, acc = [r[0] for r in rows], [r[1] for r in rows]
        held = held_from(steps, acc)
        db.execute("UPDATE runs SET step_val_acc_99=?, step_val_acc_99_first=?, grok_delay=? WHERE id=?",
                   (held, steps_at(steps, acc), grok_delay(st, held), run_id))


# how a store of each older schema becomes the next one (run when a newer groklab opens it)
MIGRATIONS = {
    1: ["ALTER TABLE metrics ADD COLUMN zero_loss_frac REAL"],  # the softmax-collapse share
    2: [f"ALTER TABLE runs ADD COLUMN {c} {t}" for c, t in  # the validation loss's double descent
        (("val_loss_min_step", "INTEGER"), ("val_loss_peak_step", "INTEGER"), ("val_loss_peak", "REAL"),
         ("second_descent_step", "INTEGER"))],
    3: ["ALTER TABLE runs ADD COLUMN step_val_acc_99_first INTEGER",  # "generalized" now means held
        _recompute_generalized],
}
ATTEMPTS = 12  # of a transaction that meets transient errors; backoff 0.05 s doubling to 3 s, jittered
_TRANSIENT = ("locked", "busy", "disk i/o error")
_SUMMARY_COLS = [c for c in SUMMARY if c != "status"]
_REAL = {"train_fraction", "grok_delay", "val_loss_peak", "final_train_acc", "final_val_acc", "best_val_acc", "wall_time_s"}
_TEXT = {"task"}


def _coltype(c: str) -> str:
    return "REAL" if c in _REAL else "TEXT" if c in _TEXT else "INTEGER"


_DDL = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    config_hash TEXT NOT NULL UNIQUE,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    run_dir TEXT,
    owner TEXT,
    updated_at REAL,
    steps INTEGER,
    {", ".join(f"{c} {_coltype(c)}" for c in _SUMMARY_COLS)}
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    {", ".join(f"{c} {'INTEGER' if c == 'step' else 'REAL'}" for c in METRICS)},
    PRIMARY KEY (run_id, step)
);
CREATE INDEX IF NOT EXISTS runs_task ON runs(task, status);
"""


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@contextmanager
def _folder_lock(folder: Path):
    """An exclusive flock on the store's folder while a Store opens: two processes creating or migrating one
    store at once (two sweeps started together) otherwise race on its WAL switch ('disk I/O error')."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # no such folder or no access: the connection reports it
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without flock on folders (some network ones): go on unlocked
            pass
        yield
    finally:
        os.close(fd)  # releases the flock (a folder's descriptor: no SQLite lock is tied to it)


def _owner_alive(owner: str | None) -> bool:
    """Whether the process ``host:pid`` may still be running: on this host, whether it is; on another, assume so."""
    host, _, pid = (owner or ":").rpartition(":")
    if host != socket.gethostname():
        return bool(host)
    return pid.isdigit() and _pid_alive(int(pid))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def finished_runs(path: str | Path) -> dict[str, str | None]:
    """Config hash -> run directory of every finished run in the store at ``path``, read without writing anything:
    no store made, migrated or switched to WAL, no file beside it (what ``--plan`` reads). {} when there is none."""
    path = Path(path)
    if not path.exists():
        return {}
    if path.is_dir():
        raise ConfigError(f"store {str(path)!r} is a directory, not a groklab store")
    # no writer's journal beside it: the file cannot change while read, and SQLite needs no lock or shared-memory
    # file for it ("immutable"); else read-only beside the writer's own files
    mode = "mode=ro" if Path(f"{path}-wal").exists() else "immutable=1"
    try:
        db = sqlite3.connect(f"{path.absolute().as_uri()}?{mode}", uri=True)
        try:
            rows = db.execute("SELECT config_hash, status, run_dir FROM runs").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError:
        raise ConfigError(f"{str(path)!r} is not a groklab store") from None
    return {h: d for h, status, d in rows if status in FINISHED}


class Store:
    """A groklab store at ``path`` (created when missing, refused when not a groklab store)."""

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        self.create = create  # False: a command that reads a store never makes one (not even in an empty file)
        if not self.path.exists():
            if not create:
                raise ConfigError(f"store {str(self.path)!r} does not exist")
            if not self.path.parent.is_dir():
                raise ConfigError(f"cannot create store {str(self.path)!r}: folder {str(self.path.parent)!r} does not exist")
        elif self.path.is_dir():
            raise ConfigError(f"store {str(self.path)!r} is a directory, not a groklab store")
        # (the file is not opened by hand to check its header: closing any descriptor of a database file drops
        # the POSIX locks this process's SQLite connections hold on it; SQLite itself refuses a non-database)
        try:
            with _folder_lock(self.path.parent):  # one process at a time creates, switches to WAL, migrates
                self._connect()
                self._retry(self._init)
        except StorageError:
            raise
        except sqlite3.DatabaseError as e:
            if "not a database" in str(e):
                raise ConfigError(f"{str(self.path)!r} is not a groklab store (not an SQLite file)") from None
            raise ConfigError(f"{str(self.path)!r} is not a usable groklab store: {e}") from None

    def _connect(self) -> None:
        self.db = sqlite3.connect(self.path, timeout=120, isolation_level=None)
        self.db.row_factory = sqlite3.Row

    def _init(self) -> None:
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:
            raise ConfigError(f"{str(self.path)!r} is an SQLite file but not a groklab store")
        if not tables and not self.create:
            raise ConfigError(f"{str(self.path)!r} is not a groklab store (an empty file); a sweep, compare or tune "
                              "--store makes one")
        if tables:
            version = self._version()
            if version > SCHEMA_VERSION:
                raise ConfigError(f"{str(self.path)!r} is a store of schema {version}, written by a newer groklab; "
                                  f"this one reads schema {SCHEMA_VERSION} and older")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        if not tables:
            with self.transaction() as db:
                for stmt in _DDL.split(";"):
                    if stmt.strip():
                        db.execute(stmt)
                db.execute("INSERT OR IGNORE INTO meta VALUES ('groklab_store', ?)", (str(SCHEMA_VERSION),))
        elif version < SCHEMA_VERSION:
            self._migrate()

    def _version(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='groklab_store'").fetchone()
        if row is None or not str(row[0]).isdigit() or int(row[0]) < 1:
            raise ConfigError(f"{str(self.path)!r} is not a groklab store (no schema version)")
        return int(row[0])

    def _migrate(self) -> None:
        """Bring an older store to this schema in one transaction (another process may have done it first)."""
        with self.transaction() as db:
            version = self._version()
            while version < SCHEMA_VERSION:
                for stmt in MIGRATIONS[version]:
                    if callable(stmt):
                        stmt(db)
                    else:
                        db.execute(stmt)
                version += 1
            db.execute("UPDATE meta SET value=? WHERE key='groklab_store'", (str(version),))

    @contextmanager
    def transaction(self):
        """One ``BEGIN IMMEDIATE`` transaction; on any error it is rolled back (if SQLite has not done so
        already: after an I/O error or a full disk it has, and a second ROLLBACK would hide the error)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def _retry(self, fn: Callable[[], Any]) -> Any:
        """``fn()``, run again after a transient error; a lasting write error becomes a StorageError."""
        for attempt in range(ATTEMPTS):
            try:
                return fn()
            except sqlite3.OperationalError as e:
                msg = str(e).lower()
                if any(t in msg for t in _TRANSIENT) and attempt < ATTEMPTS - 1:
                    time.sleep(min(0.05 * 2**attempt, 3.0) * (0.5 + random.random()))
                    if "disk i/o" in msg:  # a connection that met an I/O error can stay broken: open a new one
                        try:
                            self.db.close()
                        except sqlite3.Error:
                            pass
                        self._connect()
                    continue
                if "full" in msg or "readonly" in msg or "disk i/o" in msg or "unable to open" in msg:
                    raise StorageError(f"cannot write store {str(self.path)!r}: {e}") from None
                raise

    def write(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """``fn(db)`` inside one transaction, the whole transaction run again after a transient error."""
        def attempt():
            with self.transaction() as db:
                return fn(db)

        return self._retry(attempt)

    def _read(self, sql: str, args=()) -> list[sqlite3.Row]:
        return self._retry(lambda: self.db.execute(sql, args).fetchall())

    def close(self) -> None:
        """Close the database connection."""
        self.db.close()

    # -- writing ---------------------------------------------------------------------
    def start_run(self, cfg: RunConfig, run_dir: str | Path | None) -> int:
        """Insert (or mark running again) the run of ``cfg``; returns its id."""
        return self.write(lambda db: self._upsert_running(db, cfg, run_dir))

    @staticmethod
    def _upsert_running(db: sqlite3.Connection, cfg: RunConfig, run_dir) -> int:
        h = cfg.hash()
        db.execute(
            "INSERT INTO runs (config_hash, config, status, run_dir, owner, updated_at, steps, task, modulus,"
            " train_fraction, seed) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(config_hash) DO UPDATE SET status='running', owner=excluded.owner,"
            " updated_at=excluded.updated_at, run_dir=excluded.run_dir",
            (h, json.dumps(cfg.to_dict()), str(run_dir) if run_dir else None, _owner(), time.time(),
             cfg.steps, cfg.task, cfg.modulus, cfg.train_fraction, cfg.seed))
        return db.execute("SELECT id FROM runs WHERE config_hash=?", (h,)).fetchone()[0]

    def claim(self, cfg: RunConfig, run_dir: str | Path | None) -> str:
        """Claim a run for this process before training it, in one transaction: ``"claimed"`` (now running
        under this process), ``"finished"`` (nothing to do), or ``"busy"``: another live process runs it (on
        another host: any owner counts as live), which this one must leave alone."""
        h = cfg.hash()

        def attempt(db):
            row = db.execute("SELECT status, owner FROM runs WHERE config_hash=?", (h,)).fetchone()
            if row is not None and row[0] in FINISHED:
                return "finished"
            if row is not None and row[0] == "running" and row[1] != _owner() and _owner_alive(row[1]):
                return "busy"
            self._upsert_running(db, cfg, run_dir)
            return "claimed"

        return self.write(attempt)

    def release(self, hashes) -> int:
        """Mark interrupted the runs of ``hashes`` still 'running' (a sweep that stops before or while training
        them); returns how many."""
        hashes = list(hashes)
        return self.write(lambda db: sum(db.execute("UPDATE runs SET status='interrupted' WHERE config_hash=? AND "
                                                    "status='running'", (h,)).rowcount for h in hashes))

    def finish_run(self, cfg: RunConfig, summary: dict, history: list[dict], run_dir=None) -> int:
        """Write a run's summary and all its metrics in one transaction."""
        cols = ", ".join(f"{c}=?" for c in _SUMMARY_COLS)

        def write(db):
            row = db.execute("SELECT id FROM runs WHERE config_hash=?", (cfg.hash(),)).fetchone()
            rid = self._upsert_running(db, cfg, run_dir) if row is None else row[0]
            db.execute(f"UPDATE runs SET status=?, updated_at=?, {cols} WHERE id=?",
                       (str(summary["status"]), time.time(), *[summary.get(c) for c in _SUMMARY_COLS], rid))
            db.execute("DELETE FROM metrics WHERE run_id=?", (rid,))
            db.executemany(f"INSERT INTO metrics (run_id, {', '.join(METRICS)}) VALUES (?, {', '.join('?' * len(METRICS))})",
                           [(rid, *metric_values(r)) for r in history])
            return rid

        return self.write(write)

    def mark_stale(self) -> int:
        """Mark as interrupted the runs left 'running' by processes of this host that are gone."""
        stale = [r["id"] for r in self._read("SELECT id, owner FROM runs WHERE status='running'")
                 if not _owner_alive(r["owner"])]
        if stale:
            self.write(lambda db: db.executemany(
                "UPDATE runs SET status='interrupted' WHERE id=? AND status='running'", [(i,) for i in stale]))
        return len(stale)

    # -- reading ---------------------------------------------------------------------
    def set_meta(self, key: str, value: str) -> None:
        """Keep a named text in the store (e.g. ``comparison``: what groklab compare compared)."""
        self.write(lambda db: db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value)))

    def get_meta(self, key: str) -> str | None:
        """A value of the store's meta table, or None."""
        rows = self._read("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0][0] if rows else None

    def get(self, cfg: RunConfig) -> dict | None:
        """The finished run of that config (its row), or None."""
        rows = self._read("SELECT * FROM runs WHERE config_hash=?", (cfg.hash(),))
        return dict(rows[0]) if rows else None

    def run_dir(self, run_id: int) -> Path:
        """The run directory of run ``run_id`` (a relative one is taken from the store's folder when it is not
        found from here); ConfigError when the run is unknown or kept none."""
        rows = self._read("SELECT run_dir FROM runs WHERE id=?", (int(run_id),))
        if not rows:
            raise ConfigError(f"run id {run_id} is not in store {str(self.path)!r}; groklab runs --store lists them")
        if not rows[0]["run_dir"]:
            raise ConfigError(f"run {run_id} of store {str(self.path)!r} kept no run directory")
        path = Path(rows[0]["run_dir"])
        if not path.is_absolute() and not path.exists() and (self.path.parent / path).exists():
            path = self.path.parent / path
        if not path.is_dir():
            raise ConfigError(f"run {run_id}'s directory {str(path)!r} does not exist")
        return path

    def runs(self, task: str | None = None, status: str | None = None) -> list[dict]:
        """The runs' rows, optionally of one task and one status, in id order."""
        q, args = "SELECT * FROM runs WHERE 1=1", []
        if task:
            q += " AND task=?"
            args.append(task)
        if status:
            q += " AND status=?"
            args.append(status)
        return [dict(r) for r in self._read(q + " ORDER BY id", args)]

    def metrics(self, run_id: int) -> list[dict]:
        """A run's metrics rows, by step."""
        rows = self._read(f"SELECT {', '.join(METRICS)} FROM metrics WHERE run_id=? ORDER BY step", (run_id,))
        return [dict(r) for r in rows]

    def to_dataframe(self, metrics: bool = False):
        """The runs table with every config field as a column (or, with ``metrics``, every metrics row joined
        with its run) as a pandas DataFrame."""

        if metrics:
            return pd.read_sql_query("SELECT r.task, r.modulus, r.train_fraction, r.seed, r.config_hash, m.* "
                                     "FROM metrics m JOIN runs r ON r.id = m.run_id ORDER BY m.run_id, m.step", self.db)
        runs = pd.read_sql_query("SELECT * FROM runs ORDER BY id", self.db)
        if runs.empty:
            return runs
        # every config field as a column (weight_decay, lr, model, ...), so that groupby sees every setting
        configs = pd.DataFrame([json.loads(c) for c in runs["config"]], index=runs.index)
        return pd.concat([runs, configs[[c for c in configs.columns if c not in runs.columns]]], axis=1)

    def export_csv(self, path: str | Path, metrics: bool = False) -> None:
        """The runs (with ``metrics``, their metrics rows) as a CSV file."""
        self.to_dataframe(metrics).to_csv(path, index=False)


@dataclass(frozen=True)
class SavedComparison:
    """A comparison as the store keeps it (meta key ``comparison``): its title and each variant's config hashes
    (``compare.Comparison.saved``). The store's last ``groklab compare`` is what ``groklab plot compare`` and the
    report draw."""

    title: str
    variants: dict[str, list[str]]

    KEY = "comparison"

    def save(self, store: "Store") -> None:
        """Keep this comparison in the store (the last one kept replaces the one before)."""
        store.set_meta(self.KEY, json.dumps({"title": self.title, "variants": self.variants}))

    @classmethod
    def load(cls, store: "Store") -> "SavedComparison | None":
        """The comparison the store keeps, or None."""
        text = store.get_meta(cls.KEY)
        if not text:
            return None
        data = json.loads(text)
        return cls(data.get("title", ""), data["variants"])

    def results(self, rows: list[dict]) -> dict[str, list[dict]]:
        """Each variant's rows among ``rows`` (store rows), in the variant's order."""
        by_hash = {r["config_hash"]: r for r in rows}
        return {name: [by_hash[h] for h in hashes if h in by_hash] for name, hashes in self.variants.items()}
