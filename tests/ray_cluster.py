"""A two-node Ray cluster on loopback, a sweep on it, and the loss of its second node (used by test_ray_cluster.py).

Run inside fresh network, PID and mount namespaces (``unshare --net --pid --fork --mount-proc``): the namespace
has loopback only, so every Ray server listens on 127.0.0.1 and nothing outside can reach it; this process is the
namespace's first process, so when it ends, for whatever reason, the kernel stops every Ray process it started.
It also ends itself after ``--deadline`` seconds.

    python tests/ray_cluster.py WORK SWEEP_FILE [--deadline 150]

Starts a head node and a second node with the ``ray`` command line (one CPU each; the second node in a mount
namespace of its own where WORK/hidden is an empty folder). Runs ``groklab sweep SWEEP_FILE --executor ray
--address ...`` twice: with run directories in WORK/hidden/runs (which the second node does not see: to be
refused), then into WORK/ray.db with run directories in WORK/runs; once every run has checkpointed and gone on
some evaluations past its last checkpoint, kills the second node (its raylet and everything it started). Writes
WORK/cluster.json: the refused sweep's exit status and output, each run's metrics (step -> elapsed_s) when the
node was killed, the sweep's exit status and output, and the seconds each phase took.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HEAD_PORT, HEAD_NM_PORT, NODE_NM_PORT = 6399, 6401, 6402
CHECKPOINT_EVERY = 100
ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",  # loopback only: nothing to authenticate
       # notice a lost node within seconds, not the default ~30 s
       "RAY_health_check_initial_delay_ms": "1000", "RAY_health_check_period_ms": "1000",
       "RAY_health_check_timeout_ms": "1000", "RAY_health_check_failure_threshold": "2"}


def _ray(*args: str, env: dict) -> None:
    exe = str(Path(sys.executable).with_name("ray"))
    p = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise SystemExit(f"ray {' '.join(args[:2])} failed: {p.stderr[-2000:]}")


def _metrics(run_dir: Path) -> dict[int, float]:
    try:
        with (run_dir / "metrics.csv").open() as fh:
            return {int(r["step"]): float(r["elapsed_s"]) for r in csv.DictReader(fh) if r.get("elapsed_s")}
    except (OSError, ValueError, KeyError):
        return {}


def _ready_to_kill(runs: Path, n_runs: int) -> dict | None:
    """Each run's metrics once every run has a checkpoint and at least 3 evaluations after its last one."""
    dirs = [d for d in runs.iterdir() if d.is_dir()] if runs.is_dir() else []
    if len(dirs) < n_runs:
        return None
    seen = {d.name: _metrics(d) for d in dirs}
    for rows in seen.values():
        last = max(rows, default=0)
        if last < CHECKPOINT_EVERY or last % CHECKPOINT_EVERY < 30:
            return None
    return seen


def _node_processes(nm_port: int) -> list[int]:
    """The raylet listening on ``nm_port`` and every process below it (its workers and agents)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    raylets = []
    for pid in parents:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"raylet") and f"--node_manager_port={nm_port}".encode() in cmd:
            raylets.append(pid)
    out, frontier = list(raylets), list(raylets)
    while frontier:
        children = [p for p, pp in parents.items() if pp in frontier]
        out += children
        frontier = children
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("sweep")
    ap.add_argument("--runs", type=int, default=6)
    ap.add_argument("--deadline", type=float, default=150.0)
    args = ap.parse_args()
    t0 = time.monotonic()
    threading.Timer(args.deadline, lambda: os._exit(3)).start()  # whatever happens, the namespace ends
    work = Path(args.work)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    env = dict(os.environ, **ENV)
    tmp = tempfile.mkdtemp(prefix="gl-ray-", dir="/tmp")  # short: Ray's socket paths must stay under 108 bytes
    out: dict = {"phases": {}, "ray_temp": tmp}  # the test removes it once the namespace (and Ray) is gone
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--object-store-memory", str(100 << 20),
              "--disable-usage-stats"]
    sweep = None
    try:
        _ray("start", "--head", "--port", str(HEAD_PORT), "--node-manager-port", str(HEAD_NM_PORT),
             "--include-dashboard", "false", "--temp-dir", tmp, *common, env=env)
        # the second node sees WORK/hidden as an empty folder of its own (a file system the others do not share)
        (work / "hidden").mkdir()
        exe = str(Path(sys.executable).with_name("ray"))
        node = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                               'mount -t tmpfs tmpfs "$0" && exec "$@"', str(work / "hidden"), exe, "start",
                               "--address", f"127.0.0.1:{HEAD_PORT}", "--node-manager-port", str(NODE_NM_PORT),
                               *common], env=env, capture_output=True, text=True, timeout=120)
        if node.returncode != 0:
            raise SystemExit(f"ray start (second node) failed: {node.stderr[-2000:]}")
        out["phases"]["cluster_started"] = round(time.monotonic() - t0, 1)
        cmd = [sys.executable, "-m", "groklab", "sweep", args.sweep, "--executor", "ray", "--address",
               f"127.0.0.1:{HEAD_PORT}", "--ensemble", "3", "--quiet"]
        refused = subprocess.run([*cmd, "--store", str(work / "refused.db"), "--runs-dir",
                                  str(work / "hidden" / "runs")], env=env, capture_output=True, text=True, timeout=120)
        out["refused"] = {"rc": refused.returncode, "stderr": refused.stderr, "stdout": refused.stdout}
        out["phases"]["refused"] = round(time.monotonic() - t0, 1)
        cmd += ["--store", str(work / "ray.db"), "--runs-dir", str(work / "runs")]
        with (work / "sweep.out").open("w") as so, (work / "sweep.err").open("w") as se:
            sweep = subprocess.Popen(cmd, env=env, stdout=so, stderr=se)
            before = None
            while sweep.poll() is None and before is None:
                time.sleep(0.05)
                before = _ready_to_kill(work / "runs", args.runs)
            out["phases"]["node_killed"] = round(time.monotonic() - t0, 1)
            if before is not None:
                for pid in _node_processes(NODE_NM_PORT):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            out["before"] = before
            out["rc"] = sweep.wait(timeout=max(1.0, args.deadline - (time.monotonic() - t0) - 10))
        out["phases"]["sweep_done"] = round(time.monotonic() - t0, 1)
    except BaseException as e:  # noqa: BLE001 - reported to the test in cluster.json
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        if sweep is not None and sweep.poll() is None:
            sweep.kill()
        out["stdout"] = (work / "sweep.out").read_text() if (work / "sweep.out").exists() else ""
        out["stderr"] = (work / "sweep.err").read_text()[-4000:] if (work / "sweep.err").exists() else ""
        (work / "cluster.json").write_text(json.dumps(out))
        os._exit(0)  # the namespace ends with this process: the kernel stops every Ray process it started


if __name__ == "__main__":
    main()
