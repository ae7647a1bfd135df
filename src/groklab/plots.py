"""One function per figure, each returning a matplotlib Figure: the drawing, for a run's curves.png, the store
figures (``groklab.figures``), the report and Python.

- ``curves``: train / validation accuracy (and loss) vs log-scaled steps (paper Figure 1, left).
- ``data_efficiency``: median steps to 99% validation (and training) accuracy vs training
  fraction, one line per task, spread over seeds (Figure 1, centre).
- ``best_val``: best validation accuracy within the budget vs training fraction, one line per
  task (Figure 2, right).
- ``double_descent``: one run's validation loss with its first minimum, peak and second descent
  marked, accuracy beside it (Figure 4).
- ``model_wise``: validation loss and accuracy against parameter count at a few training lengths
  (Davies et al.'s model-wise picture).
- ``compare``: named variants side by side: best validation accuracy and steps to 99% validation
  accuracy vs training fraction (Figure 2, left; ``groklab compare``).

A store figure (``groklab plot NAME``) is an entry of ``groklab.figures`` that draws one of these from a
``Selection`` of a store's runs.

Figures are drawn with matplotlib's object API (``new_figure``: no pyplot, no backend chosen, no global figure
state), and matplotlib is imported when a figure is drawn, not when this module is: commands that draw nothing
(``groklab --help``, ``groklab runs``) never load it. Which rows a figure pools as seeds of one setting is
``groklab.queries``'s to say.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .errors import ConfigError
from .events import double_descent as find_double_descent
from .lazy import lazy
from .queries import arch_fields, by_setting, config_of, fmt_value, setting_label, varying

if TYPE_CHECKING:
    from matplotlib.figure import Figure

np = lazy("numpy")
matplotlib = lazy("matplotlib")
mpl_figure = lazy("matplotlib.figure")
mpl_lines = lazy("matplotlib.lines")
mpl_ticker = lazy("matplotlib.ticker")

TRAIN, VAL = "tab:red", "tab:green"


class Palette:
    """One colour per setting (a store row's task and the fields that vary between ``runs``, not its training
    fraction or seed), the same in every figure drawn with it: a report colours weight decay 1 alike in its
    curves, data-efficiency, best-validation and compare figures."""

    def __init__(self, runs: Sequence[Mapping]):
        self.fields = varying(runs, exclude=("train_fraction",))
        self.keys = sorted({self.setting(r) for r in runs})  # by_setting's labels, without grouping the rows

    def setting(self, row: Mapping) -> str:
        """The legend label of a row's setting."""
        return setting_label(row, self.fields)

    def __call__(self, row: Mapping):
        key = self.setting(row)
        if key not in self.keys:  # a row the palette was not built from: the next colour
            self.keys.append(key)
        return nth_colour(self.keys.index(key), len(self.keys))


def new_figure(**kwargs) -> Figure:
    """A matplotlib Figure (object API: no pyplot, no backend chosen, no global figure state)."""
    return mpl_figure.Figure(**kwargs)


def curves(histories: Mapping[str, Sequence[Mapping]], loss: bool = True, title: str | None = None,
           colours: Mapping[str, object] | None = None) -> Figure:
    """Accuracy (and loss) of one or several runs vs log-scaled optimization steps.

    ``histories`` maps a label to a list of metrics rows (step, train_acc, val_acc, ...); ``colours`` (optional)
    a label to its colour (a ``Palette``'s, to match the other figures).
    """
    many = len(histories) > 3  # a legend beside the axes, one entry per run (dashed: training)
    fig = new_figure(figsize=((11 if loss else 6) + (3.5 if many else 0), 4), layout="constrained" if many else None)
    axes = fig.subplots(1, 2 if loss else 1, squeeze=False)
    ax_acc = axes[0, 0]
    single = len(histories) == 1
    for i, (label, rows) in enumerate(histories.items()):
        steps = np.array([max(r["step"], 1) for r in rows])
        colour = (colours or {}).get(label) or nth_colour(i, 20 if many else 10)  # many runs: tab20
        style = dict(lw=1.8) if single else dict(lw=1.2, color=colour)
        pre = "" if single else f"{label} "
        ax_acc.plot(steps, [r["train_acc"] for r in rows], label=None if many else f"{pre}train",
                    ls="-" if single else "--", **({"color": TRAIN} if single else {}), **style)
        ax_acc.plot(steps, [r["val_acc"] for r in rows], label=label if many else f"{pre}val",
                    **({"color": VAL} if single else {}), **style)
        if loss:
            ax = axes[0, 1]
            ax.plot(steps, [r["train_loss"] for r in rows], ls="-" if single else "--",
                    **({"color": TRAIN} if single else {}), **style)
            ax.plot(steps, [r["val_loss"] for r in rows], **({"color": VAL} if single else {}), **style)
    ax_acc.set(xlabel="Optimization steps", ylabel="Accuracy", ylim=(-0.02, 1.02))
    steps_xaxis(ax_acc)
    if many:
        fig.legend(loc="outside right upper", fontsize=7, title="validation (training dashed)", title_fontsize=7)
    else:
        ax_acc.legend(loc="lower right", fontsize=8)
    ax_acc.grid(alpha=0.3)
    if loss:
        ax = axes[0, 1]
        ax.set(yscale="log", xlabel="Optimization steps", ylabel="Loss")
        steps_xaxis(ax)
        ax.grid(alpha=0.3)
        if single:
            _mark_double_descent(ax, next(iter(histories.values())))
    if title:
        fig.suptitle(title)
    if not many:
        fig.tight_layout()
    return fig


DD_MARKS = (("val_loss_min_step", "first minimum", ":"), ("val_loss_peak_step", "peak", "--"),
            ("second_descent_step", "second descent", "-."))


def _mark_double_descent(ax, rows: Sequence[Mapping]) -> dict:
    """Vertical lines at the validation loss's first minimum, peak and second descent (when it has them)."""
    dd = find_double_descent([r["step"] for r in rows], [r["val_loss"] for r in rows])
    for key, name, ls in DD_MARKS:
        if dd[key] is not None:
            ax.axvline(max(dd[key], 1), color="0.35", ls=ls, lw=1, label=f"{name} ({dd[key]:,})")
    if dd["val_loss_peak_step"] is not None:
        ax.legend(loc="lower left", fontsize=7)
    return dd


def double_descent(rows: Sequence[Mapping], title: str | None = None) -> Figure:
    """Figure 4 style: one run's training and validation loss vs steps (log-log) with the validation loss's first
    minimum, peak and second descent marked, and the accuracies on a second panel."""
    fig = new_figure(figsize=(11, 4))
    ax, ax_acc = fig.subplots(1, 2)
    steps = np.array([max(r["step"], 1) for r in rows])
    ax.plot(steps, [r["train_loss"] for r in rows], color=TRAIN, label="train loss")
    ax.plot(steps, [r["val_loss"] for r in rows], color=VAL, lw=2, label="validation loss")
    ax.set(yscale="log", xlabel="Optimization steps", ylabel="Loss")
    steps_xaxis(ax)
    dd = _mark_double_descent(ax, rows)
    ax.legend(loc="lower left", fontsize=7)
    ax.grid(alpha=0.3)
    ax_acc.plot(steps, [r["train_acc"] for r in rows], color=TRAIN, label="train")
    ax_acc.plot(steps, [r["val_acc"] for r in rows], color=VAL, label="validation")
    for key, _, ls in DD_MARKS:
        if dd[key] is not None:
            ax_acc.axvline(max(dd[key], 1), color="0.35", ls=ls, lw=1)
    ax_acc.set(xlabel="Optimization steps", ylabel="Accuracy", ylim=(-0.02, 1.02))
    steps_xaxis(ax_acc)
    ax_acc.legend(loc="center left", fontsize=8)
    ax_acc.grid(alpha=0.3)
    fig.suptitle(title or ("validation loss: no double descent" if dd["val_loss_peak_step"] is None else
                           f"validation loss peaks at step {dd['val_loss_peak_step']:,} "
                           f"({dd['val_loss_peak']:.3g})" + (f", back below its first minimum at step "
                                                             f"{dd['second_descent_step']:,}"
                                                             if dd["second_descent_step"] is not None else "")))
    fig.tight_layout()
    return fig


def _at(rows: Sequence[Mapping], step: int) -> Mapping | None:
    """The last evaluation at or before ``step``."""
    before = [r for r in rows if r["step"] <= step]
    return before[-1] if before else None


def model_wise(runs: Sequence[Mapping], metrics: Callable[[int], Sequence[Mapping]],
               lengths: Sequence[int] | None = None) -> Figure:
    """Validation loss and accuracy (training accuracy dashed) against parameter count, one line per training
    length (the last evaluation at or before it), median over the runs of one size with the range shaded.
    ``runs``: store rows (id, n_params, steps_run); ``metrics(id)``: a run's history. Default lengths: the
    longest run's steps and a tenth and a hundredth of it."""
    mixed = varying(runs, exclude=arch_fields())
    if mixed:
        values = sorted({fmt_value(config_of(r).get(mixed[0])) for r in runs})
        raise ConfigError(f"model-wise pools the runs of one size, but these also differ in {', '.join(mixed)} "
                          f"({mixed[0]}: {', '.join(values)}); choose one, e.g. --where {mixed[0]}={values[0]}")
    hist = {r["id"]: metrics(r["id"]) for r in runs}
    longest = max(r["steps_run"] or 0 for r in runs)
    lengths = sorted(lengths or {max(1, longest // 100), max(1, longest // 10), longest})
    fig = new_figure(figsize=(11, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    sizes = sorted({r["n_params"] for r in runs})
    for i, length in enumerate(lengths):
        colour = f"C{i}"
        pts = {k: [] for k in ("val_loss", "val_acc", "train_acc")}
        xs = []
        for n in sizes:
            at = [_at(hist[r["id"]], length) for r in runs if r["n_params"] == n]
            at = [a for a in at if a is not None]
            if not at:
                continue
            xs.append(n)
            for k in pts:
                pts[k].append(_spread([a[k] for a in at]))
        if not xs:
            continue
        for ax, key, ls, label in ((ax_loss, "val_loss", "-", f"{length:,} steps"),
                                   (ax_acc, "val_acc", "-", f"validation, {length:,} steps"),
                                   (ax_acc, "train_acc", "--", f"train, {length:,} steps")):
            med, lo, hi = (np.array(v) for v in zip(*pts[key]))
            ax.plot(xs, med, ls, marker="o", ms=4, color=colour, label=label)
            ax.fill_between(xs, lo, hi, color=colour, alpha=0.12, lw=0)
    ax_loss.set(xscale="log", yscale="log", xlabel="parameters", ylabel="validation loss")
    ax_acc.set(xscale="log", xlabel="parameters", ylabel="accuracy", ylim=(-0.02, 1.02))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("model-wise: validation loss and accuracy against model size, at several training lengths")
    fig.tight_layout()
    return fig


def save_curves(rows: Sequence[Mapping], path: str | Path, title: str | None = None) -> None:
    """Draw a run's curves.png (accuracy and loss against log-scaled steps) to ``path``."""
    fig = curves({"run": rows}, title=title)
    fig.savefig(path, dpi=90)


def data_efficiency(summaries: Sequence[Mapping], train: bool = True, budget: int | None = None,
                    palette: Palette | None = None) -> Figure:
    """Median steps to 99% validation accuracy vs training fraction, one line per task and setting.

    ``summaries``: store rows (``Store(path).runs()``, or ``Store.to_dataframe()``'s rows). Shaded: the range over
    seeds. Runs that never reached 99% count as the budget (their fraction is marked with an open circle at the
    budget, dotted, and the median may rest on it). Training (memorization) steps are dashed in the same colour.
    """
    summaries = _rows(summaries)
    palette = palette or Palette(summaries)
    fig = new_figure(figsize=(9.5, 4.5), layout="constrained")
    ax = fig.subplots()
    top = budget or max((s.get("steps") or s["steps_run"] for s in summaries), default=1)
    by_task = by_setting(summaries, exclude=("train_fraction",))  # one line per task and setting
    tasks = sorted(by_task)
    circles = _fraction_lines(ax, {f"{t}: validation": _by_key(by_task[t], "train_fraction") for t in tasks},
                              lambda r: r["step_val_acc_99"], missing=top, colour=palette)
    if train:
        _fraction_lines(ax, {f"{t}: train": _by_key(by_task[t], "train_fraction") for t in tasks},
                        lambda r: r["step_train_acc_99"],
                        {f"{t}: train": {"ls": "--", "marker": "s", "alpha": 0.6} for t in tasks}, missing=top,
                        shade=False, colour=palette)
    handles = ax.get_legend_handles_labels()[0] + _budget_legend(ax, top, circles)
    ax.set(yscale="log", xlabel="Training data fraction", ylabel="Steps until 99% accuracy")
    _steps_axis(ax)
    ax.grid(alpha=0.3)
    fig.legend(handles=handles, loc="outside right upper", fontsize=7)  # beside the axes: never over a marker
    return fig


def _spread(values: Sequence[float]) -> tuple[float, float, float]:
    a = np.asarray(values, dtype=float)
    return float(np.median(a)), float(a.min()), float(a.max())


def _fraction_lines(ax, groups: Mapping[str, Mapping[float, list]], key_value, styles=None, missing=None,
                    shade: bool = True, colour: Callable[[Mapping], object] | None = None):
    """One line per group: the median over seeds of ``key_value(row)`` at each training fraction, and the
    range shaded. ``missing``: the value drawn for a row whose value is None (open circles mark where).
    ``colour(row)``: a group's colour from its first row (a ``Palette``); by default one per group. Returns
    whether it drew any open circle."""
    styles = styles or {}
    circles = False
    for i, (label, by_frac) in enumerate(groups.items()):
        fr = sorted(by_frac)
        vals = [[missing if key_value(r) is None else key_value(r) for r in by_frac[f]] for f in fr]
        med, lo, hi = zip(*(_spread(v) for v in vals))
        c = colour(by_frac[fr[0]][0]) if colour is not None else nth_colour(i, len(groups))
        st = {"color": c, "marker": "o", "ms": 4, **styles.get(label, {})}
        line, = ax.plot(fr, med, label=label, **st)
        if shade:
            ax.fill_between(fr, lo, hi, color=line.get_color(), alpha=0.12, lw=0)
        cut = [f for f in fr if any(key_value(r) is None for r in by_frac[f])] if missing is not None else []
        if cut and shade:
            ax.plot(cut, [missing] * len(cut), "o", mfc="white", mec=line.get_color(), ms=7)
            circles = True
    return circles


def _budget_legend(ax, budget: int, circles: bool) -> list:
    """The budget's dotted line, and the legend entries that explain it and the open circles (runs that never
    reached 99%, drawn at the budget; only when some were drawn)."""
    line = ax.axhline(budget, color="grey", lw=0.8, ls=":", label=f"budget ({budget:,} steps)")
    return [line] + ([mpl_lines.Line2D([], [], ls="", marker="o", mfc="white", mec="0.3", ms=7,
                             label="a seed never reached 99% (counted at the budget)")] if circles else [])


def steps_xaxis(ax, label: str | None = None) -> None:
    """A log x axis of optimization steps labelled in plain numbers (1, 10, 100, 1,000, 10,000; not 10^3)."""
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(mpl_ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    ax.xaxis.set_minor_formatter(mpl_ticker.NullFormatter())
    if label is not None:
        ax.set_xlabel(label)


def _steps_axis(ax) -> None:
    """A log axis of steps labelled in plain numbers (1,000, not 10^3); over a narrow range (less than 3x, where
    log ticks would read 7.95x10^2) a linear axis, so that a 4% gap looks like one."""
    lo, hi = ax.get_ylim()
    if lo > 0 and hi / lo < 3:
        ax.set_yscale("linear")
        ax.set_ylim(0, hi * 1.05)
    fmt = mpl_ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}")
    ax.yaxis.set_major_formatter(fmt)
    ax.yaxis.set_minor_formatter(mpl_ticker.FuncFormatter(lambda v, _: ""))


def _rows(rows) -> list[Mapping]:
    """Rows as a list of mappings: store rows, or a DataFrame's (``Store.to_dataframe()``)."""
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):
        return rows.astype(object).where(rows.notna(), None).to_dict("records")  # NaN (SQL NULL) as None
    return list(rows)


def nth_colour(i: int, n: int):
    """The i-th of n colours: matplotlib's ten cycle colours, or tab20's twenty beyond ten."""
    if n <= 10:
        return f"C{i % 10}"
    return matplotlib.colormaps["tab20"](i % 20)


def _by_key(rows: Sequence[Mapping], key: str) -> dict:
    """Rows grouped by ``row[key]`` (training fractions as floats)."""
    out: dict = {}
    for r in rows:
        out.setdefault(float(r[key]) if key == "train_fraction" else r[key], []).append(r)
    return out


def best_val(summaries: Sequence[Mapping], symmetric: Mapping[str, bool] | None = None,
             labels: Mapping[str, str] | None = None, palette: Palette | None = None) -> Figure:
    """Best validation accuracy within the budget vs training fraction, one line per task (median over
    seeds, range shaded), in the style of the paper's Figure 2 (right): tasks named by their equation,
    symmetric operations drawn solid and the others dashed. ``summaries``: store rows (or a DataFrame of them)."""
    summaries = _rows(summaries)
    palette = palette or Palette(summaries)
    fig = new_figure(figsize=(10, 5), layout="constrained")
    ax = fig.subplots()
    symmetric, labels = symmetric or {}, labels or {}
    by_task = by_setting(summaries, exclude=("train_fraction",))  # one line per task and setting
    task_of = {k: rows[0]["task"] for k, rows in by_task.items()}

    def name(k: str) -> str:  # the task's equation, then the setting
        return labels.get(k) or labels.get(task_of[k], task_of[k]) + k[len(task_of[k]):]

    def sym(k: str, default: bool) -> bool:  # keyed by setting (a task with fields of its own) or by task
        return symmetric.get(k, symmetric.get(task_of[k], default))

    order = sorted(by_task, key=lambda k: (not sym(k, False), k))
    groups = {name(k): _by_key(by_task[k], "train_fraction") for k in order}
    styles = {name(k): {"ls": "-" if sym(k, True) else "--"} for k in order}
    _fraction_lines(ax, groups, lambda r: r["best_val_acc"] or 0.0, styles, colour=palette)
    ax.set(xlabel="Training data fraction", ylabel="Best validation accuracy", ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside right upper", fontsize=8,
               title="solid: symmetric operation" if symmetric else None, title_fontsize=8)
    return fig


def compare(results: Mapping[str, Sequence[Mapping]], title: str | None = None,
            palette: Palette | None = None) -> Figure:
    """Variants side by side (paper Figure 2, left): for each variant, the best validation accuracy within
    the budget vs training fraction (left) and the steps to 99% validation accuracy (right; a run that never
    got there is drawn at its budget, open circle), median over seeds with the range shaded.

    ``results`` maps a variant's name to its runs' summaries (task, train_fraction, seed,
    best_val_acc, step_val_acc_99, steps)."""
    fig = new_figure(figsize=(12, 5.4), layout="constrained")
    ax_best, ax_steps = fig.subplots(1, 2)
    palette = palette or Palette([r for rows in results.values() for r in rows])
    groups = {name: _by_key(rows, "train_fraction") for name, rows in results.items() if rows}
    _fraction_lines(ax_best, groups, lambda r: r["best_val_acc"] or 0.0, colour=palette)
    ax_best.set(xlabel="Training data fraction", ylabel="Best validation accuracy", ylim=(-0.02, 1.02))
    budget = max((r.get("steps") or r.get("steps_run") or 1 for rows in results.values() for r in rows), default=1)
    circles = _fraction_lines(ax_steps, groups, lambda r: r["step_val_acc_99"], missing=budget, colour=palette)
    extra = _budget_legend(ax_steps, budget, circles)
    ax_steps.set(xlabel="Training data fraction", ylabel="Steps until 99% validation accuracy", yscale="log")
    _steps_axis(ax_steps)
    for ax in (ax_best, ax_steps):
        ax.grid(alpha=0.3)
    handles = ax_best.get_legend_handles_labels()[0] + extra
    fig.legend(handles=handles, loc="outside lower center", ncol=min(5, len(handles)), fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def measure_over(series: Mapping[str, Sequence[tuple[Mapping, Sequence[tuple[int, float | None]]]]], key: str,
                 label: str | None = None, title: str | None = None) -> Figure:
    """One measure over the snapshots of every run of a comparison: ``series`` maps a variant's name to its runs,
    each (its store row, its (step, value) pairs). One colour per variant, a line per run (dashed beyond the
    first training fraction when there are several), a dot where the run came to hold 99% validation accuracy."""
    fig = new_figure(figsize=(9, 5.4), layout="constrained")
    ax = fig.subplots()
    names = [n for n, runs in series.items() if runs]
    fractions = sorted({float(r["train_fraction"]) for runs in series.values() for r, _ in runs})
    styles = ["-", "--", ":", "-."]
    for i, name in enumerate(names):
        colour = nth_colour(i, len(names))
        for j, (row, pts) in enumerate(series[name]):
            pts = [(max(s, 1), v) for s, v in pts if v is not None]
            if not pts:
                continue
            style = styles[fractions.index(float(row["train_fraction"])) % len(styles)]
            lab = name if j == 0 else None
            ax.plot([s for s, _ in pts], [v for _, v in pts], style, color=colour, lw=1.2, alpha=0.85, label=lab)
            held = row.get("step_val_acc_99")
            if held is not None:
                near = min(pts, key=lambda p: abs(p[0] - held))
                ax.plot([near[0]], [near[1]], "o", color=colour, ms=6, mec="k", mew=0.6)
    ax.set(xlabel="optimization steps", ylabel=label or key)
    steps_xaxis(ax)
    ax.grid(alpha=0.3)
    notes = ["dot: the snapshot nearest the step from which validation accuracy held 99%"]
    if len(fractions) > 1:
        notes.append("line style: training fraction " + ", ".join(
            f"{f:g} {styles[k % len(styles)]}" for k, f in enumerate(fractions)))
    ax.legend(fontsize=8, loc="best", title="; ".join(notes), title_fontsize=7)
    if title:
        fig.suptitle(title)
    return fig
