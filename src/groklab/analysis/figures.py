"""The figures of ``groklab analyze``, each a matplotlib Figure (no pyplot state).

- ``embeddings``: PCA and t-SNE of the input embeddings and the unembedding rows, coloured by residue (S5: by a
  subgroup's cosets and by cycle type), and the plane of each key frequency (Figure 3 of the paper);
- ``embeddings_over_time``: one of those pictures at several snapshots;
- ``fourier``: the norm of the embedding and of the neuron-logit map in each frequency, key ones marked;
- ``progress``: the measures over the snapshots beside the loss curves, phases shaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..plots import TRAIN, VAL
from .embeddings import frequency_plane, labels, pca, symbol_embeddings, tsne, unembedding_rows
from .fourier import frequency_norms

PHASE_COLOURS = {"memorization": "tab:orange", "circuit_formation": "tab:blue", "cleanup": "tab:purple"}


def _scatter(ax, xy: np.ndarray, colour, title: str, cyclic: bool, order: bool = False) -> None:
    if order:  # residues in order: the circle is walked k steps at a time
        ax.plot(xy[:, 0], xy[:, 1], color="0.85", lw=0.6, zorder=1)
    if isinstance(colour[0], str):
        kinds = sorted(set(colour))
        for i, kind in enumerate(kinds):
            pts = xy[[c == kind for c in colour]]
            ax.scatter(pts[:, 0], pts[:, 1], s=14, color=f"C{i}", label=kind, zorder=2)
        ax.legend(fontsize=6, loc="best", markerscale=0.8)
    else:
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=colour, cmap="twilight" if cyclic else "tab10", s=14, zorder=2)
        if cyclic:
            ax.figure.colorbar(sc, ax=ax, fraction=0.046, pad=0.02)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _plane(ax, xy: np.ndarray, k: int, title: str) -> None:
    """Residues in a frequency-k plane, walked in the order k x mod p (once around the circle) and coloured so."""
    p = len(xy)
    order = np.argsort([(k * x) % p for x in range(p)])
    _scatter(ax, xy[order], [(k * x) % p for x in order], title, cyclic=True, order=True)


def strongest(W, keys: Sequence[int], n: int) -> list[int]:
    norms = frequency_norms(W)
    return sorted(keys, key=lambda k: -float(norms[k]))[:n]


def embeddings(model, task: str, keys: Sequence[int] = (), use_tsne: bool = True, title: str | None = None) -> Figure:
    """PCA (and t-SNE) of the input embeddings and the unembedding rows; for a modular task also the planes of
    the three strongest key frequencies, each coloured by k x mod p so the walk around its circle shows."""
    W_E, W_U = symbol_embeddings(model), unembedding_rows(model)
    lab = labels(task, model.cfg.n_symbols)
    modular = "residue" in lab
    panels = [("PCA of the input embeddings", pca(W_E), None), ("PCA of the unembedding rows", pca(W_U), None)]
    if use_tsne:
        panels.append(("t-SNE of the input embeddings", tsne(W_E), None))
    if modular:
        panels += [(f"input embeddings, frequency {k} plane", frequency_plane(W_E, k), k)
                   for k in strongest(W_E, keys, 3)]
    colourings = list(lab.items()) if not modular else [next(iter(lab.items()))]
    rows = len(colourings)
    fig = Figure(figsize=(3.3 * len(panels), 3.2 * rows))
    axes = fig.subplots(rows, len(panels), squeeze=False)
    p = model.cfg.n_symbols
    for r, (name, colour) in enumerate(colourings):
        for c, (ptitle, xy, k) in enumerate(panels):
            if k is None:
                _scatter(axes[r, c], xy, colour, f"{ptitle}\n(colour: {name})", cyclic=modular)
            else:
                _plane(axes[r, c], xy, k, f"{ptitle}\n(colour: {k} x mod {p})")
    return _finish(fig, title)


def embeddings_over_time(models: Sequence[tuple[int, object]], task: str, key: int | None) -> Figure:
    """One panel per (step, model): the plane of frequency ``key`` of the input embeddings (a modular task),
    else their PCA; the same colouring throughout."""
    fig = Figure(figsize=(2.6 * len(models), 2.8))
    axes = fig.subplots(1, len(models), squeeze=False)[0]
    for ax, (step, model) in zip(axes, models):
        W = symbol_embeddings(model)
        lab = labels(task, model.cfg.n_symbols)
        name, colour = next(iter(lab.items()))
        modular = name == "residue"
        if modular and key:
            _plane(ax, frequency_plane(W, key), key, f"step {step:,}")
        else:
            _scatter(ax, pca(W), colour, f"step {step:,}", cyclic=modular)
    what = (f"input embeddings in the frequency-{key} plane (colour: {key} x mod p)" if key
            else "PCA of the input embeddings")
    fig.suptitle(f"{what}, over training", fontsize=10)
    fig.tight_layout()
    return fig


def fourier(model, keys: Sequence[int], title: str | None = None, multiplicative: bool = False) -> Figure:
    """The norm of the input embeddings and of the neuron-logit map in each frequency of Z_p (or, with
    ``multiplicative``, of Z_p^* in discrete-log order), key ones in red."""
    from .embeddings import neuron_logit_map
    from .multiplicative import multiplicative_norms

    norm_of = multiplicative_norms if multiplicative else frequency_norms
    fig = Figure(figsize=(11, 3.4))
    axes = fig.subplots(1, 2)
    for ax, (name, W) in zip(axes, [("input embeddings", symbol_embeddings(model)),
                                    ("neuron-logit map", neuron_logit_map(model))]):
        norms = norm_of(W).numpy()
        k = np.arange(len(norms))
        ax.bar(k, norms, color=["tab:red" if i in keys else "0.6" for i in k], width=0.8)
        group = "Z_p^* (discrete-log order; 0 left out)" if multiplicative else "Z_p"
        ax.set(xlabel=f"frequency k of {group}", ylabel="norm", title=f"{name}: norm per frequency (key in red)")
        ax.grid(alpha=0.3, axis="y")
    return _finish(fig, title)


def multiplicative_planes(model, keys: Sequence[int], title: str | None = None) -> Figure:
    """The nonzero residues' input embeddings in the plane of each of the three strongest key multiplicative
    frequencies: for a network that multiplies through discrete logarithms, residue x = g^l lands near angle
    2 pi k l / (p - 1), a circle walked in discrete-log order."""
    from .multiplicative import in_log_order, log_order

    W = in_log_order(symbol_embeddings(model))
    ks = strongest(W, keys, 3)
    fig = Figure(figsize=(3.4 * max(1, len(ks)), 3.3))
    axes = fig.subplots(1, max(1, len(ks)), squeeze=False)[0]
    p = model.cfg.n_symbols
    for ax, k in zip(axes, ks):
        _plane(ax, frequency_plane(W, k), k, f"frequency {k} of Z_p^*\n(colour: {k} log x mod {p - 1})")
    if not ks:
        axes[0].text(0.5, 0.5, "no key frequency", ha="center", va="center", transform=axes[0].transAxes)
    fig.suptitle((title + ": " if title else "") + f"residues in discrete-log order (generator "
                 f"{int(log_order(p)[1]) if p > 2 else 1})", fontsize=10)
    fig.tight_layout()
    return fig


def irreps(result: Mapping, history: Sequence[Mapping] = (), title: str | None = None) -> Figure:
    """The embedding's and unembedding's norm share in each irrep's component at the last snapshot (a random
    embedding's share is the component's dimension over |G|, the grey ticks), and the key irreps' shares and the
    Gini over irreps across the snapshots beside validation accuracy."""
    info, snaps = result["irreps"], result["snapshots"]
    names, dims = info["names"], np.array(info["dims"], dtype=float)
    fig = Figure(figsize=(13, 4))
    ax, ax_t = fig.subplots(1, 2)
    k = np.arange(len(names))
    ax.bar(k - 0.2, snaps[-1]["irrep_shares"], width=0.4, label="input embeddings",
           color=["tab:red" if n in info["key_irreps"] else "tab:blue" for n in names])
    ax.bar(k + 0.2, snaps[-1]["irrep_shares_unembed"], width=0.4, color="0.6", label="unembedding rows")
    ax.scatter(k, dims / dims.sum(), marker="_", s=200, color="k", label="a random embedding", zorder=3)
    ax.set_xticks(k, names, rotation=45 if len(names) > 8 else 0, fontsize=8)
    ax.set(ylabel="share of the squared norm", title=f"{info['group']}: share per irrep (key in red)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    steps = np.array([max(r["step"], 1) for r in snaps])
    for name in info["key_irreps"]:
        i = names.index(name)
        ax_t.plot(steps, [r["irrep_shares"][i] for r in snaps], "o-", ms=3, label=f"share of {name}")
    ax_t.plot(steps, [r["irrep_gini"] for r in snaps], "s--", ms=3, color="k", label="Gini over irreps")
    if len(history):
        ax_t.plot([max(r["step"], 1) for r in history], [r["val_acc"] for r in history], color=VAL, alpha=0.6,
                  label="validation accuracy")
    ax_t.set(xscale="log", ylim=(-0.02, 1.02), xlabel="optimization steps", title="over training")
    ax_t.legend(fontsize=7)
    ax_t.grid(alpha=0.3)
    return _finish(fig, title)


def parity(result: Mapping, history: Sequence[Mapping] = (), title: str | None = None) -> Figure:
    """Sparse parity's hidden progress: the first layer's weight share on the relevant bits and the output's
    Walsh coefficient on their parity, across the snapshots, beside test accuracy."""
    info, snaps = result["parity"], result["snapshots"]
    steps = np.array([max(r["step"], 1) for r in snaps])
    fig = Figure(figsize=(7.5, 4))
    ax = fig.subplots()
    if snaps[-1].get("relevant_share") is not None:
        ax.plot(steps, [r["relevant_share"] for r in snaps], "o-", ms=3, color="tab:blue",
                label=f"first layer's weight share on the {len(info['relevant_bits'])} relevant bits")
    ax.plot(steps, [r["walsh_parity"] for r in snaps], "s-", ms=3, color="tab:purple",
            label="Walsh coefficient of the output on their parity")
    if len(history):
        hs = [max(r["step"], 1) for r in history]
        ax.plot(hs, [r["val_acc"] for r in history], color=VAL, label="test accuracy")
        ax.plot(hs, [r["train_acc"] for r in history], color=TRAIN, alpha=0.5, label="training accuracy")
    ax.set(xscale="log", ylim=(-0.05, 1.02), xlabel="optimization steps",
           title=f"relevant bits {info['relevant_bits']}: hidden progress")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _finish(fig, title)


def _shade(ax, phases: Mapping) -> None:
    for name, span in phases.items():
        if span and span[1] > span[0]:
            ax.axvspan(max(span[0], 1), span[1], color=PHASE_COLOURS[name], alpha=0.08, lw=0)


# the structure measures (each task's sparsity in its own basis), by their analysis.json key
STRUCTURE = (("fourier_gini", "Gini, embedding (Z_p)"), ("neuron_logit_gini", "Gini, neuron-logit map (Z_p)"),
             ("mult_gini", "Gini, embedding (Z_p^*)"), ("mult_neuron_logit_gini", "Gini, neuron-logit map (Z_p^*)"),
             ("irrep_gini", "Gini over irreps, embedding"), ("relevant_share", "relevant bits' share, first layer"),
             ("walsh_parity", "Walsh coefficient on the parity"))
MEASURE_NAMES = (("weight_norm", "weight norm"), *STRUCTURE, ("restricted_loss", "restricted loss"),
                 ("excluded_loss", "excluded loss (train)"), ("sharpness", "top Hessian eigenvalue"),
                 ("perturbed_loss_rise", "loss rise, 5% weight noise"), ("zero_loss_frac", "zero-loss share"),
                 ("logit_norm", "logit norm"))


def _curves(ax_acc, ax_loss, history: Sequence[Mapping]) -> None:
    """The evaluation curves: training and validation accuracy on one axis, their losses on the other."""
    if len(history):
        steps = np.array([max(r["step"], 1) for r in history])
        ax_acc.plot(steps, [r["train_acc"] for r in history], color=TRAIN, label="train")
        ax_acc.plot(steps, [r["val_acc"] for r in history], color=VAL, label="validation")
        ax_loss.plot(steps, [r["train_loss"] for r in history], color=TRAIN, label="train loss")
        ax_loss.plot(steps, [r["val_loss"] for r in history], color=VAL, label="validation loss")
    ax_acc.set(ylabel="accuracy", ylim=(-0.02, 1.02), title="accuracy")


def _finish(fig: Figure, title: str | None) -> Figure:
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _progress_at_one_step(snap: Mapping, history: Sequence[Mapping], title: str | None) -> Figure:
    """Without snapshots: the curves, and the measures of the final weights as numbers (one point of each would
    be an empty axis with a dot); the measures over training need ``--snapshots N``."""
    fig = Figure(figsize=(14, 4))
    ax_acc, ax_loss, ax_text = fig.subplots(1, 3)
    _curves(ax_acc, ax_loss, history)
    ax_loss.set(yscale="log", ylabel="loss", title="loss")
    for a in (ax_acc, ax_loss):
        a.set(xscale="log", xlabel="optimization steps")
        a.grid(alpha=0.3)
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=7)
    lines = [f"{label}: {snap[k]:.4g}" for k, label in MEASURE_NAMES if snap.get(k) is not None]
    ax_text.axis("off")
    ax_text.text(0, 1, f"the final weights (step {snap['step']:,}):\n" + "\n".join(lines)
                 + "\n\nthese measures over training need snapshots:\ngroklab train --snapshots 40 ...",
                 va="top", fontsize=9, family="monospace", transform=ax_text.transAxes)
    return _finish(fig, title)


def progress(result: Mapping, history: Sequence[Mapping] = (), title: str | None = None) -> Figure:
    """The measures over the snapshots (``progress.analyze``'s result) beside the evaluation curves."""
    snaps = result["snapshots"]
    if len(snaps) < 2:
        return _progress_at_one_step(snaps[-1], history, title)
    steps = np.array([max(r["step"], 1) for r in snaps])
    fig = Figure(figsize=(14, 7.5))
    axes = fig.subplots(2, 3)
    _curves(axes[0, 0], axes[0, 1], history)
    ax = axes[0, 1]
    what = "key frequencies"
    for prefix, name in (("", "key frequencies"), ("mult_", "key multiplicative frequencies"),
                         ("irrep_", "key irreps")):
        if f"{prefix}restricted_loss" in snaps[-1]:
            what = name
            ax.plot(steps, [r[f"{prefix}restricted_loss"] for r in snaps], "o-", ms=3, color="tab:blue",
                    label="restricted loss")
            ax.plot(steps, [r[f"{prefix}excluded_loss"] for r in snaps], "o-", ms=3, color="tab:brown",
                    label="excluded loss (train)")
    ax.set(yscale="log", ylabel="loss", title=f"loss; restricted and excluded ({what})")
    ax = axes[0, 2]
    sparsity = [(k, label) for k, label in STRUCTURE if snaps[-1].get(k) is not None]
    for k, label in sparsity:
        ax.plot(steps, [r[k] for r in snaps], "o-", ms=3, label=label)
    if sparsity:
        ax.set(ylim=(min(0.0, min(r[k] for r in snaps for k, _ in sparsity)) - 0.02, 1.02))
    else:
        ax.text(0.5, 0.5, "no structure measure applies to this task", ha="center", va="center", fontsize=8,
                transform=ax.transAxes)
    ax.set(ylabel="Gini / share", title="structure: the network's sparsity in its task's basis")
    ax = axes[1, 0]
    ax.plot(steps, [r["weight_norm"] for r in snaps], "o-", ms=3, color="k")
    ax.set(ylabel="weight norm", title="total weight norm")
    ax = axes[1, 1]
    ax.plot(steps, [max(r["sharpness"], 1e-12) for r in snaps], "o-", ms=3, color="tab:red", label="top Hessian eig.")
    ax2 = ax.twinx()
    ax2.plot(steps, [r["perturbed_loss_rise"] for r in snaps], "s--", ms=3, color="tab:gray",
             label="loss rise, 5% weight noise")
    ax.set(yscale="log", ylabel="top Hessian eigenvalue", title=f"sharpness ({result['sharpness_examples']} "
                                                                  "training examples)")
    ax2.set_yscale("symlog", linthresh=1e-4)
    ax2.set_ylabel("loss rise")
    ax2.legend(loc="upper right", fontsize=7)
    ax = axes[1, 2]
    ax.plot(steps, [r["zero_loss_frac"] for r in snaps], "o-", ms=3, color="tab:purple", label="zero-loss share")
    ax.set(ylim=(-0.02, 1.02), ylabel="share of training examples with loss 0 (fp32)", title="softmax collapse")
    ax3 = ax.twinx()
    ax3.plot(steps, [r["logit_norm"] for r in snaps], "--", color="tab:olive", label="logit norm")
    ax3.set_ylabel("mean norm of the centred logits")
    ax3.legend(loc="center right", fontsize=7)
    for a in axes.flat:
        a.set_xscale("log")
        a.set_xlabel("optimization steps")
        a.grid(alpha=0.3)
        _shade(a, result["phases"])
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=7, loc="best")
    handles = [Patch(color=c, alpha=0.3, label=n.replace("_", " ")) for n, c in PHASE_COLOURS.items()
               if result["phases"].get(n)]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig
