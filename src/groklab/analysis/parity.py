"""Sparse parity's hidden progress (Barak et al. 2022): long before test accuracy moves, the network's first layer
concentrates its weight on the k relevant bits, and its output's Fourier-Walsh coefficient on their parity
grows.

- ``relevant_share``: the share of the first layer's squared weight (an MLP's ``layers.0.W``, one row per input
  bit) on the relevant bits' rows; k / n for weights that ignore which bits matter.
- ``walsh_coefficient``: the Fourier-Walsh coefficient of the network's output on the parity of the relevant
  bits, ``E_x[f(x) chi_S(x)]`` over uniformly random strings, where ``f(x) = P(1 | x) - P(0 | x)`` and
  ``chi_S(x) = +1`` when the relevant bits hold an odd number of ones (the answer 1), else -1: 1 for a network
  that computes the parity, about 0 for one that has not found it (a memorizer included).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..lazy import lazy
from ..plots import TRAIN, VAL, new_figure, steps_xaxis
from ..tasks.parity import parity_data
from .figures import finish
from .spec import Analysis, Series, Snapshot

if TYPE_CHECKING:
    from matplotlib.figure import Figure

np = lazy("numpy")
torch = lazy("torch")


def relevant_share(model, relevant) -> float | None:
    """The first layer's squared weight on the relevant bits' rows over its total (the matrix the model declares
    reads a vector task's input, ``ModelSpec.first_layer``: an MLP's ``layers.0.W``; None for a model whose first
    layer does not read the bits as inputs)."""
    name = model.spec.first_layer(model.cfg)
    if name is None:
        return None
    W = model[name].detach().double()
    total = W.pow(2).sum()
    return float(W[torch.as_tensor(np.asarray(relevant))].pow(2).sum() / total) if total > 0 else 0.0


WALSH_SAMPLES = 4096  # random strings the Walsh coefficient is estimated on


def walsh_coefficient(model, relevant, n_bits: int, samples: int = WALSH_SAMPLES, seed: int = 0) -> float:
    """The Fourier-Walsh coefficient of the network's output on the relevant bits' parity (see the module doc),
    estimated on ``samples`` uniformly random strings (a seeded generator)."""
    with torch.no_grad():
        return _walsh(model, relevant, n_bits, samples, seed)


def _walsh(model, relevant, n_bits: int, samples: int, seed: int) -> float:
    rng = np.random.default_rng([seed, 0x5A17])
    bits = rng.integers(0, 2, size=(samples, n_bits)).astype(np.float32)
    chi = np.where(bits[:, np.asarray(relevant)].sum(1) % 2 == 1, 1.0, -1.0)
    probs = model.answer_logits(torch.from_numpy(bits), torch.zeros(samples, dtype=torch.long)).double().softmax(-1)
    f = (probs[:, 1] - probs[:, 0]).numpy()
    return float(np.mean(f * chi))


def draw_parity(result: Mapping, history: Sequence[Mapping] = (), title: str | None = None) -> Figure:
    """Sparse parity's hidden progress: the first layer's weight share on the relevant bits and the output's
    Walsh coefficient on their parity, across the snapshots, beside test accuracy."""
    info, snaps = result["parity"], result["snapshots"]
    steps = np.array([max(r["step"], 1) for r in snaps])
    fig = new_figure(figsize=(12, 4.4))
    ax_acc, ax = fig.subplots(1, 2)
    if len(history):
        hs = [max(r["step"], 1) for r in history]
        ax_acc.plot(hs, [r["train_acc"] for r in history], color=TRAIN, label="training accuracy")
        ax_acc.plot(hs, [r["val_acc"] for r in history], color=VAL, label="validation accuracy")
    ax_acc.axhline(0.5, ls=":", color="gray", lw=1, label="chance (1/2)")
    ax_acc.set(ylim=(-0.02, 1.02), ylabel="accuracy", title="accuracy")
    k, n = len(info["relevant_bits"]), info.get("n_bits")
    if snaps[-1].get("relevant_share") is not None:
        ax.plot(steps, [max(r["relevant_share"], 1e-6) for r in snaps], "o-", ms=3, color="tab:blue",
                label=f"first layer's weight share on the {k} relevant bits")
        if n:
            ax.axhline(k / n, ls=":", color="tab:blue", lw=1, label=f"share of weights that ignore them ({k}/{n})")
    ax.plot(steps, [max(abs(r["walsh_parity"]), 1e-6) for r in snaps], "s-", ms=3, color="tab:purple",
            label="|Walsh coefficient| of the output on their parity")
    ax.axhline(1 / np.sqrt(WALSH_SAMPLES), ls=":", color="tab:purple", lw=1,
               label=f"its chance level (1/sqrt({WALSH_SAMPLES:,}) strings)")
    ax.set(yscale="log", ylim=(min(1e-3, 0.5 / np.sqrt(WALSH_SAMPLES)), 1.5), ylabel="share / coefficient (log)",
           title=f"hidden progress: relevant bits {info['relevant_bits']}")
    for a in (ax_acc, ax):
        steps_xaxis(a, "optimization steps")
        a.legend(fontsize=7, loc="best")
        a.grid(alpha=0.3)
    return finish(fig, title)


# -- the analysis ------------------------------------------------------------------------------------------------


def _relevant(cfg) -> np.ndarray:
    return parity_data(cfg.n_bits, cfg.parity_k, cfg.n_examples, cfg.seed)[1]


def _measure(snap: Snapshot, keys) -> dict:
    relevant = _relevant(snap.cfg)
    return {"relevant_share": relevant_share(snap.model, relevant),
            "walsh_parity": walsh_coefficient(snap.model, relevant, snap.cfg.n_bits)}


def _lines(r: dict) -> list[str]:
    q = r["parity"]
    share = "-" if q["relevant_share"] is None else f"{q['relevant_share']:.3f}"
    return [f"parity of bits {q['relevant_bits']}: their first-layer weight share {share}, Walsh coefficient "
            f"{q['walsh_parity']:.3f}"]


PARITY = Analysis(
    "parity", "sparse parity's hidden progress: the relevant bits' first-layer weight share, the output's Walsh "
    "coefficient on their parity (Barak et al. 2022)",
    applies=lambda cfg: cfg.task == "parity", measure=_measure,
    summary=lambda rows, keys, snap: {"parity": {"relevant_bits": _relevant(snap.cfg).tolist(),
                                                 "n_bits": snap.cfg.n_bits,
                                                 "relevant_share": rows[-1]["relevant_share"],
                                                 "walsh_parity": rows[-1]["walsh_parity"]}},
    lines=_lines, figures=lambda d: {"parity.png": draw_parity(d.result, d.history, d.title)},
    captions={"parity.png": "parity's hidden progress"},
    series=(Series("relevant_share", "relevant bits' share, first layer", "structure"),
            Series("walsh_parity", "Walsh coefficient on the parity", "structure")))
