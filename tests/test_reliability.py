"""Kills, resumes, bad files, full disks, and random input: nothing lost, nothing half-written."""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from groklab import RunConfig, rundir
from groklab.cli import main
from groklab.errors import ConfigError

TINY = ["--task", "add", "--modulus", "23", "--train-fraction", "0.8", "--d-model", "64", "--d-mlp", "128",
        "--lr", "3e-3", "--quiet"]


def groklab(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "groklab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def wait_for_checkpoint(run, min_step, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            if (run / "checkpoint.pt").exists() and rundir.load_checkpoint(run)["step"] >= min_step:
                return
        except ConfigError:
            pass  # being replaced right now
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


def strip(rows):
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]


def test_sigkilled_run_resumed_equals_uninterrupted_run_bitwise(tmp_path):
    args = [*TINY, "--steps", "300", "--no-early-stop", "--checkpoint-every", "40"]
    whole = groklab("train", *args, "--out", str(tmp_path / "whole"))
    assert whole.wait(300) == 0, whole.stderr.read()
    cut = groklab("train", *args, "--out", str(tmp_path / "cut"))
    wait_for_checkpoint(tmp_path / "cut", 120, cut)
    cut.send_signal(signal.SIGKILL)
    cut.wait()
    assert json.loads((tmp_path / "cut" / "summary.json").read_text())["status"] == "running"
    resumed = groklab("train", "--resume", str(tmp_path / "cut"), "--quiet")
    assert resumed.wait(300) == 0, resumed.stderr.read()
    a, b = rundir.read_metrics(tmp_path / "whole"), rundir.read_metrics(tmp_path / "cut")
    assert [r["step"] for r in b] == sorted({r["step"] for r in b})  # no duplicate or missing rows
    assert strip(a) == strip(b)
    pa = rundir.load_checkpoint(tmp_path / "whole")["params"]
    pb = rundir.load_checkpoint(tmp_path / "cut")["params"]
    assert all(torch.equal(pa[k], pb[k]) for k in pa)


def test_sigterm_checkpoints_marks_interrupted_and_resume_finishes(tmp_path):
    run = tmp_path / "R"
    proc = groklab("train", *TINY, "--steps", "100000", "--no-early-stop", "--checkpoint-every", "50",
                   "--out", str(run))
    wait_for_checkpoint(run, 50, proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "groklab train --resume" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert rundir.load_checkpoint(run)["step"] == summary["steps_run"]


def test_resume_refuses_checkpoints_of_other_versions_and_tasks(tmp_path, capsys):
    cfg = RunConfig(task="add", modulus=7, d_model=32, d_mlp=32, steps=20)
    from groklab.train import train

    train(cfg, tmp_path / "R")
    (tmp_path / "R" / "summary.json").write_text(json.dumps({"status": "interrupted"}))
    state = torch.load(tmp_path / "R" / "checkpoint.pt", weights_only=True)
    torch.save({**state, "format": 99}, tmp_path / "R" / "checkpoint.pt")
    assert main(["train", "--resume", str(tmp_path / "R")]) == 2
    assert "checkpoint format 99" in capsys.readouterr().err
    torch.save({**state, "config": {**state["config"], "task": "mul"}}, tmp_path / "R" / "checkpoint.pt")
    assert main(["train", "--resume", str(tmp_path / "R")]) == 2
    assert "is for task='mul', not task='add'" in capsys.readouterr().err
    (tmp_path / "R" / "checkpoint.pt").write_bytes(b"garbage")
    assert main(["train", "--resume", str(tmp_path / "R")]) == 2
    assert "not a readable groklab checkpoint" in capsys.readouterr().err
    cfg_file = tmp_path / "R" / "config.json"
    cfg_file.write_text(json.dumps({**json.loads(cfg_file.read_text()), "future_knob": 3}))
    assert main(["train", "--resume", str(tmp_path / "R")]) == 2
    assert "unknown config key 'future_knob'" in capsys.readouterr().err


def test_checkpoint_loads_with_weights_only(tmp_path):
    from groklab.train import train

    train(RunConfig(task="add", modulus=7, d_model=32, d_mlp=32, steps=20), tmp_path / "R")
    model = rundir.load_model(tmp_path / "R")
    assert model["W_E"].shape == (9, 32)


def test_disk_full_is_one_clear_line_and_leaves_no_directory(tmp_path, capsys, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    out = tmp_path / "R"
    assert main(["train", "--task", "add", "--modulus", "7", "--steps", "5", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and err.count("\n") == 1
    assert not out.exists()


def test_disk_full_during_training_stops_with_a_clear_error(tmp_path, capsys, monkeypatch):
    real = rundir.save_checkpoint

    def full_after_start(run_dir, state):
        raise rundir.StorageError(f"cannot write {str(run_dir)!r}: No space left on device")

    monkeypatch.setattr(rundir, "save_checkpoint", full_after_start)
    code = main(["train", "--task", "add", "--modulus", "7", "--steps", "30", "--d-model", "32", "--d-mlp", "32",
                 "--checkpoint-every", "10", "--out", str(tmp_path / "R"), "--quiet"])
    assert code == 2 and "No space left on device" in capsys.readouterr().err
    del real
    summary = rundir.read_summary(tmp_path / "R")
    assert summary["status"] == "interrupted"  # not left "running"; --resume goes on from the last checkpoint


@pytest.mark.skipif(os.access("/sys", os.W_OK) and os.path.isdir("/sys/kernel") is False, reason="needs a read-only /sys")
def test_unwritable_output_directory_is_one_clear_line(capsys):
    assert main(["train", "--task", "add", "--modulus", "7", "--steps", "5", "--out", "/sys/groklab-run"]) == 2
    err = capsys.readouterr().err
    assert "cannot write to '/sys/groklab-run'" in err and err.count("\n") == 1


_FIELDS = {
    "--task": st.sampled_from(["add", "sub", "div", "s5_mul", "nope", ""]),
    "--modulus": st.sampled_from(["-3", "0", "1", "4", "5", "7", "12", "x"]),
    "--train-fraction": st.sampled_from(["-0.5", "0", "0.01", "0.5", "0.9", "1", "2", "nan", "inf", "a"]),
    "--steps": st.sampled_from(["-1", "0", "1", "2", "1.5"]),
    "--d-model": st.sampled_from(["0", "-4", "8", "12", "16"]),
    "--n-heads": st.sampled_from(["0", "1", "2", "3", "4"]),
    "--d-mlp": st.sampled_from(["0", "8", "16"]),
    "--lr": st.sampled_from(["-1", "0", "1e-3", "1e9", "nan"]),
    "--optimizer": st.sampled_from(["adamw", "adam", "sgd", "lion"]),
    "--batch-size": st.sampled_from(["auto", "full", "0", "3", "-2", "big"]),
    "--dropout": st.sampled_from(["0", "0.1", "1", "-0.1"]),
    "--norm": st.sampled_from(["pre", "post", "none", "rms"]),
    "--beta2": st.sampled_from(["0.98", "1.0", "-0.1"]),
    "--weight-decay": st.sampled_from(["0", "1", "-1"]),
    "--preset": st.sampled_from(["paper", "paper-fig1", "nope"]),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(sorted(_FIELDS)), st.none(), max_size=8).flatmap(
    lambda d: st.fixed_dictionaries({k: _FIELDS[k] for k in d})))
def test_any_cli_arguments_run_or_are_refused_in_one_line(tmp_path_factory, capsys, flags):
    flags = {"--d-model": "8", "--d-mlp": "8", "--n-heads": "2", "--steps": "2", "--modulus": "5", **flags}
    out = tmp_path_factory.mktemp("h") / "R"
    args = ["train", "--out", str(out), "--quiet"] + [a for kv in flags.items() for a in kv]
    code = main(args)
    err = capsys.readouterr().err
    assert code in (0, 2), (args, err)
    if code == 2:
        assert err.startswith("groklab: error: ") and err.count("\n") == 1 and "Traceback" not in err
        assert not out.exists()
    else:
        assert json.loads((out / "summary.json").read_text())["status"] != "running"


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["train_fraction", "seed", "task", "steps", "lr", "early_stop", "batch_size", "bogus"]),
       st.text(alphabet="0123456789.:,-eabdfilnrstu ", max_size=14))
def test_sweep_axis_parser_returns_values_or_config_error(name, text):
    from groklab.grid import parse_axis

    try:
        values = parse_axis(name, text)
    except ConfigError as e:
        assert "\n" not in str(e)
    else:
        assert isinstance(values, list) and values
