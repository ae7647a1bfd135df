"""The drawing ``groklab analyze``'s figures share, each figure a matplotlib Figure (no pyplot state):

- ``progress``: every applicable analysis's measures over the snapshots beside the loss curves, phases shaded:
  the accuracy; the loss with the analyses' ``loss`` series (restricted and excluded losses); their
  ``structure`` series (Ginis, shares); the weight norm; each analysis's own ``panel`` (sharpness); softmax
  collapse;
- ``spectrum``: matrices' norms per frequency, key ones marked (additive and multiplicative Fourier);
- the helpers an analysis's own figures draw with: ``scatter``, ``plane``, ``strongest``, ``shade``, ``finish``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..lazy import lazy
from ..plots import TRAIN, VAL, new_figure, steps_xaxis

if TYPE_CHECKING:
    from matplotlib.figure import Figure

np = lazy("numpy")
matplotlib = lazy("matplotlib")
mpl_patches = lazy("matplotlib.patches")

PHASE_COLOURS = {"memorization": "tab:orange", "circuit_formation": "tab:blue", "cleanup": "tab:purple"}


NAMED = 24  # symbols written beside their points in the embedding pictures up to this many


def scatter(ax, xy: np.ndarray, colour, title: str, cyclic: bool, order: bool = False,
            names: Sequence[str] | None = None) -> None:
    """Points ``xy`` (n, 2) coloured by ``colour`` (numbers: a colour map, cyclic or not; words: one colour and a
    legend entry per kind), each written with its name where ``names`` are given (up to ``NAMED`` points)."""
    if order:  # residues in order: the circle is walked k steps at a time
        ax.plot(xy[:, 0], xy[:, 1], color="0.85", lw=0.6, zorder=1)
    if isinstance(colour[0], str):
        kinds = sorted(set(colour))
        cmap = matplotlib.colormaps["tab20" if len(kinds) > 10 else "tab10"]
        for i, kind in enumerate(kinds):
            pts = xy[[c == kind for c in colour]]
            ax.scatter(pts[:, 0], pts[:, 1], s=14, color=cmap(i % cmap.N), label=kind, zorder=2)
        ax.legend(fontsize=6, loc="best", markerscale=0.8, ncol=1 if len(kinds) <= 8 else 2)
    else:
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=colour, cmap="twilight" if cyclic else "tab10", s=14, zorder=2)
        if cyclic:
            ax.figure.colorbar(sc, ax=ax, fraction=0.046, pad=0.02)
    if names is not None and len(names) <= NAMED:
        for (a, b), name in zip(xy, names):
            ax.annotate(name, (a, b), fontsize=5, xytext=(2, 2), textcoords="offset points", color="0.25")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def plane(ax, xy: np.ndarray, k: int, title: str) -> None:
    """Residues in a frequency-k plane, walked in the order k x mod p (once around the circle) and coloured so."""
    p = len(xy)
    order = np.argsort([(k * x) % p for x in range(p)])
    scatter(ax, xy[order], [(k * x) % p for x in order], title, cyclic=True, order=True)


def strongest(W, keys: Sequence[int], n: int, norms) -> list[int]:
    """The ``n`` key frequencies where ``W`` has most of its norm (``norms(W)``: its norm per frequency)."""
    values = norms(W)
    return sorted(keys, key=lambda k: -float(values[k]))[:n]


def spectrum(matrices: Sequence[tuple[str, object]], keys: Sequence[int], norm_of, group: str,
             title: str | None = None) -> Figure:
    """The norm of each matrix of ``matrices`` ((name, W) pairs, rows indexed by the symbols: the input embeddings,
    the neuron-logit map) in each frequency (``norm_of(W)``: additive, or another basis's; ``group`` names it on
    the axis), key ones in red."""
    fig = new_figure(figsize=(11, 3.4))
    axes = fig.subplots(1, len(matrices), squeeze=False)[0]
    for ax, (name, W) in zip(axes, matrices):
        norms = norm_of(W).numpy()
        k = np.arange(len(norms))
        ax.bar(k, norms, color=["tab:red" if i in keys else "0.6" for i in k], width=0.8)
        ax.set(xlabel=f"frequency k of {group}", ylabel="norm", title=f"{name}: norm per frequency (key in red)")
        ax.grid(alpha=0.3, axis="y")
    return finish(fig, title)


def shade(ax, phases: Mapping) -> None:
    """The phases (memorization, circuit formation, cleanup) as shaded spans of a steps axis."""
    for name, span in phases.items():
        if span and span[1] > span[0]:
            ax.axvspan(max(span[0], 1), span[1], color=PHASE_COLOURS[name], alpha=0.08, lw=0)


# the evaluation's measures (every run has them), by their analysis.json key
EVALUATION = (("weight_norm", "weight norm"), ("zero_loss_frac", "zero-loss share"), ("logit_norm", "logit norm"))


def curves(ax_acc, ax_loss, history: Sequence[Mapping]) -> None:
    """The evaluation curves: training and validation accuracy on one axis, their losses on the other."""
    if len(history):
        steps = np.array([max(r["step"], 1) for r in history])
        ax_acc.plot(steps, [r["train_acc"] for r in history], color=TRAIN, label="train")
        ax_acc.plot(steps, [r["val_acc"] for r in history], color=VAL, label="validation")
        ax_loss.plot(steps, [r["train_loss"] for r in history], color=TRAIN, label="train loss")
        ax_loss.plot(steps, [r["val_loss"] for r in history], color=VAL, label="validation loss")
    ax_acc.set(ylabel="accuracy", ylim=(-0.02, 1.02), title="accuracy")


def finish(fig, title: str | None):
    """The title, and a tight layout."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _measures(analyses: Sequence) -> list[tuple[str, str]]:
    """(key, label) of every measure: the evaluation's and each analysis's series, structure first."""
    series = [s for a in analyses for s in a.series]
    order = {"structure": 0, "loss": 1, None: 2}
    return [EVALUATION[0], *[(s.key, s.label) for s in sorted(series, key=lambda s: order.get(s.panel, 2))],
            *EVALUATION[1:]]


def _progress_at_one_step(snap: Mapping, history: Sequence[Mapping], analyses: Sequence, title: str | None) -> Figure:
    """Without snapshots: the curves, and the measures of the final weights as numbers (one point of each would
    be an empty axis with a dot); the measures over training need ``--snapshots N``."""
    fig = new_figure(figsize=(14, 4))
    ax_acc, ax_loss, ax_text = fig.subplots(1, 3)
    curves(ax_acc, ax_loss, history)
    ax_loss.set(yscale="log", ylabel="loss", title="loss")
    for a in (ax_acc, ax_loss):
        steps_xaxis(a, "optimization steps")
        a.grid(alpha=0.3)
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=7)
    lines = [f"{label}: {snap[k]:.4g}" for k, label in _measures(analyses) if isinstance(snap.get(k), (int, float))]
    ax_text.axis("off")
    ax_text.text(0, 1, f"the final weights (step {snap['step']:,}):\n" + "\n".join(lines)
                 + "\n\nthese measures over training need snapshots:\ngroklab train --snapshots 40 ...",
                 va="top", fontsize=9, family="monospace", transform=ax_text.transAxes)
    return finish(fig, title)


def _series(ax, steps, snaps, series, styles=("o-",)) -> int:
    """Draw the series present in the snapshots on ``ax``; returns how many."""
    drawn = [s for s in series if snaps[-1].get(s.key) is not None]
    for i, s in enumerate(drawn):
        ax.plot(steps, [r[s.key] for r in snaps], styles[i % len(styles)], ms=3, label=s.label)
    return len(drawn)


def progress(result: Mapping, history: Sequence[Mapping] = (), analyses: Sequence = (),
             title: str | None = None) -> Figure:
    """The measures over the snapshots (``progress.analyze``'s result) beside the evaluation curves: accuracy;
    loss with the analyses' ``loss`` series (restricted and excluded losses); the ``structure`` series (Ginis,
    shares); the weight norm; the analyses' own panels (sharpness); softmax collapse."""
    snaps = result["snapshots"]
    if len(snaps) < 2:
        return _progress_at_one_step(snaps[-1], history, analyses, title)
    steps = np.array([max(r["step"], 1) for r in snaps])
    series = [s for a in analyses for s in a.series]
    own = [a.panel for a in analyses if a.panel is not None]
    n = 5 + len(own)
    rows = (n + 2) // 3
    fig = new_figure(figsize=(14, 3.75 * rows))
    axes = fig.subplots(rows, 3, squeeze=False).flatten()
    for extra in axes[n:]:
        extra.remove()
    ax_acc, ax_loss, ax_struct, ax_norm, *ax_own, ax_soft = axes[:n]
    curves(ax_acc, ax_loss, history)
    drawn = [s for s in series if s.panel == "loss" and snaps[-1].get(s.key) is not None]
    _series(ax_loss, steps, snaps, drawn, ("o-", "s-"))
    on = [s.label[s.label.find("(") + 1:-1] for s in drawn if s.key.endswith("restricted_loss")]  # what they keep
    ax_loss.set(yscale="log", ylabel="loss",
                title="loss" + (f"; restricted and excluded on the {', '.join(on)}" if on else ""))
    structure = [s for s in series if s.panel == "structure" and snaps[-1].get(s.key) is not None]
    if _series(ax_struct, steps, snaps, structure):
        low = min(r[s.key] for r in snaps for s in structure)
        ax_struct.set(ylim=(min(0.0, low) - 0.02, 1.02))
    else:
        ax_struct.text(0.5, 0.5, "no structure measure applies to this task", ha="center", va="center", fontsize=8,
                       transform=ax_struct.transAxes)
    ax_struct.set(ylabel="Gini / share", title="structure: the network's sparsity in its task's basis")
    ax_norm.plot(steps, [r["weight_norm"] for r in snaps], "o-", ms=3, color="k")
    ax_norm.set(ylabel="weight norm", title="total weight norm")
    for ax, draw in zip(ax_own, own):
        draw(ax, steps, snaps, result)
    ax_soft.plot(steps, [r["zero_loss_frac"] for r in snaps], "o-", ms=3, color="tab:purple", label="zero-loss share")
    ax_soft.set(ylim=(-0.02, 1.02), ylabel="share of training examples with loss 0", title="softmax collapse")
    twin = ax_soft.twinx()
    twin.plot(steps, [r["logit_norm"] for r in snaps], "--", color="tab:olive", label="logit norm")
    twin.set_ylabel("mean norm of the centred logits")
    twin.legend(loc="center right", fontsize=7)
    for a in axes[:n]:
        steps_xaxis(a, "optimization steps")
        a.grid(alpha=0.3)
        shade(a, result["phases"])
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=7, loc="best")
    handles = [mpl_patches.Patch(color=c, alpha=0.3, label=name.replace("_", " ")) for name, c in PHASE_COLOURS.items()
               if result["phases"].get(name)]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig
