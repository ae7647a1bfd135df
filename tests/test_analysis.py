"""Looking inside a run (``analysis.progress`` and the analysis registry): every analysis that applies, at every
snapshot of a run that really grokked; what ``groklab analyze`` writes and says; an analysis added from outside."""

import json

import numpy as np
import pytest
import torch

from groklab import RunConfig, rundir, train
from groklab.analysis import ANALYSES, Analysis, Series, analysis_figures, analyze, llc, phases
from groklab.cli import main


def test_phases_read_off_the_curves():
    steps = [0, 10, 20, 30, 40, 50]
    ph = phases(steps, [0.1, 0.995, 1, 1, 1, 1], [0.0, 0.0, 0.1, 0.4, 0.7, 0.995])
    assert ph == {"memorization": [0, 10], "circuit_formation": [10, 30], "cleanup": [30, 50]}
    assert phases(steps, [0.1] * 6, [0.0] * 6)["circuit_formation"] is None
    # two answers (parity): chance is 1/2, so cleanup starts where validation accuracy passes 3/4, not 1/2
    binary = phases(steps, [0.5, 0.995, 1, 1, 1, 1], [0.5, 0.52, 0.6, 0.7, 0.8, 0.995], chance=0.5)
    assert binary == {"memorization": [0, 10], "circuit_formation": [10, 30], "cleanup": [30, 50]}


def test_a_loss_spike_is_a_dip_and_recovery_not_the_start_of_cleanup():
    from groklab.analysis.progress import spikes

    steps = [0, 10, 20, 30, 40, 50, 60, 70]
    train = [0.1, 0.995, 1.0, 1.0, 1.0, 0.33, 1.0, 1.0]  # a spike at step 50, back at 60
    val = [0.0, 0.0, 0.2, 0.7, 0.9, 0.2, 0.995, 1.0]  # validation falls with it
    ph = phases(steps, train, val)
    assert ph["cleanup"] == [20, 60]  # from the last sustained low (step 20), not from the spike at 50
    assert spikes(steps, train) == [{"start": 50, "end": 60, "low": 0.33}]
    assert spikes(steps, [0.1, 0.995, 1.0, 0.5, 0.4, 0.3, 0.2, 0.1]) == [{"start": 30, "end": None, "low": 0.1}]
    assert spikes(steps, [0.1] * 8) == []


@pytest.fixture
def grokked(quick_run):
    """x + y mod 23 on 80% of the table (the quick preset), kept at ~30 log-spaced steps (conftest's run)."""
    summary = rundir.read_summary(quick_run[0])
    assert summary["status"] == "generalized"
    return quick_run[0]


def test_snapshots_are_log_spaced_and_the_last_is_the_final_model(grokked):
    files = rundir.snapshot_files(grokked)
    steps = [s for s, _ in files]
    summary = rundir.read_summary(grokked)
    assert steps[0] == 0 and steps[-1] == summary["steps_run"] and 15 <= len(steps) <= 31
    assert set(steps[:-1]) <= set(rundir.snapshot_steps(5000, 30))
    last = rundir.load_snapshot(files[-1][1])
    final = rundir.load_model(grokked)
    assert all(torch.equal(last[n], final[n]) for n in final.state())


def test_a_grokked_run_uses_a_few_frequencies_and_its_restricted_loss_falls_first(grokked):
    result = analyze(grokked, sharpness_examples=128, sharpness_iters=10, llc_chains=0)
    snaps = result["snapshots"]
    keys = result["key_frequencies"]
    assert 1 <= len(keys) <= 6
    first, last = snaps[0], snaps[-1]
    share = lambda s: np.sum(np.array(s["embedding_norms"])[keys] ** 2) / np.sum(np.array(s["embedding_norms"])[1:] ** 2)  # noqa: E731
    assert share(last) > 0.6 and share(last) > share(first) + 0.2
    assert last["fourier_gini"] > 3 * first["fourier_gini"]
    # memorized, validation accuracy still under one half: the restricted loss has fallen, the validation loss not
    before = [s for s in snaps if s["train_acc"] >= 0.99 and s["val_acc"] < 0.5]
    assert before, "no snapshot between memorization and generalization"
    s = before[0]
    assert s["restricted_loss"] < 0.5 * first["restricted_loss"] and s["restricted_loss"] < 0.5 * s["val_loss"]
    assert all(r["zero_loss_frac"] == 0.0 for r in snaps)  # weight decay keeps softmax collapse away
    assert result["phases"]["memorization"][1] < result["phases"]["cleanup"][1]
    assert result["applies"] == {"embeddings": True, "fourier": True, "multiplicative": False, "irreps": False,
                                 "parity": False, "sharpness": True, "complexity": True,
                                 "llc": llc.available(), "basis": True}


def test_groklab_analyze_writes_its_files_and_refuses_bad_input(grokked, tmp_path, capsys):
    out = tmp_path / "analysis"
    assert main(["analyze", str(grokked), "--out", str(out), "--no-tsne", "--llc-chains", "0",
                 "--sharpness-examples", "64", "--sharpness-iters", "5", "--quiet"]) == 0
    printed = capsys.readouterr()
    assert "key frequencies" in printed.out and "fourier yes" in printed.err and "irreps no" in printed.err
    data = json.loads((out / "analysis.json").read_text())
    assert {"key_frequencies", "fourier_gini", "sharpness", "phases", "snapshots"} <= set(data)
    assert all({"step", "sharpness", "fourier_gini", "restricted_loss", "excluded_loss"} <= set(s)
               for s in data["snapshots"])
    assert {p.name for p in out.iterdir()} == {"analysis.json", "progress.png", "embeddings.png", "fourier.png",
                                               "embeddings_over_time.png", "complexity.png"}
    assert main(["analyze", str(tmp_path / "missing")]) == 2
    assert main(["analyze", str(grokked), "--sharpness-examples", "0"]) == 2
    assert "sharpness_examples 0 is too small" in capsys.readouterr().err
    assert main(["analyze"]) == 2
    assert "give a run directory" in capsys.readouterr().err


@pytest.mark.parametrize("setting", [{"loss": "mse"}, {"loss": "stablemax"},
                                     {"loss": "stablemax", "loss_precision": "fp32", "label_noise": 0.1}])
def test_analysis_at_the_last_snapshot_equals_the_last_metrics_row(tmp_path, setting):
    """analyze measures a run with the run's own loss (in its precision) and the engine's own evaluation: on the
    weights of its last snapshot it reports what metrics.csv logged at that step, bit for bit."""
    cfg = RunConfig(task="add", modulus=11, train_fraction=0.6, d_model=32, n_heads=2, d_mlp=64, lr=3e-3,
                    steps=120, early_stop=False, snapshots=4, **setting)
    train(cfg, out=tmp_path / "run")
    last = analyze(tmp_path / "run", sharpness_examples=16, sharpness_iters=2, llc_chains=0)["snapshots"][-1]
    row = rundir.read_metrics(tmp_path / "run")[-1]
    assert last["step"] == row["step"] == 120
    columns = ("train_loss", "train_acc", "val_loss", "val_acc", "zero_loss_frac", "weight_norm")
    assert {k: last[k] for k in columns} == {k: row[k] for k in columns}
    assert last["sharpness"] == last["sharpness"]  # measured in the run's loss
    # 120 updates leave no frequency standing out of a random embedding's spectrum: no keys, no restricted loss
    assert last["key_frequencies"] == [] and "restricted_loss" not in last


def test_without_snapshots_the_progress_figure_shows_the_curves_and_says_what_needs_snapshots(tmp_path, capsys):
    cfg = RunConfig(task="add", modulus=7, train_fraction=0.6, d_model=32, n_heads=2, d_mlp=64, steps=40)
    train(cfg, out=tmp_path / "run")
    assert main(["analyze", str(tmp_path / "run"), "--no-tsne", "--llc-chains", "0", "--sharpness-examples", "8"]) == 0
    printed = capsys.readouterr()
    assert "snapshot/s" not in printed.err and "no snapshots: only the final weights" in printed.err
    result, figs = analysis_figures(tmp_path / "run", sharpness_examples=8, tsne=False, llc_chains=0)
    fig = figs["progress.png"]
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert len(fig.axes) == 3 and any("--snapshots" in t and "the final weights (step 40)" in t for t in texts)
    assert all(ax.get_lines() for ax in fig.axes[:2])  # the curves: no empty axes
    assert any("top Hessian eigenvalue" in t for t in texts)  # the sharpness analysis's measures, listed


def test_an_analysis_registered_from_python_is_measured_said_drawn_and_has_its_own_flag(tmp_path, capsys):
    """The extension point: one Analysis object (applies, measure, summary, lines, figures, its series in the
    progress figure, a setting of its own) and ``groklab analyze`` runs it, with no change to groklab."""
    from groklab.fields import Field
    from groklab.plots import new_figure

    def measure(snap, keys):
        return {"embedding_rms": float(snap.model["W_E"].detach().pow(2).mean().sqrt()) * snap.options["rms_scale"]}

    def figures(d):
        fig = new_figure()
        fig.subplots().plot([r["embedding_rms"] for r in d.result["snapshots"]])
        return {"rms.png": fig}

    rms = Analysis("rms", "the embedding's root mean square", applies=lambda cfg: cfg.model == "transformer",
                   measure=measure, summary=lambda rows, keys, snap: {"rms": rows[-1]["embedding_rms"]},
                   lines=lambda r: [f"embedding rms {r['rms']:.3f}"], figures=figures,
                   series=(Series("embedding_rms", "embedding rms", "structure"),),
                   fields=(Field("rms_scale", 1.0, "a factor on the rms", gt=0.0),))
    cfg = RunConfig(task="add", modulus=7, train_fraction=0.6, d_model=16, n_heads=2, d_mlp=32, steps=30,
                    snapshots=3)
    train(cfg, out=tmp_path / "run")
    ANALYSES.register(rms)
    try:
        assert main(["analyze", str(tmp_path / "run"), "--no-tsne", "--llc-chains", "0", "--sharpness-examples", "8",
                     "--rms-scale", "2", "--quiet"]) == 0
        out = capsys.readouterr().out
        data = json.loads((tmp_path / "run" / "analysis" / "analysis.json").read_text())
        assert data["applies"]["rms"] and data["rms"] > 0 and f"embedding rms {data['rms']:.3f}" in out
        assert (tmp_path / "run" / "analysis" / "rms.png").exists()
        one = float(rundir.load_model(tmp_path / "run")["W_E"].detach().pow(2).mean().sqrt())
        assert data["snapshots"][-1]["embedding_rms"] == pytest.approx(2 * one)
        assert main(["analyze", str(tmp_path / "run"), "--rms-scale", "0"]) == 2
    finally:
        ANALYSES.unregister("rms")
    assert "rms_scale 0.0 must be > 0.0" in capsys.readouterr().err


def test_the_loss_panel_names_the_restricted_and_excluded_losses_it_draws_and_none_it_does_not():
    """A progress figure titles its loss panel after the curves drawn on it: "restricted and excluded" only where an
    analysis measured them (its keys stood out), naming the basis they keep."""
    from groklab.analysis.figures import progress

    history = [{"step": s, "train_acc": a, "val_acc": a / 2, "train_loss": 1 - a, "val_loss": 2 - a}
               for s, a in ((0, 0.1), (10, 0.5), (20, 0.9))]
    base = [{"step": s, "weight_norm": 10.0, "zero_loss_frac": 0.0, "logit_norm": 1.0, "fourier_gini": 0.1}
            for s in (0, 10, 20)]
    analyses = [ANALYSES["fourier"], ANALYSES["multiplicative"]]

    def loss_panel(snaps):
        fig = progress({"snapshots": snaps, "phases": {}}, history, analyses)
        return next(ax for ax in fig.axes if ax.get_ylabel() == "loss")

    ax = loss_panel(base)  # nothing stood out: no restricted loss measured, none drawn, none named
    assert ax.get_title() == "loss" and not any("restricted" in ln.get_label() for ln in ax.get_lines())
    measured = [{**r, "mult_restricted_loss": 1.0, "mult_excluded_loss": 2.0} for r in base]
    ax = loss_panel(measured)
    assert ax.get_title() == "loss; restricted and excluded on the key multiplicative frequencies"
    assert {ln.get_label() for ln in ax.get_lines()} >= {"restricted loss (key multiplicative frequencies)",
                                                         "excluded loss (key multiplicative frequencies, train)"}


def test_docs_list_every_file_analyze_writes():
    """docs/analysis.md names every figure an analysis can write (the registry's captions) and analysis.json."""
    from pathlib import Path

    from groklab.analysis.progress import captions

    listed = (Path(__file__).parents[1] / "docs" / "analysis.md").read_text().split("\n## ")[0]  # the opening section
    missing = [name for name in [*captions(), "analysis.json"] if f"`{name}`" not in listed]
    assert not missing, f"docs/analysis.md's list of analyze's files lacks {missing}"
