"""Figures: each returns a matplotlib Figure; store figures come from the registry the CLI reads."""

import pytest

from groklab.cli import main
from groklab.figures import FIGURES, FigureSpec, Selection, selection


def test_a_registered_figure_is_drawn_by_groklab_plot(tmp_path, capsys):
    from groklab import RunConfig
    from groklab.store import Store

    cfg = RunConfig(task="add", modulus=7)
    store = Store(tmp_path / "s.db")
    store.finish_run(cfg, {"task": "add", "modulus": 7, "train_fraction": 0.5, "seed": 0, "steps_run": 10,
                           "status": "budget_exhausted", "best_val_acc": 0.5},
                     [{"step": 0, "train_loss": 1.0, "train_acc": 0.1, "val_loss": 1.0, "val_acc": 0.1,
                       "weight_norm": 1.0, "lr": 1e-3, "elapsed_s": 0.0}])
    seen = {}

    def n_runs(sel):
        from matplotlib.figure import Figure

        seen["runs"] = len(sel.runs)
        fig = Figure()
        fig.subplots().bar([0], [len(sel.runs)])
        return fig

    FIGURES.register(FigureSpec("n-runs", "a bar of how many runs the store holds", n_runs))
    try:
        assert main(["plot", "n-runs", "--store", str(tmp_path / "s.db"), "-o", str(tmp_path / "n.png")]) == 0
        assert seen == {"runs": 1} and (tmp_path / "n.png").stat().st_size > 1000
    finally:
        FIGURES.unregister("n-runs")
    assert main(["plot", "n-runs", "--store", str(tmp_path / "s.db"), "-o", str(tmp_path / "m.png")]) == 2
    assert "plot kind 'n-runs' is not allowed; allowed: curves, double-descent, model-wise, data-efficiency, best-val" in capsys.readouterr().err


def test_importing_groklab_leaves_the_matplotlib_backend_alone():
    import subprocess
    import sys

    code = ("import matplotlib; matplotlib.use('svg'); import groklab.plots, groklab.train, groklab.cli; "
            "print(matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["svg"]  # the user's choice, not one groklab imposes


def test_figures_are_figures_and_save(tmp_path):
    from groklab.plots import best_val, curves, data_efficiency

    rows = [{"step": s, "train_acc": 0.5, "val_acc": 0.2, "train_loss": 1.0, "val_loss": 2.0} for s in (0, 10)]
    summaries = [{"task": "add", "train_fraction": f, "seed": 0, "steps_run": 10, "step_val_acc_99": v,
                  "step_train_acc_99": 2, "best_val_acc": 0.3} for f, v in ((0.3, None), (0.5, 5))]
    for fig in (curves({"a": rows}), data_efficiency(summaries), best_val(summaries)):
        fig.savefig(tmp_path / "f.svg")
        assert (tmp_path / "f.svg").read_text().startswith("<?xml")


def test_best_val_names_tasks_by_equation_and_dashes_the_asymmetric_ones(tmp_path):
    from groklab import RunConfig
    from groklab.store import Store

    store = Store(tmp_path / "s.db")
    for task in ("add", "sub"):
        for f in (0.3, 0.6):
            cfg = RunConfig(task=task, modulus=7, train_fraction=f)
            store.finish_run(cfg, {"task": task, "modulus": 7, "train_fraction": f, "seed": 0, "steps_run": 10,
                                   "status": "budget_exhausted", "best_val_acc": f}, [])

    fig = FIGURES["best-val"].draw(Selection(store.runs(), store.metrics))
    lines = {ln.get_label(): ln.get_linestyle() for ln in fig.axes[0].get_lines()}
    assert lines == {"x + y mod p": "-", "x - y mod p": "--"}


def test_compare_figure_has_a_line_per_variant_and_marks_runs_that_never_generalized():
    from groklab.plots import compare

    runs = lambda best, step: [{"train_fraction": f, "seed": s, "best_val_acc": best, "step_val_acc_99": step,  # noqa: E731
                                "steps": 1000} for f in (0.5, 0.9) for s in (0, 1)]
    fig = compare({"AdamW": runs(1.0, 400), "Adam": runs(0.2, None)})
    best, steps = fig.axes
    assert [ln.get_label() for ln in best.get_lines()] == ["AdamW", "Adam"]
    adam_steps = [ln for ln in steps.get_lines() if ln.get_label() == "Adam"][0]
    assert list(adam_steps.get_ydata()) == [1000, 1000]  # drawn at the budget


def test_plot_to_an_unwritable_image_is_refused_before_drawing(tmp_path, capsys):
    from groklab.store import Store

    Store(tmp_path / "s.db")
    assert main(["plot", "best-val", "--store", str(tmp_path / "s.db"), "-o", str(tmp_path / "x.docx")]) == 2
    assert "has no image type matplotlib writes" in capsys.readouterr().err


def test_store_figures_leave_out_interrupted_runs(tmp_path, capsys):
    from groklab import RunConfig
    from groklab.store import Store

    store = Store(tmp_path / "s.db")
    store.finish_run(RunConfig(task="add", modulus=7, seed=1), {
        "task": "add", "modulus": 7, "train_fraction": 0.5, "seed": 1, "steps_run": 3, "status": "interrupted"}, [])
    assert main(["plot", "best-val", "--store", str(tmp_path / "s.db"), "-o", str(tmp_path / "b.png")]) == 2
    assert "holds no finished runs" in capsys.readouterr().err


def test_groklab_plot_double_descent_draws_one_run(tmp_path, capsys):
    from groklab import RunConfig
    from groklab.sweep import run_sweep

    store = tmp_path / "s.db"
    run_sweep([RunConfig(task="add", modulus=7, d_model=16, n_heads=2, d_mlp=16, steps=20)], store, workers=1,
              progress=False)
    assert main(["plot", "double-descent", "--store", str(store), "--run-id", "1", "-o", str(tmp_path / "d.png")]) == 0
    assert (tmp_path / "d.png").stat().st_size > 1000
    assert main(["plot", "double-descent", "--store", str(store), "--run-id", "1,2", "-o", str(tmp_path / "e.png")]) == 2
    assert "draws one finished run" in capsys.readouterr().err


def test_model_wise_reads_each_run_at_each_training_length():
    from groklab.plots import model_wise

    runs = [{"id": i, "n_params": n, "steps_run": 1000} for i, n in enumerate([100, 100, 1000, 1000])]
    hist = {i: [{"step": s, "val_loss": 1.0 / (1 + s * (i + 1)), "val_acc": min(1.0, s / 1000), "train_acc": 1.0}
                for s in (0, 10, 100, 1000)] for i in range(4)}
    fig = model_wise(runs, hist.__getitem__)
    ax_loss, ax_acc = fig.axes
    lines = {ln.get_label(): ln for ln in ax_loss.get_lines()}
    assert set(lines) == {"10 steps", "100 steps", "1,000 steps"}
    # at 100 steps, size 100 (runs 0, 1): losses 1/101 and 1/201, median 0.0074...
    assert list(lines["100 steps"].get_xdata()) == [100, 1000]
    assert lines["100 steps"].get_ydata()[0] == pytest.approx((1 / 101 + 1 / 201) / 2)


def test_curve_labels_name_the_config_fields_that_differ_between_runs():
    import json

    from groklab.queries import run_labels

    base = {"task": "digits", "train_fraction": 0.3, "seed": 0, "lr": 1e-3, "init_scale": 1.0, "name": "a"}
    rows = [{"id": i + 1, "task": "digits", "train_fraction": 0.3, "seed": 0,
             "config": json.dumps({**base, "init_scale": s, "name": n})} for i, (s, n) in enumerate([(1.0, "a"), (8.0, "b")])]
    assert run_labels(rows) == ["#1 digits f=0.3 s=0 init_scale=1", "#2 digits f=0.3 s=0 init_scale=8"]
    assert run_labels(rows[:1]) == ["#1 digits f=0.3 s=0"]


def _store_with_two_weight_decays(tmp_path):
    from groklab import RunConfig
    from groklab.sweep import run_sweep

    cfgs = [RunConfig(task="add", modulus=7, d_model=16, n_heads=2, d_mlp=32, steps=30, early_stop=False,
                      train_fraction=f, seed=s, weight_decay=wd)
            for f in (0.5, 0.8) for s in (0, 1) for wd in (0.0, 1.0)]
    run_sweep(cfgs, tmp_path / "s.db", workers=1, progress=False)
    return tmp_path / "s.db"


def test_plots_and_runs_do_not_pool_settings_as_if_they_were_seeds(tmp_path, capsys):
    from groklab.queries import by_setting, where
    from groklab.store import Store

    path = _store_with_two_weight_decays(tmp_path)
    st = Store(path)
    rows = st.runs()
    groups = by_setting(rows, exclude=("train_fraction",))
    assert sorted(groups) == ["add, weight_decay=0", "add, weight_decay=1"]
    assert all(len(g) == 4 for g in groups.values())
    fig = FIGURES["data-efficiency"].draw(selection(st, rows))
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert {"add, weight_decay=0: validation", "add, weight_decay=1: validation"} <= set(labels)
    # groklab runs shows the setting that varies; the store's frame has every config field as a column
    assert main(["runs", "--store", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[-1] == "weight_decay" and {ln.split()[-1] for ln in out[1:]} == {"0.0", "1.0"}
    frame = st.to_dataframe()
    assert frame.groupby("weight_decay").size().to_dict() == {0.0: 4, 1.0: 4}
    assert len(where(rows, ["weight_decay=1"])) == 4 and len(where(rows, ["weight-decay=0", "seed=1"])) == 2


def test_model_wise_refuses_runs_that_differ_in_more_than_size(tmp_path, capsys):
    path = _store_with_two_weight_decays(tmp_path)
    assert main(["plot", "model-wise", "--store", str(path), "-o", str(tmp_path / "m.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "differ in" in err and "weight_decay" in err
    assert main(["plot", "data-efficiency", "--store", str(path), "-o", str(tmp_path / "d.png"),
                 "--where", "weight_decay=1"]) == 0
    assert main(["plot", "curves", "--store", str(path), "-o", str(tmp_path / "c.png"), "--where", "lr"]) == 2
    assert "--where 'lr' is not allowed" in capsys.readouterr().err


def test_runs_command_refuses_bad_status_and_unwritable_csv_in_one_line(tmp_path, capsys):
    path = _store_with_two_weight_decays(tmp_path)
    for args, msg in ((["--status", "genralized"], "status 'genralized' is not allowed"),
                      (["--csv", str(tmp_path / "no" / "r.csv")], "does not exist"),
                      (["--metrics-csv", str(tmp_path / "no" / "m.csv")], "does not exist")):
        assert main(["runs", "--store", str(path), *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and msg in err, err
    assert main(["runs", "--store", str(path), "--csv", str(tmp_path / "r.csv"), "--status", "budget_exhausted"]) == 0
    import pandas as pd

    assert len(pd.read_csv(tmp_path / "r.csv")) == 8 and "weight_decay" in pd.read_csv(tmp_path / "r.csv").columns


def test_one_colour_per_setting_in_every_figure_and_dataframes_are_rows(tmp_path):
    from matplotlib.colors import to_hex

    from groklab import RunConfig
    from groklab.plots import Palette, compare, data_efficiency
    from groklab.store import Store

    store = Store(tmp_path / "s.db")
    row = {"step": 0, "train_loss": 1.0, "train_acc": 0.1, "val_loss": 1.0, "val_acc": 0.1, "weight_norm": 1.0,
           "lr": 1e-3, "elapsed_s": 0.0}
    for wd in (1.0, 0.0):  # weight decay 1 first: in each figure's own order it would take the first colour
        for f in (0.3, 0.6):
            cfg = RunConfig(task="add", modulus=7, train_fraction=f, weight_decay=wd)
            store.finish_run(cfg, {"task": "add", "modulus": 7, "train_fraction": f, "seed": 0, "steps_run": 10,
                                   "status": "budget_exhausted", "best_val_acc": f * (1 + wd),
                                   "step_val_acc_99": 5 if wd else None, "step_train_acc_99": 2}, [row])
    runs = store.runs()
    sel = selection(store, runs, [runs[0]["id"], runs[2]["id"]])
    colour_of = {}  # figure -> {weight decay in the line's label: colour}
    for name in ("data-efficiency", "best-val", "curves"):
        fig = FIGURES[name].draw(sel)
        colour_of[name] = {("1" if "weight_decay=1" in ln.get_label() else "0"): to_hex(ln.get_color())
                           for ln in fig.axes[0].get_lines() if "weight_decay=" in ln.get_label()}
    wd1 = [r for r in runs if r["config"].find('"weight_decay": 1.0') >= 0]
    wd0 = [r for r in runs if r not in wd1]
    fig = compare({"no decay": wd0, "decay 1": wd1}, palette=sel.palette)
    colour_of["compare"] = {("1" if ln.get_label() == "decay 1" else "0"): to_hex(ln.get_color())
                            for ln in fig.axes[0].get_lines() if ln.get_label() in ("decay 1", "no decay")}
    assert all(c == colour_of["best-val"] for c in colour_of.values()), colour_of
    assert colour_of["best-val"]["1"] != colour_of["best-val"]["0"]
    assert Palette(runs)(wd1[0]) == sel.palette(wd1[1])
    # a DataFrame of the store (Store.to_dataframe) is what the figures take as well
    fig = data_efficiency(store.to_dataframe())
    assert {ln.get_label() for ln in fig.axes[0].get_lines()} >= {
        "add, weight_decay=1: validation", "add, weight_decay=0: validation"}
