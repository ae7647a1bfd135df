"""Per-example losses by name, the same code for training and evaluation.

A loss maps logits ``(E, N, V)`` and target answers ``(E, N)`` to one loss per
example ``(E, N)`` in the logits' dtype; training averages it over each run's
batch, evaluation over each run's training and validation rows. The engine
casts the logits to ``loss_dtype(loss, cfg.loss_precision)`` first (fp32 or
fp64), and logs the share of training examples whose loss is exactly zero in
that precision (``zero_loss_frac``: softmax collapse). Adding one is a function and
one entry in ``LOSSES`` (``RunConfig.loss`` then accepts its name).

>>> import torch
>>> cross_entropy(torch.zeros(1, 2, 4), torch.tensor([[0, 3]]))
tensor([[1.3863, 1.3863]])
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import ConfigError


def cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Softmax cross-entropy: logits (E, N, V), target (E, N) -> (E, N)."""
    return F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none").view(target.shape)


def stablemax_s(x: Tensor) -> Tensor:
    """Prieto et al. 2025's ``s(x)``: ``x + 1`` for ``x >= 0`` and ``1 / (1 - x)`` below, a softmax numerator that
    grows linearly, not exponentially (no softmax collapse)."""
    return torch.where(x >= 0, x + 1, 1 / (1 - x.clamp(max=0)))  # clamp: no 1 / 0 in the branch not taken


def stablemax(logits: Tensor, target: Tensor) -> Tensor:
    """StableMax cross-entropy (Prieto et al. 2025, "Grokking at the Edge of Numerical Stability"):
    ``-log(s(x_target) / sum_j s(x_j))``, in the logits' dtype (float64 by default, as their code does)."""
    sx = stablemax_s(logits)
    picked = sx.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    return sx.sum(-1).log() - picked.log()


def mse(logits: Tensor, target: Tensor) -> Tensor:
    """Mean squared error between the logits and the one-hot answer, averaged over the classes."""
    onehot = F.one_hot(target, logits.shape[-1]).to(logits.dtype)
    return (logits - onehot).pow(2).mean(-1)


LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "cross_entropy": cross_entropy,
    "stablemax": stablemax,
    "mse": mse,
}


# the precision a loss is computed in when RunConfig.loss_precision is "auto"
NATIVE_PRECISION = {"stablemax": "fp64"}
DTYPES = {"fp32": torch.float32, "fp64": torch.float64}


def loss_dtype(name: str, precision: str) -> torch.dtype:
    """The dtype the logits are cast to before loss ``name``: ``precision`` (fp32, fp64), or for "auto" the loss's
    own (fp64 for StableMax, as published; fp32 for the others)."""
    return DTYPES[NATIVE_PRECISION.get(name, "fp32") if precision == "auto" else precision]


def zero_loss(per_example: Tensor) -> Tensor:
    """Where the loss is exactly zero in its working precision: for softmax cross-entropy, the example's softmax has
    rounded to exactly 1 at the answer and its gradient vanishes ("softmax collapse", Prieto et al. 2025, who
    track the share of such training examples)."""
    return per_example == 0


def get_loss(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    if name not in LOSSES:
        raise ConfigError(f"loss {name!r} is not allowed; allowed: {', '.join(LOSSES)}")
    return LOSSES[name]


def l2_penalty(params: dict[str, Tensor], l2: Tensor) -> Tensor:
    """The L2 term of the objective, ``sum_e l2[e] * ||w_e||^2 / 2`` over every parameter of each run e
    (``params``: tensors with a leading run axis E; ``l2``: (E,)). Its gradient is ``l2 * w``."""
    sq = sum(v.float().pow(2).flatten(1).sum(1) for v in params.values())
    return 0.5 * (l2 * sq).sum()
