"""The Ray executor: each group of runs is a Ray task on a cluster (``--address``) or on a Ray started here.

Shared run directories (the default). Every node sees the runs folder at the same path (a shared file system:
NFS, a cluster's home or scratch folder; on one machine, any folder). The driver writes a marker file there and,
before anything trains, a task on every node checks that it sees the marker and can write beside it: a folder a
node cannot see or write is refused in one line. A task trains its group into the run directories exactly as a
local worker does (metrics, summary, curves, checkpoints on schedule, snapshots), each run directory locked while
it trains. When a node is lost, Ray runs its tasks again elsewhere (``RETRIES`` times): the task finds the runs
that finished already and trains the others on from their checkpoints, bit for bit the runs trained without
interruption; running the sweep again does the same.

``ship_runs`` (``groklab sweep --ship-runs``): for a cluster with no shared file system. A task trains in a
folder of its node and sends each finished run's directory back; the driver writes it into the runs folder. A
lost node's runs start again from step 0 (their checkpoints were on it).

Either way each run reaches the driver as it finishes (through a small actor on the driver's node, ``Inbox``)
and the driver alone writes the store, so the store never lives on a shared file system. A stopped sweep (one
Ctrl-C or SIGTERM) asks the tasks to checkpoint and return, as local workers do; a second signal cancels them.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import shutil
import socket
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

from .. import rundir
from ..config import RunConfig
from ..errors import ConfigError, StorageError
from ..fields import Field
from ..lazy import lazy
from ..rundir import FINISHED
from ..runtime import set_threads
from ..store import Store
from ..train import train_group
from .spec import Executor, Work

ray = lazy("ray")
ray_scheduling = lazy("ray.util.scheduling_strategies")

RETRIES = 3  # how many times Ray runs a group's task again after losing its node
LOCK_WAIT_S = 300.0  # how long a task waits for a run directory another attempt still holds
STOP_POLL_S = 1.0  # how often a task asks whether the sweep was stopped
_MARKER = ".groklab-sweep-{token}"


ADDRESS = Field("address", "", "Ray cluster address, HEAD:6379 (default: start a local Ray)")
SHIP_RUNS = Field("ship_runs", False, "Ray without a shared file system: the driver writes each run's directory from "
                  "what its task sends back (a lost node's runs start again)")


def check(options: dict, runs_root: Path | None = None) -> None:
    """Before anything is written: Ray is installed; a cluster at ``address`` answers; and, unless
    ``ship_runs``, every one of its nodes sees ``runs_root`` and can write there (a probe task on each node
    looks for a marker file the driver wrote). A folder this check creates is removed again."""
    if find_spec("ray") is None:
        raise ConfigError("the Ray executor needs Ray: pip install 'groklab[ray]'")
    address, ship_runs = options.get("address") or None, options.get("ship_runs", False)
    if address is None or ship_runs or runs_root is None:
        return  # a Ray started here runs on this machine: its folders are this machine's
    connected_here = not ray.is_initialized()
    if connected_here:
        _connect(ray, address)
    runs_root = Path(runs_root).absolute()
    created = [d for d in (runs_root, *runs_root.parents) if not d.exists()]
    token = secrets.token_hex(8)
    marker = runs_root / _MARKER.format(token=token)
    try:
        try:
            runs_root.mkdir(parents=True, exist_ok=True)
            rundir.atomic_write(marker, token.encode())
        except (OSError, StorageError) as e:
            raise ConfigError(f"cannot write the runs folder {str(runs_root)!r}: {e}") from None
        _check_shared(ray, runs_root, token)
    finally:
        marker.unlink(missing_ok=True)
        for d in created:  # the deepest first: nothing left behind
            try:
                d.rmdir()
            except OSError:
                break
        if connected_here:
            ray.shutdown()


def _connect(ray, address: str | None) -> None:
    """``ray.init`` for a sweep's driver; a cluster that does not answer is one line."""
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                 **({} if address else {"num_cpus": os.cpu_count()}))
    except (ConnectionError, TimeoutError, RuntimeError) as e:
        raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {str(e).splitlines()[0]}") from None


class NotShared(RuntimeError):
    """A task's node does not see the runs folder the driver wrote (raised in the task, reported by the driver)."""


def _inbox_class():
    @ray.remote(num_cpus=0, max_restarts=0)
    class Inbox:
        """On the driver's node: the runs that finished, as tasks send them; and whether the sweep was stopped."""

        def __init__(self):
            self.items, self.stop = [], False

        def put(self, item: dict) -> None:
            self.items.append(item)

        def take(self) -> list[dict]:
            items, self.items = self.items, []
            return items

        def set_stopped(self) -> None:
            self.stop = True

        def stopped(self) -> bool:
            return self.stop

    return Inbox


# -- in the task -------------------------------------------------------------------------------------------------


class _StopPoll:
    """The training loop's stop flag in a task: asks the inbox at most every ``STOP_POLL_S``; a driver that is
    gone (its inbox with it) stops the task too."""

    def __init__(self, inbox):
        self.inbox, self.stopped, self.next = inbox, False, 0.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self.stopped and now >= self.next:
            self.next = now + STOP_POLL_S
            try:
                self.stopped = bool(ray.get(self.inbox.stopped.remote(), timeout=30))
            except Exception:  # noqa: BLE001 - no inbox: no driver to train for
                self.stopped = True
        return self.stopped


def _lock(run_dir: Path):
    """An exclusive lock on a run directory (a lost node's attempt may still hold it: wait for it to die)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise RuntimeError(f"run directory {str(run_dir)!r} is still locked by another process after "
                                   f"{LOCK_WAIT_S:.0f} s") from None
            time.sleep(0.5)


def _files(run_dir: Path) -> dict[str, bytes]:
    """A run directory's files by relative path (what ``ship_runs`` sends back)."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def _message(cfg: RunConfig, summary: dict, history: list[dict], run_dir: Path, ship: bool) -> dict:
    out = {"config": cfg.to_dict(), "summary": summary, "history": history}
    if ship:
        out["files"] = _files(run_dir)
    return out


def _train_task(cfg_dicts: list[dict], run_dirs: list[str], threads: int, inbox, token: str | None,
                ship: list[dict[str, bytes] | None] | None) -> int:
    """Ray task: train one group into its run directories (resuming from checkpoints), sending each run to the
    inbox as it finishes; returns how many runs it sent. ``ship``: train in a folder of this node, starting each
    run from the files the driver holds for it (an interrupted run's checkpoint), and send the files back."""
    set_threads(threads)  # the CPUs Ray reserved for this task
    cfgs = [RunConfig.from_dict(d) for d in cfg_dicts]
    if ship is not None:  # a folder of this node's own; gone with the node
        base = Path(tempfile.mkdtemp(prefix="groklab-ray-"))
        dirs = [base / Path(d).name for d in run_dirs]
        for d, files in zip(dirs, ship):
            for rel, data in (files or {}).items():
                (d / rel).parent.mkdir(parents=True, exist_ok=True)
                (d / rel).write_bytes(data)
    else:
        dirs = [Path(d) for d in run_dirs]
        marker = dirs[0].parent / _MARKER.format(token=token) if token else None
        if marker is not None and not marker.exists():
            raise NotShared(f"node {socket.gethostname()} does not see {str(marker.parent)!r}")
    locks = [_lock(d) for d in dirs]
    sent = []
    try:
        todo = []
        for cfg, d in zip(cfgs, dirs):  # a run that finished before its node was lost is sent, not trained again
            summary = rundir.read_summary(d)
            if summary and summary["status"] in FINISHED:
                sent.append(inbox.put.remote(_message(cfg, summary, rundir.read_metrics(d), d, ship is not None)))
            else:
                rundir.atomic_json(d / "config.json", cfg.to_dict())
                todo.append((cfg, d))
        if todo:
            train_group([c for c, _ in todo], [d for _, d in todo], resume=True, stop_flag=_StopPoll(inbox),
                        on_finish=lambda r: sent.append(inbox.put.remote(
                            _message(r.config, r.summary, r.history, r.run_dir, ship is not None))))
        ray.get(sent)  # delivered before the task ends
    finally:
        for fd in locks:
            os.close(fd)
        if ship is not None:
            shutil.rmtree(base, ignore_errors=True)
    return len(sent)


def _probe(folder: str, token: str) -> str | None:
    """Ray task on one node: None when it sees the driver's marker in ``folder`` and can write beside it, else
    what is wrong."""
    marker = Path(folder) / _MARKER.format(token=token)
    try:
        if marker.read_text() != token:
            return f"{socket.gethostname()} sees another marker in {folder!r}"
        probe = Path(folder) / f"{marker.name}-{secrets.token_hex(4)}"
        probe.write_text(token)
        probe.unlink()
    except OSError as e:
        return f"{socket.gethostname()} cannot use {folder!r}: {e.strerror or e}"
    return None


# -- in the driver -----------------------------------------------------------------------------------------------


def _check_shared(ray, folder: Path, token: str) -> None:
    """A probe on every alive node; refuses (ConfigError) a runs folder some node cannot see or write."""
    NodeAffinitySchedulingStrategy = ray_scheduling.NodeAffinitySchedulingStrategy
    probe = ray.remote(num_cpus=0, max_retries=0)(_probe)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
            .remote(str(folder), token) for n in nodes]
    problems = [f"node {n.get('NodeManagerAddress')}:{n.get('NodeManagerPort')}: {p}"
                for n, p in zip(nodes, ray.get(refs, timeout=120)) if p]
    if problems:
        raise ConfigError(f"the runs folder {str(folder)!r} is not shared with every node ({problems[0]}); give "
                          "--runs-dir a folder every node mounts at the same path, or --ship-runs to have the "
                          "driver write the run directories from what the tasks send back")


def _held(run_dir: Path) -> dict[str, bytes] | None:
    """What the driver holds of a run to ship to its task: the files of an interrupted run (its checkpoint)."""
    return _files(run_dir) if rundir.has_checkpoint(run_dir) else None


def _write(item: dict, run_dir: Path, store: Store, ship: bool) -> None:
    """A finished run as the driver records it: its shipped files (``ship_runs``), then its store row."""
    if ship:
        for rel, data in item["files"].items():
            path = run_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            rundir.atomic_write(path, data)
    store.finish_run(RunConfig.from_dict(item["config"]), item["summary"], item["history"], run_dir)


def execute(work: Work) -> None:
    """Train each group as a Ray task (see the module doc)."""
    address, ship_runs = work.options.get("address") or None, bool(work.options.get("ship_runs"))
    started_here = not ray.is_initialized()
    if started_here:
        _connect(ray, address)
    token = secrets.token_hex(8)
    dirs = {h: Path(d).absolute() for h, d in work.run_dirs.items()}
    folders = sorted({str(d.parent) for d in dirs.values()})
    markers = [Path(f) / _MARKER.format(token=token) for f in folders] if not ship_runs else []
    store = Store(work.store_path)
    refs = []
    try:
        for m in markers:  # each task checks it sees this sweep's marker (a node may have joined since check())
            m.parent.mkdir(parents=True, exist_ok=True)
            rundir.atomic_write(m, token.encode())
        NodeAffinitySchedulingStrategy = ray_scheduling.NodeAffinitySchedulingStrategy
        here = ray.get_runtime_context().get_node_id()
        inbox = _inbox_class().options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote()
        task = ray.remote(num_cpus=work.threads, max_retries=RETRIES)(_train_task)
        refs = [task.remote([c.to_dict() for c in g], [str(dirs[c.hash()]) for c in g], work.threads, inbox,
                            None if ship_runs else token,
                            [_held(dirs[c.hash()]) for c in g] if ship_runs else None) for g in work.groups]
        pending, stopping = list(refs), False
        while pending:
            if work.stop.is_set() and not stopping:  # the tasks checkpoint and return
                inbox.set_stopped.remote()
                stopping = True
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=0.5)
            for item in ray.get(inbox.take.remote()):
                _write(item, dirs[RunConfig.from_dict(item["config"]).hash()], store, ship_runs)
            for ref in done:
                _result(ray, ref)
            work.tick()
        for item in ray.get(inbox.take.remote()):
            _write(item, dirs[RunConfig.from_dict(item["config"]).hash()], store, ship_runs)
    except BaseException:  # an error, or a second Ctrl-C: the tasks are cancelled, not waited for
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
    finally:
        store.close()
        for m in markers:
            m.unlink(missing_ok=True)
        if started_here:
            ray.shutdown()


def _result(ray, ref) -> None:
    """A finished task's outcome: its error re-raised, a node that does not see the runs folder as one line."""
    try:
        ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, NotShared):
            raise ConfigError(f"{cause}; give --runs-dir a folder every node mounts at the same path, or "
                              "--ship-runs") from None
        raise


RAY = Executor("ray", "Ray tasks (a cluster with --address, else a Ray started here)", execute, check,
               (ADDRESS, SHIP_RUNS))
