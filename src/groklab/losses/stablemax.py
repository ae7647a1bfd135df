"""StableMax cross-entropy (Prieto et al. 2025, "Grokking at the Edge of Numerical Stability"): a softmax whose
numerator grows linearly, not exponentially, so the loss of a memorized example does not round to exactly zero
(no softmax collapse). Computed in float64 by default, as their code does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy
from .spec import Loss

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")


def stablemax_s(x: Tensor) -> Tensor:
    """Prieto et al. 2025's ``s(x)``: ``x + 1`` for ``x >= 0`` and ``1 / (1 - x)`` below, a softmax numerator that
    grows linearly, not exponentially (no softmax collapse)."""
    return torch.where(x >= 0, x + 1, 1 / (1 - x.clamp(max=0)))  # clamp: no 1 / 0 in the branch not taken


def stablemax(logits: Tensor, target: Tensor) -> Tensor:
    """StableMax cross-entropy: ``-log(s(x_target) / sum_j s(x_j))``, in the logits' dtype."""
    sx = stablemax_s(logits)
    picked = sx.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    return sx.sum(-1).log() - picked.log()


STABLEMAX = Loss("stablemax", "StableMax cross-entropy (Prieto et al. 2025), in fp64 as published", stablemax,
                 precision="fp64")
