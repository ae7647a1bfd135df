"""A sweep on a real two-node Ray cluster that loses a node: nothing lost, nothing done twice.

The cluster (a head and a second node, started with the ``ray`` command line) lives in its own network and PID
namespaces, on loopback only, and ends with them whatever happens (``tests/ray_cluster.py``).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from groklab.grid import load_sweep
from groklab.store import Store
from groklab.sweep import run_sweep

HELPER = Path(__file__).with_name("ray_cluster.py")
SWEEP = """[base]
task = "add"
modulus = 23
train_fraction = 0.5
d_model = 64
d_mlp = 128
steps = 300
early_stop = false
checkpoint_every = 100
[axes]
seed = [0, 1, 2, 3, 4, 5]
"""
NAMESPACES = ["unshare", "--net", "--pid", "--fork", "--mount-proc", "--kill-child"]


def _can_make_namespaces() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return subprocess.run([*NAMESPACES, "true"], capture_output=True).returncode == 0


pytest.importorskip("ray")
pytestmark = pytest.mark.skipif(not _can_make_namespaces(), reason="needs unshare and ip (network and PID namespaces)")


@pytest.mark.slow
def test_a_sweep_survives_losing_a_node_and_equals_the_local_sweep(tmp_path):
    (tmp_path / "s.toml").write_text(SWEEP)
    p = subprocess.run([*NAMESPACES, sys.executable, str(HELPER), str(tmp_path), str(tmp_path / "s.toml")],
                       capture_output=True, text=True, timeout=200)
    out = json.loads((tmp_path / "cluster.json").read_text())
    shutil.rmtree(out["ray_temp"], ignore_errors=True)  # the namespace is gone, and every Ray process with it
    assert "error" not in out and out.get("rc") == 0, (p.stderr[-2000:], out)
    # a runs folder one node does not see is refused in one line before anything is written
    refused = out["refused"]
    ours = [ln for ln in refused["stderr"].splitlines() if ln.startswith("groklab")]  # (Ray's core logs its own)
    assert refused["rc"] == 2 and len(ours) == 1 and "Traceback" not in refused["stderr"], refused
    assert "is not shared with every node" in refused["stderr"] and "--ship-runs" in refused["stderr"]
    assert not (tmp_path / "refused.db").exists() and not (tmp_path / "hidden" / "runs").exists()
    assert out["before"], "the second node was not killed mid-sweep"
    assert "6 runs: 0 already finished, 6 run now" in out["stdout"]

    store = Store(tmp_path / "ray.db")
    rows = store.runs()
    assert len(rows) == 6 and len({r["config_hash"] for r in rows}) == 6  # every run once
    assert {r["status"] for r in rows} == {"budget_exhausted"} and {r["steps_run"] for r in rows} == {300}
    resumed = 0
    for r in rows:
        steps = [m["step"] for m in store.metrics(r["id"])]
        assert steps == sorted(set(steps)) and steps[-1] == 300  # no step written twice
        run_dir = Path(r["run_dir"])
        before = {int(k): v for k, v in out["before"][run_dir.name].items()}
        after = {m["step"]: m["elapsed_s"] for m in store.metrics(r["id"])}
        ckpt = max(s for s in before if s % 100 == 0)  # its last checkpoint when the node went
        assert all(after[s] == before[s] for s in before if s <= ckpt)  # kept, never recomputed from step 0
        resumed += any(after[s] != before[s] for s in before if s > ckpt)  # retrained from that checkpoint
        assert (run_dir / "curves.png").exists() and (run_dir / "checkpoint.pt").exists()
    assert resumed == 3, "the group on the lost node was not resumed from its checkpoints"

    # the same sweep run locally gives the same runs, bit for bit
    run_sweep(load_sweep(tmp_path / "s.toml").configs(), tmp_path / "local.db", workers=2, max_ensemble=3,
              progress=False)
    local = {r["config_hash"]: r for r in Store(tmp_path / "local.db").runs()}
    strip = lambda ms: [{k: v for k, v in m.items() if k != "elapsed_s"} for m in ms]  # noqa: E731
    for r in rows:
        other = local[r["config_hash"]]
        assert r["final_val_acc"] == other["final_val_acc"] and r["best_val_acc"] == other["best_val_acc"]
        assert strip(store.metrics(r["id"])) == strip(Store(tmp_path / "local.db").metrics(other["id"]))
