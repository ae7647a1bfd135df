"""Multiplicative Fourier analysis: x * y and x / y mod p (p prime), and formulas ``x^a * y^b``.

The nonzero residues mod a prime p form a cyclic group of order p - 1: with a generator g (a primitive root),
every nonzero x is ``g^l`` for one discrete logarithm ``l = log x``, and ``x * y`` becomes ``log x + log y``
mod p - 1. So the additive analysis (``fourier``) applies to the rows of an embedding taken in discrete-log order
(``log_order``): its frequencies are the multiplicative characters of Z_p^*. The zero residue has no logarithm
(0 times anything is 0): it is left out of the basis, and the restricted and excluded losses are over the pairs
whose operands are nonzero.

    >>> log_order(7).tolist()          # 3 generates Z_7^*: 3^0, 3^1, ... mod 7
    [1, 3, 2, 6, 4, 5]
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from ..lazy import lazy
from ..losses import get_loss, loss_dtype
from ..plots import new_figure
from ..tasks import get_task, is_prime
from .figures import plane, spectrum, strongest
from .fourier import (accounted, frequency_norms, frequency_plane, full_loss, gini, honesty_lines, key_frequencies,
                      project_on_phases, random_gini, stands_out)
from .spec import Analysis, Drawing, Series, Snapshot
from .weights import neuron_logit_map, symbol_embeddings

if TYPE_CHECKING:
    from matplotlib.figure import Figure

if TYPE_CHECKING:
    from torch import Tensor

np = lazy("numpy")
torch = lazy("torch")

ZERO_NOTE = "the zero residue is left out: 0 times anything is 0, so 0 has no discrete logarithm"


def primitive_root(p: int) -> int:
    """The smallest generator of the nonzero residues mod the prime ``p``."""
    if p == 2:
        return 1
    factors = {q for q in range(2, p) if (p - 1) % q == 0 and is_prime(q)}
    return next(g for g in range(2, p) if all(pow(g, (p - 1) // q, p) != 1 for q in factors))


@lru_cache(maxsize=16)
def _orders(p: int) -> tuple[np.ndarray, np.ndarray]:
    g = primitive_root(p)
    order = np.array([pow(g, k, p) for k in range(p - 1)], dtype=np.int64)
    logs = np.full(p, -1, dtype=np.int64)
    logs[order] = np.arange(p - 1)
    return order, logs


def log_order(p: int) -> np.ndarray:
    """(p - 1,): the nonzero residues in discrete-log order, ``g^0, g^1, ..., g^(p-2)``."""
    return _orders(p)[0]


def discrete_log(x: np.ndarray, p: int) -> np.ndarray:
    """log_g x for nonzero residues (-1 for 0)."""
    return _orders(p)[1][np.asarray(x)]


def monomial(task: str, params: dict | None = None) -> tuple[int, int] | None:
    """``(a, b)`` when the task's answer is ``x^a * y^b`` mod a prime (``Task.monomial``: mul, div, or such a custom
    formula), else None."""
    params = params or {}
    p = params.get("modulus")
    t = get_task(task)
    if (p is not None and not is_prime(p)) or not t.modular or t.monomial is None:
        return None
    return t.monomial(params)


def multiplicative_norms(W: Tensor) -> Tensor:
    """Norm of ``W`` (p, d), rows indexed by residues, in each multiplicative frequency 0..(p-1)//2 (the rows of
    the nonzero residues in discrete-log order, through ``fourier.frequency_norms``)."""
    p = W.shape[0]
    return frequency_norms(W[torch.as_tensor(log_order(p))])


def in_log_order(W: Tensor) -> Tensor:
    """The rows of the nonzero residues of ``W`` (p, d) in discrete-log order: (p - 1, d)."""
    return W[torch.as_tensor(log_order(W.shape[0]))]


def restricted_excluded_loss(logits: Tensor, x: Tensor, y: Tensor, answers: Tensor, train_mask: Tensor,
                             ab: tuple[int, int], freqs: list[int], loss: str = "cross_entropy",
                             precision: str = "auto") -> tuple[float, float]:
    """Nanda et al.'s restricted and excluded losses in the multiplicative basis, over the pairs whose operands
    are nonzero: the logits (n, p) projected on the key frequencies of ``a log x + b log y`` (mod p - 1)."""
    p = logits.shape[1]
    rows = (x != 0) & (y != 0)
    a, b = ab
    s = (a * discrete_log(x[rows].numpy(), p) + b * discrete_log(y[rows].numpy(), p)) % (p - 1)
    restricted, excluded = project_on_phases(logits[rows], torch.as_tensor(s), p - 1, freqs)
    fn, dtype = get_loss(loss), loss_dtype(loss, precision)
    z, tr = answers[rows], train_mask[rows]

    def mean_loss(lg: Tensor, t: Tensor) -> float:
        return fn(lg.to(dtype).unsqueeze(0), t.unsqueeze(0)).mean().item()

    return mean_loss(restricted, z), mean_loss(excluded[tr], z[tr])


def multiplicative_planes(model, keys: Sequence[int], title: str | None = None) -> Figure:
    """The nonzero residues' input embeddings in the plane of each of the three strongest key multiplicative
    frequencies: for a network that multiplies through discrete logarithms, residue x = g^l lands near angle
    2 pi k l / (p - 1), a circle walked in discrete-log order."""
    W = in_log_order(symbol_embeddings(model))
    ks = strongest(W, keys, 3, frequency_norms)
    fig = new_figure(figsize=(max(6.0, 3.4 * len(ks)), 3.6))  # wide enough for the title with one plane
    axes = fig.subplots(1, max(1, len(ks)), squeeze=False)[0]
    p = model.cfg.n_symbols
    for ax, k in zip(axes, ks):
        plane(ax, frequency_plane(W, k), k, f"frequency {k} of Z_p^*\n(colour: {k} log x mod {p - 1})")
    if not ks:
        axes[0].text(0.5, 0.5, "no key frequency stands out", ha="center", va="center",
                     transform=axes[0].transAxes)
    fig.suptitle((title + ":\n" if title else "") + f"residues in discrete-log order (generator "
                 f"{int(log_order(p)[1]) if p > 2 else 1})", fontsize=10)
    fig.tight_layout()
    return fig


# -- the analysis ------------------------------------------------------------------------------------------------


def _params(cfg) -> dict:
    return {"modulus": cfg.modulus, **cfg.task_params}


def mult_gini(W: Tensor) -> float:
    """Gini of ``W``'s norms over the non-constant multiplicative frequencies."""
    return gini(multiplicative_norms(W)[1:].numpy())


def baseline(W: Tensor) -> float:
    """``fourier.random_gini`` of the multiplicative Gini for an embedding of ``W``'s shape."""
    return random_gini("multiplicative", tuple(W.shape), mult_gini)


def _keys(snap: Snapshot) -> list[int]:
    W = symbol_embeddings(snap.model)
    return key_frequencies(multiplicative_norms(W)) if stands_out(mult_gini(W), baseline(W)) else []


def _measure(snap: Snapshot, keys: list[int]) -> dict:
    W = symbol_embeddings(snap.model)
    norms = multiplicative_norms(W)
    g = gini(norms[1:].numpy())
    out = {"mult_norms": norms.tolist(), "mult_gini": g,
           "mult_neuron_logit_gini": gini(multiplicative_norms(neuron_logit_map(snap.model))[1:].numpy()),
           "mult_key_frequencies": key_frequencies(norms) if stands_out(g, baseline(W)) else []}
    if keys:
        d = snap.data
        out["mult_restricted_loss"], out["mult_excluded_loss"] = restricted_excluded_loss(
            snap.logits, d.x, d.y, d.z, d.train, monomial(snap.cfg.task, _params(snap.cfg)), keys, **snap.loss)
        own, chance = full_loss(snap.logits, d.z, (d.x != 0) & (d.y != 0), **snap.loss)
        out["mult_keys_account"] = accounted(out["mult_restricted_loss"], own, chance)
    return out


def _summary(rows: list, keys: list[int], snap: Snapshot) -> dict:
    return {"multiplicative": {"key_frequencies": keys, "gini": rows[-1]["mult_gini"],
                               "gini_random": baseline(symbol_embeddings(snap.model)),
                               "keys_account": rows[-1].get("mult_keys_account"),
                               "generator": primitive_root(snap.cfg.modulus), "zero_residue": ZERO_NOTE}}


def _lines(r: dict) -> list[str]:
    m = r["multiplicative"]
    keys = m["key_frequencies"] or "none"
    return [f"multiplicative (generator {m['generator']}): key frequencies {keys}, Gini {m['gini']:.2f}; "
            f"{m['zero_residue']}"] + honesty_lines("multiplicative frequency", "multiplicative frequencies",
                                                    "discrete-log basis of Z_p^*",
                                                    m["gini"], m["gini_random"], m["key_frequencies"],
                                                    m.get("keys_account"))


def _figures(d: Drawing) -> dict:
    keys = d.result["multiplicative"]["key_frequencies"]
    matrices = [("input embeddings", symbol_embeddings(d.final)), ("neuron-logit map", neuron_logit_map(d.final))]
    return {"fourier_multiplicative.png": spectrum(matrices, keys, multiplicative_norms,
                                                   "Z_p^* (discrete-log order; 0 left out)", d.title),
            "multiplicative_planes.png": multiplicative_planes(d.final, keys, d.title)}


MULTIPLICATIVE = Analysis(
    "multiplicative", "Fourier analysis in the discrete-log basis of Z_p^*, for x * y, x / y and formulas "
    "x^a * y^b mod a prime",
    applies=lambda cfg: monomial(cfg.task, _params(cfg)) is not None,
    keys=_keys,
    measure=_measure, summary=_summary, lines=_lines, figures=_figures,
    captions={"fourier_multiplicative.png": "the embedding's multiplicative Fourier spectrum (discrete-log order)",
              "multiplicative_planes.png": "the residues in the key multiplicative frequencies' planes"},
    series=(Series("mult_gini", "Gini, embedding (Z_p^*)", "structure"),
            Series("mult_neuron_logit_gini", "Gini, neuron-logit map (Z_p^*)", "structure"),
            Series("mult_restricted_loss", "restricted loss (key multiplicative frequencies)", "loss"),
            Series("mult_excluded_loss", "excluded loss (key multiplicative frequencies, train)", "loss")))
