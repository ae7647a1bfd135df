"""Events read off a metrics history: the validation loss's epoch-wise double descent (Figure 4)."""

import math

import numpy as np
import pytest

from groklab.events import DD_FIELDS, double_descent, events
from groklab.plots import double_descent as dd_figure

STEPS = list(range(0, 3000, 10))


def _clear():
    """Falls from 4.6 to 2 by step 300, climbs to 6 at step 1,000, falls to 0.1 by step 2,500."""
    t = np.array(STEPS, dtype=float)
    return np.where(t < 300, 4.6 - 2.6 * t / 300, np.where(t < 1000, 2 + 4 * (t - 300) / 700,
                                                           np.maximum(6 - 5.9 * (t - 1000) / 1500, 0.1)))


def test_a_clear_double_descent_is_found_at_its_steps():
    dd = double_descent(STEPS, _clear().tolist())
    assert dd["val_loss_min_step"] == 300 and dd["val_loss_peak_step"] == 1000
    assert dd["val_loss_peak"] == pytest.approx(6.0)
    # back below 2 once 6 - 5.9 (t - 1000) / 1500 < 2, i.e. after step 2,017 (the running median adds a point)
    assert 2010 <= dd["second_descent_step"] <= 2040


def test_a_monotone_curve_has_none():
    assert double_descent(STEPS, [math.exp(-s / 1000) for s in STEPS]) == dict.fromkeys(DD_FIELDS)
    assert double_descent([0, 10], [1.0, 2.0]) == dict.fromkeys(DD_FIELDS)


def test_noise_neither_makes_nor_hides_a_double_descent():
    rng = np.random.default_rng(0)
    noisy_monotone = np.exp(-np.array(STEPS) / 1000) * (1 + 0.1 * rng.standard_normal(len(STEPS)))
    spikes = noisy_monotone.copy()
    spikes[[50, 120, 200]] *= 5  # single-evaluation spikes
    assert double_descent(STEPS, spikes.tolist()) == dict.fromkeys(DD_FIELDS)
    noisy_dd = _clear() * (1 + 0.1 * rng.standard_normal(len(STEPS)))
    dd = double_descent(STEPS, noisy_dd.tolist())
    assert 250 <= dd["val_loss_min_step"] <= 350 and 900 <= dd["val_loss_peak_step"] <= 1100
    assert 1900 <= dd["second_descent_step"] <= 2150


def test_a_peak_with_no_second_descent_within_the_budget():
    v = _clear()[:150]  # stops at step 1,490: past the peak, not yet back below 2
    dd = double_descent(STEPS[:150], v.tolist())
    assert dd["val_loss_peak_step"] == 1000 and dd["second_descent_step"] is None


def test_events_include_the_double_descent_and_the_figure_draws_it():
    h = {"step": STEPS, "train_acc": [1.0] * len(STEPS), "val_acc": [0.0] * len(STEPS), "val_loss": _clear().tolist()}
    ev = events(h)
    assert ev["val_loss_peak_step"] == 1000 and ev["step_train_acc_99"] == 0
    rows = [{"step": s, "train_loss": 0.1, "val_loss": v, "train_acc": 1.0, "val_acc": 0.0}
            for s, v in zip(STEPS, _clear())]
    fig = dd_figure(rows)
    assert "peaks at step 1,000" in fig._suptitle.get_text()


def test_generalized_means_held_to_the_end_and_the_first_touch_is_kept_apart():
    from groklab.events import describe, events

    steps = [0, 100, 200, 6200, 6300, 9000]
    fell_back = events({"step": steps, "train_acc": [0, 1, 1, 1, 1, 1], "val_acc": [0, 0.3, 0.5, 0.995, 0.13, 0.2]})
    assert fell_back["step_val_acc_99"] is None and fell_back["step_val_acc_99_first"] == 6200
    assert fell_back["grok_delay"] is None
    summary = {**fell_back, "steps_run": 9000, "best_val_acc": 0.995, "final_train_acc": 1.0}
    assert describe(summary) == ("memorized at step 100, did not generalize within 9,000 steps (best validation "
                                 "accuracy 0.995; it reached 99% validation accuracy at step 6,200 but did not hold it)")
    came_back = events({"step": steps, "train_acc": [0, 1, 1, 1, 1, 1], "val_acc": [0, 0.3, 0.995, 0.5, 0.99, 1.0]})
    assert came_back["step_val_acc_99"] == 6300 and came_back["step_val_acc_99_first"] == 200
    assert came_back["grok_delay"] == 63.0
    assert "generalized at step 6,300 (first touched 99% at step 200)" in describe(
        {**came_back, "steps_run": 9000, "best_val_acc": 1.0, "final_train_acc": 1.0})


def test_a_schema_3_store_is_migrated_to_the_held_step(tmp_path):
    from groklab import RunConfig
    from groklab.store import Store

    cfg = RunConfig(task="add", modulus=7, steps=400)
    hist = [{"step": s, "train_loss": 0.1, "train_acc": 1.0, "val_loss": 0.1, "val_acc": v, "zero_loss_frac": 0.0,
             "weight_norm": 1.0, "lr": 1e-3, "elapsed_s": 0.1} for s, v in ((0, 0.1), (100, 0.995), (200, 0.4),
                                                                             (300, 0.99), (400, 1.0))]
    store = Store(tmp_path / "s.db")
    store.finish_run(cfg, {"status": "generalized", "step_train_acc_99": 0, "step_val_acc_99": 100,
                           "grok_delay": 100.0}, hist)
    store.db.execute("ALTER TABLE runs DROP COLUMN step_val_acc_99_first")  # as schema 3 had it
    store.db.execute("UPDATE meta SET value='3' WHERE key='groklab_store'")
    store.db.commit()
    store.close()
    row = Store(tmp_path / "s.db").get(cfg)
    assert row["step_val_acc_99"] == 300 and row["step_val_acc_99_first"] == 100 and row["grok_delay"] == 300.0
