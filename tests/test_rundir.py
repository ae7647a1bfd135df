"""The run directory (``groklab.rundir``): its files and their formats, its name, checkpoints written atomically
and refused when they are another run's, what a resume may change, a full disk reported in one line."""

import errno
import json
import os

import pytest
import torch

from groklab import RunConfig, rundir
from groklab.cli import main
from groklab.errors import ConfigError
from groklab.train import train


def test_run_directory_contract(tiny, tmp_path):
    out = tmp_path / "run"
    train(tiny.replace(steps=200), out)
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.pt", "config.json", "curves.png", "metrics.csv", "summary.json"]
    assert RunConfig.from_dict(json.loads((out / "config.json").read_text())) == tiny.replace(steps=200)
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert header == "step,train_loss,train_acc,val_loss,val_acc,zero_loss_frac,weight_norm,lr,elapsed_s"
    rows = rundir.read_metrics(out)
    steps = [r["step"] for r in rows]
    assert steps[0] == 0 and steps[-1] == 200 and steps == sorted(set(steps))
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary) == rundir.SUMMARY
    assert summary["n_train"] + summary["n_val"] == 23 * 23
    assert summary["steps_run"] == 200 and summary["status"] in ("budget_exhausted", "generalized")
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_policy_is_the_librarys(tiny, tmp_path):
    """What may continue, and with which changes, is rundir.resume_config's to say; train(resume=True) and the
    CLI both ask it."""

    cfg = tiny.replace(steps=40, early_stop=False)
    train(cfg, tmp_path / "r")
    with pytest.raises(ConfigError, match="holds a finished run"):
        rundir.resume_config(tmp_path / "r")
    with pytest.raises(ConfigError, match="not lr"):
        rundir.resume_config(tmp_path / "r", {"lr": 0.1})
    with pytest.raises(ConfigError, match="does not extend"):
        rundir.resume_config(tmp_path / "r", {"steps": 40})
    assert rundir.resume_config(tmp_path / "r", {"steps": 80}).steps == 80
    assert rundir.load_config(tmp_path / "r").steps == 40  # nothing written until the run goes on
    with pytest.raises(ConfigError, match="not lr"):
        train(cfg.replace(lr=0.1), tmp_path / "r", resume=True)
    assert train(cfg.replace(steps=80), tmp_path / "r", resume=True).summary["steps_run"] == 80
    assert rundir.load_config(tmp_path / "r").steps == 80


def test_run_directories_are_named_by_task_fraction_seed_and_identity(tiny):
    name = rundir.run_name(tiny)
    assert name == f"add-p23-f0.8-s0-{tiny.hash()[:10]}"
    assert rundir.run_name(tiny, stamp="20260101-120000") == name + "-20260101-120000"
    assert rundir.run_name(RunConfig(task="s5_mul", seed=2)).startswith("s5_mul-f0.5-s2-")


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


def test_a_metrics_file_with_a_step_written_twice_reads_one_row_per_step(tmp_path):
    from groklab import rundir

    rows = [{"step": s, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.0, "val_acc": 0.5, "weight_norm": 3.0,
             "lr": 1e-3, "elapsed_s": 0.1} for s in (0, 10, 20)]
    data = rundir.metrics_csv(rows) + rundir.metrics_row(rows[1]) + rundir.metrics_row(rows[2])
    (tmp_path / "metrics.csv").write_bytes(data)
    assert [r["step"] for r in rundir.read_metrics(tmp_path)] == [0, 10, 20]


def test_snapshot_steps_are_log_spaced_from_0_to_the_budget():
    assert rundir.snapshot_steps(1000, 0) == [] and rundir.snapshot_steps(1000, 1) == [0]
    steps = rundir.snapshot_steps(1000, 10)
    assert steps[:2] == [0, 1] and steps[-1] == 1000 and steps == sorted(set(steps))
    ratios = [b / a for a, b in zip(steps[3:], steps[4:])]  # past the first few, which rounding bunches
    assert max(ratios) / min(ratios) < 1.15  # evenly spaced on a log scale


def test_an_atomic_write_leaves_the_old_file_or_the_new_one_never_half(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    rundir.atomic_json(path, {"status": "running"})

    def fail(fd):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(rundir.StorageError, match="cannot write"):
        rundir.atomic_json(path, {"status": "generalized"})
    assert json.loads(path.read_text()) == {"status": "running"} and [p.name for p in tmp_path.iterdir()] == [path.name]
