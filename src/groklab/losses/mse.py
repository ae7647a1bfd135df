"""Mean squared error between the logits and the one-hot answer (Liu et al.'s Omnigrok uses it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy
from .spec import Loss

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")


def mse(logits: Tensor, target: Tensor) -> Tensor:
    """Mean squared error between the logits and the one-hot answer, averaged over the classes."""
    onehot = torch.nn.functional.one_hot(target, logits.shape[-1]).to(logits.dtype)
    return (logits - onehot).pow(2).mean(-1)


MSE = Loss("mse", "mean squared error on one-hot targets", mse)
