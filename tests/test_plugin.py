"""Plugins: the example plugin package (``examples/plugin``) installed from its own folder, offline, into a folder of
the test's on the path: ``groklab train`` and ``groklab analyze`` use its update rule, intervention, task and
analysis from the command line, with no line of groklab changed for them. A broken plugin is refused in one line
naming it, and the rest of groklab goes on."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plugin"


def _groklab(env, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "groklab", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    """``pip install examples/plugin`` (no network: its build backend is the environment's setuptools) into a site
    folder of its own, on PYTHONPATH."""
    base = tmp_path_factory.mktemp("plugin")
    source, site = base / "source", base / "site"
    shutil.copytree(EXAMPLE, source)  # the build writes beside its sources: not into the repository
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                           "--no-build-isolation", "--target", str(site), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return {**os.environ, "PYTHONPATH": str(site)}


@pytest.mark.slow
def test_the_plugins_parts_train_and_are_analysed_from_the_command_line(plugin_env, tmp_path):
    run = tmp_path / "run"
    trained = _groklab(plugin_env, "train", "--task", "affine", "--affine-a", "3", "--modulus", "11",
                       "--optimizer", "signum", "--signum-beta", "0.8", "--grad-clip", "1", "--lr", "3e-3",
                       "--d-model", "32", "--n-heads", "2", "--d-mlp", "64", "--steps", "150", "--snapshots", "5",
                       "--quiet", "--out", str(run))
    assert trained.returncode == 0, trained.stderr
    assert "3 x + 1 y mod 11" in trained.stderr  # the task says how it is shown
    config = json.loads((run / "config.json").read_text())
    assert (config["task"], config["affine_a"], config["optimizer"], config["signum_beta"], config["grad_clip"]) == \
        ("affine", 3, "signum", 0.8, 1.0)
    rows = [r for r in (run / "metrics.csv").read_text().splitlines()[1:]]
    first, last = (float(r.split(",")[2]) for r in (rows[0], rows[-1]))  # train_acc
    assert last > first + 0.3  # signum with clipped gradients fits the affine table
    analysed = _groklab(plugin_env, "analyze", str(run), "--no-tsne", "--llc-chains", "0", "--sharpness-examples", "8",
                        "--margin-quantile", "0.5", "--quiet")
    assert analysed.returncode == 0, analysed.stderr
    assert "margin yes" in analysed.stderr and "logit margin: train" in analysed.stdout
    result = json.loads((run / "analysis" / "analysis.json").read_text())
    assert result["margin"]["train"] > 0 and (run / "analysis" / "margin.png").exists()
    # the plugin's task is residues mod p: groklab's own Fourier analysis runs on it, and on a network that has
    # memorized without generalizing (150 steps) it names no key frequency and says why, so no restricted loss
    assert result["applies"]["fourier"] and "fourier_gini" in result["snapshots"][-1]
    assert result["snapshots"][-1]["val_loss"] > 2 and result["key_frequencies"] == []
    assert "no frequency stands out" in analysed.stdout and "restricted_loss" not in result["snapshots"][-1]
    checked = subprocess.run([sys.executable, "-c", "from groklab_plugin_example.affine import AFFINE\n"
                              "AFFINE.check({'modulus': 11, 'affine_a': 11, 'affine_b': 1})"],
                             capture_output=True, text=True, env=plugin_env, timeout=60)
    assert checked.returncode == 1 and "ConfigError: affine_a 11 and affine_b 1 must not be 0 mod 11" in checked.stderr


def test_a_broken_plugin_is_refused_in_one_line_and_the_others_still_load(tmp_path):
    """A package whose entry points name a module that does not import, a field that is already a setting of
    groklab, and (the tasks group's older form) a function that registers a task when called."""
    (tmp_path / "my_parts.py").write_text(
        "from groklab.fields import Field\n"
        "from groklab.rules.spec import UpdateRule\n"
        "from groklab.tasks import register\n"
        "CLASH = UpdateRule('clash', 'takes lr', True, (), lambda *a: None, (Field('lr', 1.0, 'mine'),))\n"
        "def tasks():\n"
        "    register('twice_x_plus_y', lambda x, y, p: (2 * x + y) % p, '2x + y mod p')\n")
    meta = tmp_path / "my_parts-1.0.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: my-parts\nVersion: 1.0\n")
    (meta / "entry_points.txt").write_text("[groklab.update_rules]\nbroken = no_such_module:RULE\n"
                                           "clash = my_parts:CLASH\n[groklab.tasks]\ntwice = my_parts:tasks\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    listed = _groklab(env, "tasks")
    assert listed.returncode == 0 and "twice_x_plus_y" in listed.stdout and "2x + y mod p" in listed.stdout
    trained = _groklab(env, "train", "--task", "twice_x_plus_y", "--modulus", "7", "--steps", "5", "--quiet",
                       "--out", str(tmp_path / "run"))
    assert trained.returncode == 0, trained.stderr
    lines = [ln for ln in trained.stderr.splitlines() if ln.startswith("groklab: plugin")]
    assert len(lines) == 2
    assert "plugin 'broken' (no_such_module:RULE) of group groklab.update_rules left out: ModuleNotFoundError" \
        in lines[0]
    assert "plugin 'clash'" in lines[1] and "field lr is a setting of RunConfig already" in lines[1]
