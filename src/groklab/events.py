"""Grokking events from a metrics history: when a run memorized, when it generalized, the delay.

>>> steps_at([0, 10, 20, 30], [0.1, 0.995, 0.3, 1.0])
10
>>> events({"step": [0, 100, 400], "train_acc": [0.0, 1.0, 1.0], "val_acc": [0.0, 0.2, 0.99]})
{'step_train_acc_99': 100, 'step_val_acc_99': 400, 'grok_delay': 4.0}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

THRESHOLD = 0.99


def steps_at(steps: Sequence[int], acc: Sequence[float], threshold: float = THRESHOLD) -> int | None:
    """The first evaluated step whose accuracy reached ``threshold``, or None."""
    for s, a in zip(steps, acc):
        if a >= threshold:
            return int(s)
    return None


def grok_delay(step_train: int | None, step_val: int | None) -> float | None:
    """step_val / step_train: how many times later the run generalized than it memorized."""
    if step_train is None or step_val is None:
        return None
    return step_val / max(step_train, 1)


def events(history: Mapping[str, Sequence]) -> dict:
    """``step_train_acc_99``, ``step_val_acc_99`` and ``grok_delay`` of a history with columns step, train_acc, val_acc."""
    st = steps_at(history["step"], history["train_acc"])
    sv = steps_at(history["step"], history["val_acc"])
    return {"step_train_acc_99": st, "step_val_acc_99": sv, "grok_delay": grok_delay(st, sv)}


def describe(summary: Mapping) -> str:
    """The events in plain words, e.g. 'memorized at step 700, generalized at step 2,500: 3.6x later'."""
    st, sv = summary.get("step_train_acc_99"), summary.get("step_val_acc_99")
    if st is None and sv is not None:  # e.g. label noise: learning the rule means answering wrong labels "wrongly"
        return (f"generalized at step {sv:,} but never fit 99% of its training answers "
                f"(final training accuracy {summary['final_train_acc']:.3f})")
    if st is None:
        return f"did not memorize within {summary['steps_run']:,} steps (best validation accuracy {summary['best_val_acc']:.3f})"
    if sv is None:
        return (f"memorized at step {st:,}, did not generalize within {summary['steps_run']:,} steps "
                f"(best validation accuracy {summary['best_val_acc']:.3f})")
    return f"memorized at step {st:,}, generalized at step {sv:,}: {summary['grok_delay']:.1f}x later"
