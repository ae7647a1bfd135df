"""Which basis describes a modular network best: the Fourier basis of Z_p (addition-like operations) or the
discrete-log basis of Z_p^* after a shift of the residues (multiplication-like ones: ``x*y + x + y`` is
``(x + 1)(y + 1) - 1``, multiplicative in ``x + 1``).

For the final weights, each candidate basis's Gini of the input embedding is set against what random embeddings
of the same shape give in that basis (``fourier.random_gini``, its 99% quantile); the basis whose Gini stands out
most (the largest ratio to its random quantile) is named, with the shift. Only a suggestion: the other analyses
measure in the basis their task declares.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy
from ..tasks import get_task, is_prime
from .fourier import fourier_gini, random_gini
from .multiplicative import mult_gini
from .spec import Analysis, Snapshot
from .weights import symbol_embeddings

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")


def shifted(W: Tensor, s: int) -> Tensor:
    """The rows of ``W`` (p, d) relabelled by ``u = x + s mod p``: row u is residue ``u - s``'s."""
    return torch.roll(W, shifts=s, dims=0)


SHIFT_DRAWS = 40  # random embeddings for the best-shift baseline (each one measured at every shift)


def best_shift_gini(W: Tensor) -> float:
    """The largest multiplicative Gini of ``W`` over the p shifts of its rows."""
    return max(mult_gini(shifted(W, s)) for s in range(W.shape[0]))


def fits(W: Tensor) -> list[dict]:
    """Every candidate basis for the embedding ``W`` (p, d), best first: ``{"basis", "shift", "gini", "random"}``
    (``random``: the 99% quantile of random embeddings' Gini in that basis)."""
    p = W.shape[0]
    out = [{"basis": "additive", "shift": 0, "gini": fourier_gini(W),
            "random": random_gini("fourier", tuple(W.shape), fourier_gini)}]
    if is_prime(p) and p > 3:
        # the best of p shifts: a random embedding's best shift is measured the same way
        base = random_gini("multiplicative, best shift", tuple(W.shape), best_shift_gini, draws=SHIFT_DRAWS)
        best = max(range(p), key=lambda s: mult_gini(shifted(W, s)))
        out.append({"basis": "multiplicative", "shift": int(best), "gini": mult_gini(shifted(W, best)),
                    "random": base})
    return sorted(out, key=lambda f: -f["gini"] / max(f["random"], 1e-12))


def describe_fit(f: dict) -> str:
    """A basis in words: ``the Fourier basis of Z_p``, ``the discrete-log basis of x + 1``."""
    if f["basis"] == "additive":
        return "the Fourier basis of Z_p (addition-like)"
    x = "x" if f["shift"] == 0 else f"x + {f['shift']}"
    return f"the discrete-log basis of {x} (multiplicative in {x})"


def _summary(rows, keys, snap: Snapshot) -> dict:
    return {"basis_fits": fits(symbol_embeddings(snap.model))}


def _lines(r: dict) -> list[str]:
    best = r["basis_fits"][0]
    if best["gini"] <= best["random"]:
        return ["best basis: none stands out (every candidate's Gini is within what random embeddings give)"]
    others = "; ".join(f"{describe_fit(f)}: Gini {f['gini']:.2f} (random <= {f['random']:.2f})"
                       for f in r["basis_fits"][1:])
    return [f"best basis: {describe_fit(best)}, Gini {best['gini']:.2f} against <= {best['random']:.2f} for random "
            f"embeddings" + (f"; {others}" if others else "")]


BASIS = Analysis(
    "basis", "which basis describes the embedding best: Fourier over Z_p, or discrete logarithms after a shift",
    applies=lambda cfg: get_task(cfg.task).modular, summary=_summary, lines=_lines)
