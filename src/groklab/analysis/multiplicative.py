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

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from ..tasks import get_task, is_prime
from .fourier import frequency_norms, project_on_phases

# the (a, b) of the built-in tasks that are x^a * y^b
MONOMIAL_TASKS = {"mul": (1, 1), "div": (1, -1)}
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
    """``(a, b)`` when the task's answer is ``x^a * y^b`` mod a prime (mul, div, or such a custom formula)."""
    params = params or {}
    p = params.get("modulus")
    if p is not None and not is_prime(p):
        return None
    if task in MONOMIAL_TASKS:
        return MONOMIAL_TASKS[task]
    if task == "custom" and params.get("expression"):
        from ..expressions import parse

        return parse(params["expression"]).monomial()
    return None


def applies(task: str, params: dict) -> bool:
    return get_task(task).modular and monomial(task, params) is not None


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
    from ..losses import get_loss, loss_dtype

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
