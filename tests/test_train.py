
import pytest
import torch
from helpers import train_interrupted

from groklab import RunConfig, rundir
from groklab.train import eval_interval, is_eval_step, train, train_group


def test_tiny_run_memorizes_then_generalizes(quick_run):
    s = rundir.read_summary(quick_run[0])
    assert s["status"] == "generalized"
    assert s["final_val_acc"] >= 0.99 and s["final_train_acc"] >= 0.99
    assert s["step_train_acc_99"] < s["step_val_acc_99"]
    assert s["grok_delay"] == pytest.approx(s["step_val_acc_99"] / s["step_train_acc_99"])
    # early stop: held >= 0.99 for stop_patience (100) steps, then stopped well before the budget (5,000)
    assert s["step_val_acc_99"] + 100 <= s["steps_run"] < 5000


def test_same_seed_same_run_and_other_seed_differs(tiny):
    cfg = tiny.replace(steps=60, early_stop=False)
    a, b = train(cfg), train(cfg)
    c = train(cfg.replace(seed=1))
    strip = lambda h: [{k: v for k, v in r.items() if k != "elapsed_s"} for r in h]  # noqa: E731
    assert strip(a.history) == strip(b.history)
    assert strip(a.history) != strip(c.history)


@pytest.mark.parametrize("noise", [{}, {"grad_noise": 0.1, "weight_noise": 0.01, "label_noise": 0.1, "l2": 0.01}])
def test_resumed_run_equals_uninterrupted_run_bitwise(tiny, tmp_path, noise):
    """Stopped at step 90 (its last checkpoint at 80: steps 81-90 are computed again), then resumed: the run's
    metrics and final weights are bit for bit those of the run trained without a stop, noise streams included."""
    cfg = tiny.replace(d_model=32, d_mlp=64, steps=160, early_stop=False, checkpoint_every=40, **noise)
    train(cfg, tmp_path / "whole")
    first = train_interrupted(cfg, tmp_path / "cut", after=90)
    assert first.summary["status"] == "interrupted" and first.summary["steps_run"] == 90
    resumed = train(cfg, tmp_path / "cut", resume=True)
    assert resumed.summary["steps_run"] == 160
    strip = lambda rows: [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]  # noqa: E731
    assert strip(rundir.read_metrics(tmp_path / "cut")) == strip(rundir.read_metrics(tmp_path / "whole"))
    a = rundir.load_checkpoint(tmp_path / "whole")["params"]
    b = rundir.load_checkpoint(tmp_path / "cut")["params"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("extra", [{}, {"dropout": 0.1, "grad_noise": 0.05}])
def test_a_run_trains_the_same_alone_in_a_group_of_2_and_of_8(tiny, extra):
    """A run's result must not depend on which runs it was stacked with: after 100 updates its weights and its
    evaluation are bit for bit those it has alone (a last-bit difference would show here at once; it did when a
    single run took its own matmul and LayerNorm kernels and smaller batches were padded)."""
    from groklab.engine import Group

    cfg = tiny.replace(d_model=32, d_mlp=64, train_fraction=0.5, **extra)
    others = [cfg.replace(seed=s, lr=lr) for s, lr in zip(range(1, 8), (1e-3, 3e-3, 2e-3) * 3)]

    def trained(cfgs):
        g = Group.build(cfgs)
        for _ in range(100):
            g.step()
        return g.member_params(0), g.evaluate()[0]

    alone, row = trained([cfg])
    for group in ([cfg, others[0]], [cfg] + others):
        params, grouped_row = trained(group)
        assert all(torch.equal(params[k], alone[k]) for k in alone) and grouped_row == row


def test_runs_of_different_batch_sizes_do_not_stack(tiny):
    from groklab.engine import GroupSpec
    from groklab.errors import ConfigError
    from groklab.sweep import make_groups

    a, b = tiny.replace(train_fraction=0.5), tiny.replace(train_fraction=0.8)
    assert a.resolved_batch_size != b.resolved_batch_size
    with pytest.raises(ConfigError, match="share batch_size"):
        GroupSpec.of([a, b])
    assert sorted(len(g) for g in make_groups([a, b, a.replace(seed=1)], 1, 8)) == [1, 2]


def test_runs_that_finish_drop_out_of_the_group(tiny):
    cfgs = [tiny.replace(steps=30), tiny.replace(steps=70, seed=1)]
    a, b = train_group(cfgs)
    assert a.summary["steps_run"] == 30 and b.summary["steps_run"] == 70


def test_non_finite_loss_stops_the_run_as_diverged(tiny, tmp_path):
    cfg = tiny.replace(optimizer="sgd", lr=1e30, weight_decay=0.0, warmup_steps=0, steps=100)
    result = train(cfg, tmp_path / "run")
    assert result.summary["status"] == "diverged"
    assert result.summary["steps_run"] < 100


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_other_optimizers_reduce_the_training_loss(tiny, kind):
    cfg = tiny.replace(optimizer=kind, lr=1e-3 if kind == "adam" else 0.3, momentum=0.9 if kind == "sgd" else 0.0,
                       weight_decay=0.0, steps=100, early_stop=False)
    h = train(cfg).history
    assert h[-1]["train_loss"] < 0.8 * h[0]["train_loss"]


def test_evaluation_schedule_is_dense_early_and_log_spaced_later():
    cfg = RunConfig(steps=1_000_000)
    n = sum(is_eval_step(s, cfg) for s in range(0, 1_000_001))
    assert n < 500
    assert eval_interval(50, 10) == 10 and eval_interval(5_000, 10) == 100 and eval_interval(500_000, 10) == 10_000


def test_compiled_training_step_follows_the_eager_one(tiny, monkeypatch):
    """--compile runs the same update through torch.compile: the same trajectory up to float rounding. Traced by
    TorchDynamo and AOTAutograd (the aot_eager backend): what groklab's step must allow. Inductor's own kernels,
    the default backend, take 50-80 s to build on 2 cores; their numerics are PyTorch's to test."""
    import groklab.engine as engine

    monkeypatch.setattr(engine, "COMPILE_BACKEND", "aot_eager")
    cfgs = [tiny.replace(steps=20, early_stop=False, seed=s) for s in (0, 1)]
    eager = train_group(cfgs)
    compiled = train_group([c.replace(compile=True) for c in cfgs])
    for a, b in zip(eager, compiled):
        for r1, r2 in zip(a.history, b.history):
            assert r1["step"] == r2["step"]
            assert r2["train_loss"] == pytest.approx(r1["train_loss"], rel=1e-3, abs=1e-4)


def test_label_noise_run_memorizes_its_wrong_answers_and_generalizes_worse(tiny):
    """15% of the training answers wrong: the network fits them all (training accuracy is measured against the
    answers it trains on, so the memorization event is set) while the validation accuracy stays far below the
    clean run's, which generalizes by step ~700 (test_tiny_run_memorizes_then_generalizes)."""
    s = train(tiny.replace(label_noise=0.15, steps=500)).summary
    assert s["step_train_acc_99"] is not None and s["step_val_acc_99"] is None
    assert s["best_val_acc"] < 0.9


def test_events_describe_a_run_that_generalized_without_fitting_its_training_set():
    from groklab.events import describe

    s = {"step_train_acc_99": None, "step_val_acc_99": 400, "final_train_acc": 0.85, "steps_run": 900,
         "best_val_acc": 1.0}
    assert describe(s) == "generalized at step 400 but never fit 99% of its training answers (final training accuracy 0.850)"


def test_the_progress_bar_says_the_phase_not_an_eta_to_the_budget(tiny):
    from groklab.train import RunState

    run = RunState(tiny, None)
    assert run.phase(None) == "starting"
    row = {"step": 100, "train_loss": 1.0, "val_loss": 3.0, "weight_norm": 10.0, "train_acc": 0.5, "val_acc": 0.1}
    run.record(row)
    assert run.phase(20.0).startswith("memorizing (train 0.500, val 0.100)")
    run.record({**row, "step": 200, "train_acc": 1.0})
    assert run.phase(20.0).startswith("memorized at 200, waiting to generalize")
    run.record({**row, "step": 700, "train_acc": 1.0, "val_acc": 0.995})
    run.record({**row, "step": 760, "train_acc": 1.0, "val_acc": 0.995})
    # stop_patience 100: 40 more updates after step 760, 2 s at 20 updates/s
    assert run.phase(20.0).startswith("val >= 0.99 since 700: stops if it holds 40 more updates, ~2 s")
    free = RunState(tiny.replace(early_stop=False), None)
    free.record({**row, "train_acc": 1.0, "val_acc": 1.0})
    assert free.phase(None).startswith("val >= 0.99 since 100")


def test_a_budget_that_would_take_hours_is_said_once_a_few_seconds_in(monkeypatch):
    import importlib
    from types import SimpleNamespace

    train_module = importlib.import_module("groklab.train")  # the module (groklab.train is also the function)

    member = SimpleNamespace(step=0)
    g = SimpleNamespace(members=[member])
    said = []
    pace = train_module.Pace(g, 100_000, said.append)
    pace.tick(g)
    assert said == []  # not before SLOW_AFTER_S
    monkeypatch.setattr(train_module, "SLOW_AFTER_S", 0.0)
    pace.t0 -= 50.0  # 50 s for 25 updates: 0.5 updates/s, 100,000 updates in about 2.3 days
    member.step = 25
    pace.tick(g)
    pace.tick(g)
    assert len(said) == 1 and "about 2.3 days more" in said[0]
    quick = train_module.Pace(g, 100, said.append)  # a budget of minutes says nothing
    quick.t0 -= 50.0
    member.step = 50
    quick.tick(g)
    assert len(said) == 1
