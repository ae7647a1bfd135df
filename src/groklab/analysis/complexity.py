"""How complex a network's weights are, measured at every snapshot: the weight norm of each layer (Omnigrok, Liu
et al. 2023: grokking as the norm falls to a "Goldilocks" shell), the effective rank of each weight matrix, and
the compressed size of the weights (DeMoss et al. 2024, "The Complexity Dynamics of Grokking", arXiv 2412.09810:
a network that generalizes compresses better than one that memorizes).

- **Effective rank** (Roy and Vetterli 2007): ``exp(H(p))`` with ``p_i = s_i / sum(s)`` the normalized singular
  values of a matrix: from 1 (rank one) to ``min(rows, cols)`` (every direction equal). A matrix is read as its
  model declares it (``ParamInit.matrix``: attention's ``W_Q`` as one (d_model, heads * d_head) matrix); other
  two-dimensional parameters (the embeddings, the unembedding) as they are.
- **Compressed size**: every parameter quantized to 8 bits on a grid of ``compress_step`` (absolute; the grid does
  not move with the weights, so a norm that falls is a size that falls), the integers compressed by LZMA (the
  standard library's, preset 9), in bytes. A proxy for the weights' description length, not the paper's own
  coding scheme (theirs also searches low-rank approximations); compare it across snapshots of one run.

    >>> effective_rank(torch.eye(4))                     # doctest: +SKIP
    4.0
"""

from __future__ import annotations

import lzma
import math
from typing import TYPE_CHECKING

from ..fields import Field
from ..lazy import lazy
from ..plots import TRAIN, VAL, new_figure, steps_xaxis
from .figures import finish, shade
from .llc import draw_llc
from .spec import Analysis, Drawing, Series, Snapshot

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

COMPRESS_STEP = Field("compress_step", 0.01, "quantization step of the compressed-size measure (absolute, in weight "
                      "units): weights are rounded to it, clipped to 8 bits, and compressed by LZMA", min=1e-6)


def effective_rank(W: Tensor) -> float:
    """``exp`` of the entropy of the normalized singular values of ``W`` (2-D): 1 for a rank-one matrix, k for k
    equal singular values; 0 for a zero matrix."""
    s = torch.linalg.svdvals(W.detach().double())
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def as_matrix(W: Tensor, matrix) -> Tensor | None:
    """A parameter as the 2-D matrix its model declares (``ParamInit.matrix``: (input axes, output axes)); a 2-D
    parameter without a declaration as it is; None for vectors."""
    if matrix is not None:
        ins, outs = matrix
        rows = math.prod(W.shape[i] for i in ins)
        return W.permute(*ins, *outs).reshape(rows, -1)
    return W if W.dim() == 2 else None


def layer_of(name: str) -> str:
    """The layer a parameter belongs to, from its name: ``blocks.1.mlp.W_in`` -> ``blocks.1``, ``W_E`` -> ``W_E``,
    ``layers.0.W`` -> ``layers.0``."""
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 and parts[1].isdigit() else parts[0]


def layer_norms(state: dict[str, Tensor]) -> dict[str, float]:
    """The L2 norm of each layer's parameters together (``layer_of`` groups them), in parameter order."""
    sq: dict[str, float] = {}
    for name, w in state.items():
        sq[layer_of(name)] = sq.get(layer_of(name), 0.0) + float(w.detach().double().pow(2).sum())
    return {k: math.sqrt(v) for k, v in sq.items()}


def compressed_size(state: dict[str, Tensor], step: float = 0.01) -> int:
    """Bytes of every parameter rounded to multiples of ``step``, clipped to int8, compressed by LZMA (preset 9)."""
    q = [torch.clamp(torch.round(w.detach().float() / step), -128, 127).to(torch.int8).reshape(-1)
         for w in state.values()]
    raw = torch.cat(q).numpy().tobytes()
    return len(lzma.compress(raw, preset=9))


def weight_matrices(model) -> dict[str, Tensor]:
    """The model's weight matrices as it declares them: its hidden matrices (``ParamInit.matrix``) and its
    embeddings and unembedding (2-D ``embedding`` parameters); no biases, no vectors."""
    shapes = model.spec.param_shapes(model.cfg)
    out = {}
    for name, w in model.state().items():
        p = shapes.get(name)
        if p is None or not (p.matrix is not None or (p.embedding and w.dim() == 2)):
            continue
        m = as_matrix(w, p.matrix)
        if m is not None and min(m.shape) > 1:
            out[name] = m
    return out


def _measure(snap: Snapshot, keys) -> dict:
    state = snap.model.state()
    ranks = {name: effective_rank(m) for name, m in weight_matrices(snap.model).items()}
    return {"layer_norms": layer_norms(state), "effective_ranks": ranks,
            "mean_effective_rank": sum(ranks.values()) / max(len(ranks), 1),
            "compressed_bytes": compressed_size(state, snap.options["compress_step"])}


def _summary(rows, keys, snap) -> dict:
    first, last = rows[0], rows[-1]
    return {"compressed_bytes": last["compressed_bytes"], "compressed_bytes_first": first["compressed_bytes"],
            "mean_effective_rank": last["mean_effective_rank"], "effective_ranks": last["effective_ranks"],
            "layer_norms": last["layer_norms"], "compress_step": snap.options["compress_step"]}


def _lines(r: dict) -> list[str]:
    ranks = ", ".join(f"{k} {v:.1f}" for k, v in r["effective_ranks"].items())
    return [f"compressed size {r['compressed_bytes']:,} bytes (first snapshot {r['compressed_bytes_first']:,}; "
            f"8-bit grid of {r['compress_step']:g}, LZMA)",
            f"effective rank: mean {r['mean_effective_rank']:.1f} ({ranks})"]


def _panel(ax, steps, rows, result) -> None:
    names = list(rows[-1]["layer_norms"])
    for i, name in enumerate(names):
        ax.plot(steps, [r["layer_norms"].get(name, float("nan")) for r in rows], "o-", ms=2, lw=1,
                color=f"C{i % 10}", label=name)
    ax.set(ylabel="weight norm (L2)", title="weight norm per layer")
    ax.legend(fontsize=6, ncol=2, loc="best")


def _figure(d: Drawing) -> dict:
    """complexity.png: the validation curve beside the LLC (when measured), the weight norm per layer, the effective
    ranks and the compressed size, over the snapshots, with the phases shaded."""
    rows = d.result["snapshots"]
    if len(rows) < 2:
        return {}
    steps = [max(r["step"], 1) for r in rows]
    fig = new_figure(figsize=(14, 7.5))
    ax_acc, ax_llc, ax_norm, ax_rank, ax_size, ax_last = fig.subplots(2, 3).flatten()
    hist = d.history or rows
    hs = [max(r["step"], 1) for r in hist]
    ax_acc.plot(hs, [r["train_acc"] for r in hist], color=TRAIN, label="train")
    ax_acc.plot(hs, [r["val_acc"] for r in hist], color=VAL, label="validation")
    ax_acc.set(ylabel="accuracy", ylim=(-0.02, 1.02), title="accuracy")
    llc = [(s, r) for s, r in zip(steps, rows) if "llc_chains" in r]
    if llc:
        draw_llc(ax_llc, steps, rows, d.result)
    else:
        ax_llc.text(0.5, 0.5, "LLC not measured\n(pip install \"groklab[llc]\"; --llc-chains > 0)", ha="center",
                    va="center", fontsize=8, transform=ax_llc.transAxes)
        ax_llc.set(title="local learning coefficient")
    _panel(ax_norm, steps, rows, d.result)
    names = list(rows[-1]["effective_ranks"])
    for i, name in enumerate(names):
        ax_rank.plot(steps, [r["effective_ranks"].get(name, float("nan")) for r in rows], "-", lw=0.8, alpha=0.5,
                     color=f"C{i % 10}", label=name)
    ax_rank.plot(steps, [r["mean_effective_rank"] for r in rows], "o-", ms=3, color="k", label="mean")
    ax_rank.set(ylabel="effective rank", title="effective rank of each weight matrix")
    ax_rank.legend(fontsize=5, ncol=2, loc="best")
    ax_size.plot(steps, [r["compressed_bytes"] / 1e3 for r in rows], "o-", ms=3, color="tab:brown")
    ax_size.set(ylabel="kB", title=f"compressed size (8-bit grid of {d.options['compress_step']:g}, LZMA)")
    ax_last.plot(steps, [r["weight_norm"] for r in rows], "o-", ms=3, color="k")
    ax_last.set(ylabel="weight norm", title="total weight norm")
    for ax in (ax_acc, ax_llc, ax_norm, ax_rank, ax_size, ax_last):
        steps_xaxis(ax, "optimization steps")
        ax.grid(alpha=0.3)
        shade(ax, d.result["phases"])
    ax_acc.legend(fontsize=7, loc="best")
    return {"complexity.png": finish(fig, f"{d.title}: complexity over training (shaded: memorization, circuit "
                                          "formation, cleanup)")}


COMPLEXITY = Analysis(
    "complexity", "how complex the weights are: the weight norm per layer, the effective rank of each weight matrix "
    "and the compressed size of the weights (8-bit grid, LZMA)",
    applies=lambda cfg: True, measure=_measure, summary=_summary, lines=_lines,
    series=(Series("mean_effective_rank", "mean effective rank of the weight matrices"),
            Series("compressed_bytes", "compressed size of the weights (bytes)")),
    figures=_figure, captions={"complexity.png": "the local learning coefficient, the weight norm per layer, the "
                                                  "effective ranks and the compressed size over training, beside "
                                                  "the accuracy curves, with the phases shaded"},
    fields=(COMPRESS_STEP,))
