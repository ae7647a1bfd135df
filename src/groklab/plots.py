"""One function per figure, each returning a matplotlib Figure, and ``FIGURES``: the ones drawn from a store.

- ``curves``: train / validation accuracy (and loss) vs log-scaled steps (paper Figure 1, left).
- ``data_efficiency``: median steps to 99% validation (and training) accuracy vs training
  fraction, one line per task, spread over seeds (Figure 1, centre).
- ``best_val``: best validation accuracy within the budget vs training fraction (Figure 2, right).

Adding a figure: a function returning a Figure, and a ``@figure(name, help)`` function that draws it
from a ``Selection`` of a store's runs; ``groklab plot NAME`` then draws it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from matplotlib.figure import Figure  # figures without pyplot: no backend chosen, no global figure state

from .errors import ConfigError

TRAIN, VAL = "tab:red", "tab:green"


def curves(histories: Mapping[str, Sequence[Mapping]], loss: bool = True, title: str | None = None) -> Figure:
    """Accuracy (and loss) of one or several runs vs log-scaled optimization steps.

    ``histories`` maps a label to a list of metrics rows (step, train_acc, val_acc, ...).
    """
    fig = Figure(figsize=(11 if loss else 6, 4))
    axes = fig.subplots(1, 2 if loss else 1, squeeze=False)
    ax_acc = axes[0, 0]
    single = len(histories) == 1
    for i, (label, rows) in enumerate(histories.items()):
        steps = np.array([max(r["step"], 1) for r in rows])
        style = dict(lw=1.8) if single else dict(lw=1.2, color=f"C{i}")
        pre = "" if single else f"{label} "
        ax_acc.plot(steps, [r["train_acc"] for r in rows], label=f"{pre}train", ls="-" if single else "--",
                    **({"color": TRAIN} if single else {}), **style)
        ax_acc.plot(steps, [r["val_acc"] for r in rows], label=f"{pre}val", **({"color": VAL} if single else {}),
                    **style)
        if loss:
            ax = axes[0, 1]
            ax.plot(steps, [r["train_loss"] for r in rows], ls="-" if single else "--",
                    **({"color": TRAIN} if single else {}), **style)
            ax.plot(steps, [r["val_loss"] for r in rows], **({"color": VAL} if single else {}), **style)
    ax_acc.set(xscale="log", xlabel="Optimization steps", ylabel="Accuracy", ylim=(-0.02, 1.02))
    ax_acc.legend(loc="lower right", fontsize=8)
    ax_acc.grid(alpha=0.3)
    if loss:
        ax = axes[0, 1]
        ax.set(xscale="log", yscale="log", xlabel="Optimization steps", ylabel="Loss")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_curves(rows: Sequence[Mapping], path: str | Path, title: str | None = None) -> None:
    fig = curves({"run": rows}, title=title)
    fig.savefig(path, dpi=90)


def _by_task_fraction(summaries: Sequence[Mapping], key: str):
    out: dict[str, dict[float, list]] = {}
    for s in summaries:
        out.setdefault(s["task"], {}).setdefault(float(s["train_fraction"]), []).append(s.get(key))
    return out


def data_efficiency(summaries: Sequence[Mapping], train: bool = True, budget: int | None = None) -> Figure:
    """Median steps to 99% validation accuracy vs training fraction, one line per task.

    Shaded: the range over seeds. Runs that never reached 99% count as the budget
    (their fraction is marked with an open circle at the top and the median may rest on it).
    """
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    val = _by_task_fraction(summaries, "step_val_acc_99")
    trn = _by_task_fraction(summaries, "step_train_acc_99")
    # a run that never generalized is drawn at the budget
    top = budget or max((s.get("steps") or s["steps_run"] for s in summaries), default=1)
    for i, task in enumerate(sorted(val)):
        fr = sorted(val[task])
        med, lo, hi, failed = [], [], [], []
        for f in fr:
            steps = np.array([top if v is None else v for v in val[task][f]], dtype=float)
            med.append(np.median(steps))
            lo.append(steps.min())
            hi.append(steps.max())
            failed.append(sum(v is None for v in val[task][f]))
        c = f"C{i}"
        ax.plot(fr, med, "o-", color=c, label=f"{task}: validation")
        ax.fill_between(fr, lo, hi, color=c, alpha=0.2)
        nf = [(f, top) for f, k in zip(fr, failed) if k]
        if nf:
            ax.plot(*zip(*nf), "o", mfc="white", mec=c, ms=9, label=f"{task}: some seeds never reached 99%")
        if train:
            tmed = [np.median([top if v is None else v for v in trn[task][f]]) for f in fr]
            ax.plot(fr, tmed, "s--", color=c, alpha=0.6, ms=4, label=f"{task}: train")
    ax.axhline(top, color="grey", lw=0.8, ls=":")
    ax.set(yscale="log", xlabel="Training data fraction", ylabel="Steps until 99% accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def best_val(summaries: Sequence[Mapping]) -> Figure:
    """Best validation accuracy within the budget vs training fraction, one line per task (median over seeds)."""
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    best = _by_task_fraction(summaries, "best_val_acc")
    for i, task in enumerate(sorted(best)):
        fr = sorted(best[task])
        vals = [np.array([v or 0.0 for v in best[task][f]]) for f in fr]
        ax.plot(fr, [np.median(v) for v in vals], "o-", color=f"C{i % 10}", label=task, ms=4)
        ax.fill_between(fr, [v.min() for v in vals], [v.max() for v in vals], color=f"C{i % 10}", alpha=0.15)
    ax.set(xlabel="Training data fraction", ylabel="Best validation accuracy", ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


# -- figures drawn from a store -----------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """What a store figure is drawn from: the finished runs (store rows), their metrics, chosen run ids."""

    runs: list[dict]
    metrics: Callable[[int], list[dict]]
    run_ids: list[int] | None = None
    source: str = "the store"


@dataclass(frozen=True)
class FigureSpec:
    name: str
    help: str
    draw: Callable[[Selection], Figure]


FIGURES: dict[str, FigureSpec] = {}


def figure(name: str, help: str):
    """Register ``draw(selection) -> Figure`` as the store figure ``name``."""
    def register(draw: Callable[[Selection], Figure]) -> Callable[[Selection], Figure]:
        FIGURES[name] = FigureSpec(name, help, draw)
        return draw

    return register


@figure("curves", "accuracy and loss vs steps of the runs --run-id (default: the first 12)")
def _store_curves(sel: Selection) -> Figure:
    by_id = {r["id"]: r for r in sel.runs}
    ids = sel.run_ids or list(by_id)[:12]
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise ConfigError(f"run id {missing[0]} is not a finished run of {sel.source}; see groklab runs")
    label = lambda r: f"#{r['id']} {r['task']} f={r['train_fraction']:g} s={r['seed']}"  # noqa: E731
    return curves({label(by_id[i]): sel.metrics(i) for i in ids})


@figure("data-efficiency", "median steps to 99% accuracy vs training fraction, per task (Figure 1, centre)")
def _store_data_efficiency(sel: Selection) -> Figure:
    return data_efficiency(sel.runs)


@figure("best-val", "best validation accuracy within the budget vs training fraction (Figure 2, right)")
def _store_best_val(sel: Selection) -> Figure:
    return best_val(sel.runs)
