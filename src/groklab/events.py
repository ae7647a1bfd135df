"""Grokking events from a metrics history: when a run memorized, when it generalized, the delay, and the
validation loss's epoch-wise double descent (the paper's Figure 4).

    >>> steps_at([0, 10, 20, 30], [0.1, 0.995, 0.3, 1.0])
    10
    >>> held_from([0, 10, 20, 30, 40], [0.1, 0.995, 0.3, 1.0, 0.999])
    30
    >>> events({"step": [0, 100, 400, 500], "train_acc": [0.0, 1.0, 1.0, 1.0], "val_acc": [0.0, 0.995, 0.5, 0.99]})
    {'step_train_acc_99': 100, 'step_val_acc_99': 500, 'step_val_acc_99_first': 100, 'grok_delay': 5.0}

A run *generalized* at the step from which its validation accuracy stayed >= 0.99 to its last evaluation (the
stop rule's notion, ``step_val_acc_99``); the first evaluation that touched 0.99 is ``step_val_acc_99_first``.
A run that touched 0.99 and fell back did not generalize. Memorization is the first touch of 0.99 training
accuracy (``step_train_acc_99``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

THRESHOLD = 0.99


def steps_at(steps: Sequence[int], acc: Sequence[float], threshold: float = THRESHOLD) -> int | None:
    """The first evaluated step whose accuracy reached ``threshold``, or None."""
    for s, a in zip(steps, acc):
        if a >= threshold:
            return int(s)
    return None


def held_from(steps: Sequence[int], acc: Sequence[float], threshold: float = THRESHOLD) -> int | None:
    """The first step of the last streak of evaluations at or above ``threshold``, when that streak reaches the
    last evaluation (accuracy held from there on); None when the last evaluation is below it."""
    start = None
    for s, a in zip(steps, acc):
        if a >= threshold:
            start = int(s) if start is None else start
        else:
            start = None
    return start


def grok_delay(step_train: int | None, step_val: int | None) -> float | None:
    """step_val / step_train: how many times later the run generalized than it memorized."""
    if step_train is None or step_val is None:
        return None
    return step_val / max(step_train, 1)


DD_FIELDS = ("val_loss_min_step", "val_loss_peak_step", "val_loss_peak", "second_descent_step")


def _running_median(values: list[float], window: int) -> list[float]:
    h = window // 2
    out = []
    for i in range(len(values)):
        w = sorted(values[max(0, i - h): i + h + 1])
        out.append(w[len(w) // 2] if len(w) % 2 else 0.5 * (w[len(w) // 2 - 1] + w[len(w) // 2]))
    return out


def double_descent(steps: Sequence[int], val_loss: Sequence[float], rise: float = 0.25,
                   window: int = 5) -> dict:
    """Epoch-wise double descent of a validation-loss curve: it falls to a first minimum, rises to a peak and
    falls again. Returns ``val_loss_min_step`` (the first minimum), ``val_loss_peak_step`` and ``val_loss_peak``,
    and ``second_descent_step``: the first step after the peak where the loss is back below its first minimum
    (None when it never is); all None when the curve has no such rise.

    The peak is the curve's highest point, the first minimum the lowest before it; it counts when the peak is
    more than ``1 + rise`` times that minimum. Both are read through a running median over ``window``
    evaluations (so single noisy evaluations neither make a peak nor end one), then placed at the raw extreme
    nearby. A late spike lower than the memorization peak is not the double descent.
    """
    none = dict.fromkeys(DD_FIELDS)
    if len(steps) < 3 or not all(math.isfinite(v) for v in val_loss):
        return none
    v = [float(x) for x in val_loss]
    sm = _running_median(v, window)
    peak = max(range(len(sm)), key=lambda j: sm[j])
    if peak == 0:
        return none
    m1 = min(range(peak), key=lambda j: sm[j])
    if sm[peak] <= (1 + rise) * sm[m1]:
        return none
    h = window // 2
    m1 = min(range(max(0, m1 - h), min(peak, m1 + h + 1)), key=lambda j: v[j])
    after = next((j for j in range(peak + 1, len(sm)) if sm[j] < v[m1]), None)
    top = max(range(max(m1 + 1, peak - h), min(len(v), peak + h + 1)), key=lambda j: v[j])
    return {"val_loss_min_step": int(steps[m1]), "val_loss_peak_step": int(steps[top]), "val_loss_peak": v[top],
            "second_descent_step": int(steps[after]) if after is not None else None}


def events(history: Mapping[str, Sequence]) -> dict:
    """``step_train_acc_99``, ``step_val_acc_99`` and ``grok_delay`` of a history with columns step, train_acc,
    val_acc; with a val_loss column also its double descent (``double_descent``)."""
    st = steps_at(history["step"], history["train_acc"])
    sv = held_from(history["step"], history["val_acc"])
    out = {"step_train_acc_99": st, "step_val_acc_99": sv,
           "step_val_acc_99_first": steps_at(history["step"], history["val_acc"]), "grok_delay": grok_delay(st, sv)}
    if "val_loss" in history:
        out.update(double_descent(history["step"], history["val_loss"]))
    return out


def of_rows(rows: Sequence[Mapping]) -> dict:
    """``events`` of a list of metrics rows (metrics.csv, the store)."""
    return events({k: [r[k] for r in rows] for k in ("step", "train_acc", "val_acc", "val_loss")})


def describe(summary: Mapping) -> str:
    """The events in plain words, e.g. 'memorized at step 700, generalized at step 2,500: 3.6x later'."""
    st, sv = summary.get("step_train_acc_99"), summary.get("step_val_acc_99")
    if st is None and sv is not None:  # e.g. label noise: learning the rule means answering wrong labels "wrongly"
        return (f"generalized at step {sv:,} but never fit 99% of its training answers "
                f"(final training accuracy {summary['final_train_acc']:.3f})")
    first = summary.get("step_val_acc_99_first")
    if st is None:
        return f"did not memorize within {summary['steps_run']:,} steps (best validation accuracy {summary['best_val_acc']:.3f})"
    if sv is None:
        fell = (f"; it reached 99% validation accuracy at step {first:,} but did not hold it" if first is not None
                else "")
        return (f"memorized at step {st:,}, did not generalize within {summary['steps_run']:,} steps "
                f"(best validation accuracy {summary['best_val_acc']:.3f}{fell})")
    touched = f" (first touched 99% at step {first:,})" if first is not None and first < sv else ""
    return f"memorized at step {st:,}, generalized at step {sv:,}{touched}: {summary['grok_delay']:.1f}x later"
