"""Losses by name (``LOSSES``), the same code for training and evaluation, and what the engine asks of them.

A loss is a ``Loss`` (``losses.spec``) in a module of this package or of a plugin package (entry points of group
``groklab.losses``): ``RunConfig.loss`` then accepts its name. The engine casts the logits to ``loss_dtype`` first
and logs the share of training examples whose loss is exactly zero in that precision (``zero_loss``: softmax
collapse). The L2 term of the objective is ``l2_penalty``.

    >>> import torch
    >>> get_loss("cross_entropy")(torch.zeros(1, 2, 4), torch.tensor([[0, 3]]))
    tensor([[1.3863, 1.3863]])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..lazy import lazy
from ..registry import Registry
from .spec import Loss

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

LOSSES: Registry[Loss] = Registry("loss", Loss, __name__, "groklab.losses", selector="loss",
                                  first=("cross_entropy", "stablemax", "mse"))

__all__ = ["LOSSES", "Loss", "get_loss", "l2_penalty", "loss_dtype", "zero_loss"]


def get_loss(name: str) -> Callable:
    """Loss ``name``'s function ``(logits (E, N, V), target (E, N)) -> (E, N)``."""
    return LOSSES[name].fn


def loss_dtype(name: str, precision: str):
    """The dtype the logits are cast to before loss ``name``: ``precision`` (fp32, fp64), or for "auto" the loss's
    own (fp64 for StableMax, as published; fp32 for the others)."""
    chosen = LOSSES[name].precision if precision == "auto" else precision
    return {"fp32": torch.float32, "fp64": torch.float64}[chosen]


def zero_loss(per_example: Tensor) -> Tensor:
    """Where the loss is exactly zero in its working precision: for softmax cross-entropy, the example's softmax has
    rounded to exactly 1 at the answer and its gradient vanishes ("softmax collapse", Prieto et al. 2025, who
    track the share of such training examples)."""
    return per_example == 0


def l2_penalty(params: dict[str, Tensor], l2: Tensor) -> Tensor:
    """The L2 term of the objective, ``sum_e l2[e] * ||w_e||^2 / 2`` over every parameter of each run e
    (``params``: tensors with a leading run axis E; ``l2``: (E,)). Its gradient is ``l2 * w``."""
    sq = sum(v.float().pow(2).flatten(1).sum(1) for v in params.values())
    return 0.5 * (l2 * sq).sum()
