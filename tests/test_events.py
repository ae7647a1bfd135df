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
