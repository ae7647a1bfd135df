"""Softmax cross-entropy, the paper's loss.

    >>> cross_entropy(torch.zeros(1, 2, 4), torch.tensor([[0, 3]]))
    tensor([[1.3863, 1.3863]])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy
from .spec import Loss

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")


def cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Softmax cross-entropy: logits (E, N, V), target (E, N) -> (E, N)."""
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(),
                                             reduction="none").view(target.shape)


CROSS_ENTROPY = Loss("cross_entropy", "softmax cross-entropy on the answer (the paper's)", cross_entropy)
