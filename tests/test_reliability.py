"""Kills, resumes, bad files, full disks, and random input: nothing lost, nothing half-written."""

import json
import signal

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from groklab import RunConfig, rundir
from groklab.cli import main
from groklab.errors import ConfigError
from groklab.train import train
from helpers import TINY, groklab, strip, wait_for_checkpoint


def test_sigkilled_run_resumed_equals_uninterrupted_run_bitwise(tmp_path):
    """``groklab train`` killed with SIGKILL after a checkpoint, then ``--resume``: the run equals one trained
    without interruption (here, in the test's own process), row for row and weight for weight."""
    args = [*TINY, "--d-model", "32", "--d-mlp", "64", "--steps", "160", "--no-early-stop", "--checkpoint-every", "40"]
    cfg = RunConfig(task="add", modulus=23, train_fraction=0.8, d_model=32, d_mlp=64, lr=3e-3, steps=160,
                    early_stop=False, checkpoint_every=40)
    cut = groklab("train", *args, "--out", str(tmp_path / "cut"))
    wait_for_checkpoint(tmp_path / "cut", 80, cut)
    cut.send_signal(signal.SIGKILL)
    cut.wait()
    assert json.loads((tmp_path / "cut" / "summary.json").read_text())["status"] == "running"
    resumed = groklab("train", "--resume", str(tmp_path / "cut"), "--quiet")
    assert resumed.wait(300) == 0, resumed.stderr.read()
    assert rundir.load_config(tmp_path / "cut") == cfg
    train(cfg, tmp_path / "whole")
    a, b = rundir.read_metrics(tmp_path / "whole"), rundir.read_metrics(tmp_path / "cut")
    assert [r["step"] for r in b] == sorted({r["step"] for r in b})  # no duplicate or missing rows
    assert strip(a) == strip(b)
    pa = rundir.load_checkpoint(tmp_path / "whole")["params"]
    pb = rundir.load_checkpoint(tmp_path / "cut")["params"]
    assert all(torch.equal(pa[k], pb[k]) for k in pa)


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


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
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
