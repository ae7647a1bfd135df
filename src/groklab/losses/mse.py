"""Mean squared error between the logits and the one-hot answer (Liu et al.'s Omnigrok uses it)."""

from __future__ import annotations

from ..lazy import lazy
from .spec import Loss

torch = lazy("torch")


def mse(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the logits and the one-hot answer, averaged over the classes."""
    onehot = torch.nn.functional.one_hot(target, logits.shape[-1]).to(logits.dtype)
    return (logits - onehot).pow(2).mean(-1)


MSE = Loss("mse", "mean squared error on one-hot targets", mse)
