import json
import subprocess
import sys

import pytest

from groklab.cli import main


def test_train_command_generalizes_and_reports_events(quick_run):
    out, p = quick_run
    assert "memorized at step" in p.stdout and "generalized at step" in p.stdout
    assert f"run directory: {out}" in p.stdout
    s = json.loads((out / "summary.json").read_text())
    assert s["status"] == "generalized" and s["final_val_acc"] >= 0.99
    assert s["step_train_acc_99"] < s["step_val_acc_99"]


@pytest.mark.parametrize("args, message", [
    (["--task", "foo"], "task 'foo' is not allowed; allowed: add"),
    (["--task", "div", "--modulus", "91"], "modulus 91 is not prime"),
    (["--train-fraction", "1.5"], "train_fraction 1.5 is outside (0, 1)"),
    (["--train-fraction", "0"], "train_fraction 0.0 is outside (0, 1)"),
    (["--steps", "-5"], "steps -5 is too small"),
    (["--preset", "papr"], "unknown preset 'papr'"),
    (["--batch-size", "huge"], "batch_size 'huge'"),
    (["--optimizer", "lion"], "optimizer 'lion' is not allowed"),
    (["--steps", "many"], "Invalid value for '--steps'"),
    (["--no-such-flag"], "No such option: --no-such-flag"),
])
def test_bad_input_is_one_line_exit_2_and_no_run_directory(tmp_path, capsys, args, message):
    out = tmp_path / "R"
    assert main(["train", *args, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("text, message", [
    ("lr = 1e-3\nweigth_decay = 1\n", "unknown config file"),
    ("lr = [1\n", "is not valid TOML"),
    ("lr = 'fast'\n", "lr 'fast' has the wrong type"),
])
def test_bad_config_file_is_refused(tmp_path, capsys, text, message):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "R")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "R").exists()


def test_unknown_key_suggests_the_close_one(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("weigth_decay = 1\n")
    main(["train", "--config", str(cfg)])
    assert "did you mean 'weight_decay'" in capsys.readouterr().err


def test_preset_then_config_file_then_flags_set_the_run(tmp_path):
    """defaults <- preset <- config file <- flags, each layer visible in the saved config."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('task = "sub"\nmodulus = 11\nsteps = 20\nd_model = 32\nd_mlp = 64\nlr = 3e-3\n')
    out = tmp_path / "R"
    assert main(["train", "--preset", "paper-fig1", "--config", str(cfg), "--steps", "30", "--out", str(out),
                 "--quiet"]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert (saved["task"], saved["modulus"], saved["d_model"], saved["lr"]) == ("sub", 11, 32, 3e-3)  # file over preset
    assert saved["steps"] == 30  # flag over file
    assert (saved["optimizer"], saved["weight_decay"]) == ("adam", 0.0)  # preset over the defaults (adamw, 1.0)


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_it_from_step_0(tmp_path, capsys):
    from groklab import RunConfig, rundir

    out = tmp_path / "R"
    rundir.prepare(out, RunConfig(task="add", modulus=7, d_model=32, d_mlp=32, steps=30))
    (out / "metrics.csv").write_text("step,train_loss,train_acc,val_loss,val_acc,weight_norm,lr,elapsed_s\n"
                                     "0,2.0,0.1,2.0,0.1,10.0,0.0001,0.01\n")
    (out / "summary.json").write_text(json.dumps({"status": "running"}))
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert "stopped before its first checkpoint: starting it again from step 0" in capsys.readouterr().err
    steps = [r["step"] for r in rundir.read_metrics(out)]
    assert steps == sorted(set(steps)) and steps[0] == 0 and steps[-1] == 30
    assert json.loads((out / "summary.json").read_text())["status"] == "budget_exhausted"


def test_finished_run_is_not_overwritten_without_force(tmp_path, capsys):
    out = tmp_path / "R"
    args = ["train", "--task", "add", "--modulus", "7", "--steps", "5", "--d-model", "32", "--d-mlp", "32",
            "--out", str(out), "--quiet"]
    assert main(args) == 0
    before = (out / "summary.json").read_text()
    assert main(args) == 2
    assert "already holds a finished run" in capsys.readouterr().err
    assert (out / "summary.json").read_text() == before
    assert main(args + ["--force", "--seed", "1"]) == 0
    assert json.loads((out / "config.json").read_text())["seed"] == 1


def test_tasks_list_and_show(capsys):
    assert main(["tasks"]) == 0
    listing = capsys.readouterr().out
    assert "div_odd_sub" in listing and "s5_conj" in listing and "14,400" in listing and "set by its options" in listing
    assert main(["tasks", "show", "add", "--modulus", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "x,y,z" and len(lines) == 26 and lines[-1] == "4,4,3"


def test_paper_fig1_preset_is_adam_without_weight_decay(tmp_path):
    from groklab.config import RunConfig

    cfg = RunConfig.from_dict({}, preset="paper-fig1")
    assert (cfg.task, cfg.modulus, cfg.train_fraction, cfg.optimizer, cfg.weight_decay, cfg.steps) == (
        "div", 97, 0.5, "adam", 0.0, 1_000_000)
    paper = RunConfig.from_dict({}, preset="paper")
    assert (paper.optimizer, paper.lr, paper.weight_decay, paper.beta2, paper.warmup_steps, paper.steps) == (
        "adamw", 1e-3, 1.0, 0.98, 10, 100_000)
    assert paper.resolved_batch_size == 512
    assert RunConfig(train_fraction=0.1).resolved_batch_size == 465


def test_a_runs_config_json_and_a_preset_line_are_config_files(tmp_path):
    from groklab import RunConfig, rundir

    assert main(["train", "--preset", "quick", "--steps", "20", "--seed", "3", "--out", str(tmp_path / "a"),
                 "--quiet"]) == 0
    assert main(["train", "--config", str(tmp_path / "a" / "config.json"), "--out", str(tmp_path / "b"),
                 "--quiet"]) == 0
    assert rundir.load_config(tmp_path / "b") == rundir.load_config(tmp_path / "a")
    (tmp_path / "c.toml").write_text('preset = "quick"\nseed = 4\nsteps = 20\n')
    assert main(["train", "--config", str(tmp_path / "c.toml"), "--out", str(tmp_path / "c"), "--quiet"]) == 0
    assert rundir.load_config(tmp_path / "c") == RunConfig.from_dict({"seed": 4, "steps": 20}, preset="quick")


def test_a_finished_run_is_extended_with_resume_and_a_larger_budget(tmp_path, capsys):
    from groklab import rundir

    run = tmp_path / "r"
    assert main(["train", "--preset", "quick", "--steps", "60", "--out", str(run), "--quiet"]) == 0
    assert main(["train", "--resume", str(run), "--quiet"]) == 2
    assert "--steps N with N above its budget extends it" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--steps", "50", "--quiet"]) == 2
    assert "does not extend" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--lr", "0.1", "--quiet"]) == 2
    assert main(["train", "--resume", str(run), "--steps", "150", "--quiet"]) == 0
    steps = [r["step"] for r in rundir.read_metrics(run)]
    assert steps[-1] == 150 and steps == sorted(set(steps)) and 60 in steps
    assert rundir.load_config(run).steps == 150 and rundir.read_summary(run)["steps_run"] == 150
    # the same as a run trained to 150 at once
    assert main(["train", "--preset", "quick", "--steps", "150", "--out", str(tmp_path / "w"), "--quiet"]) == 0
    strip = lambda rows: [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]  # noqa: E731
    assert strip(rundir.read_metrics(run)) == strip(rundir.read_metrics(tmp_path / "w"))


def test_a_device_that_is_missing_writes_nothing(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert main(["train", "--device", "cuda", "--out", str(tmp_path / "r"), "--steps", "5"]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_commands_that_draw_nothing_do_not_import_matplotlib(tmp_path):
    from groklab.store import Store

    Store(tmp_path / "s.db").close()
    code = ("import sys; from groklab.cli import main; main(['--help']); main(['train', '--help']); "
            f"main(['runs', '--store', {str(tmp_path / 's.db')!r}]); main(['tasks']); "
            "print('matplotlib' in sys.modules, file=sys.stderr)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stderr.strip().splitlines()[-1] == "False", p.stderr


def test_an_interrupted_run_directory_points_to_resume(tmp_path, capsys):
    from groklab import RunConfig, rundir

    run = tmp_path / "r"
    rundir.prepare(run, RunConfig(task="add", modulus=7))
    rundir.atomic_json(run / "summary.json", {"status": "interrupted"})
    assert main(["train", "--task", "add", "--modulus", "7", "--out", str(run), "--quiet"]) == 2
    assert f"continue it with groklab train --resume {run}" in capsys.readouterr().err
