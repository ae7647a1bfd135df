"""What an update rule is: ``UpdateRule``, a base optimizer applied to a group of runs' flat buffers at once, and
the helpers the rules share (weight decay, reading a parameter as a matrix).

Every rule works on ``(E, P)`` tensors, one row per run, with each run's settings as ``(E, 1)`` columns
(``optim.HyperParams``): one run and sixty-four cost the same number of kernel launches, and runs of a group may
differ in every setting. A rule module (``rules/adam.py``, a plugin's file) holds its ``UpdateRule`` objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ..fields import Field
from ..lazy import lazy

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")


@dataclass(frozen=True)
class UpdateRule:
    """A base optimizer: how weight decay enters, its state tensors, its update and (optionally) PyTorch's fused
    kernel for it.

    - ``update(p, g, state, hp, lr, step)``: one update in place; ``p``, ``g`` and each state tensor (E, P),
      ``lr`` (E, 1) this update's learning rate (warm-up included), ``step`` (E, 1) the update's 1-based count;
    - ``layout``: ``update`` also takes ``params`` (``optim.FlatParams``: names, segments, shapes and each
      parameter's ``matrix`` as its model declares it) and the decay target (None: zero), and applies weight decay
      itself (Muon);
    - ``decoupled``: weight decay moves the weights (AdamW), else an L2 term joins the gradient (Adam, SGD);
    - ``fused``: the name of a PyTorch kernel with ``torch._fused_adamw_``'s signature (one call per set of runs
      sharing settings); ``bias_corrected``: the step along the normalized direction is ``lr / (1 - beta1^t)``;
    - ``fields``: the RunConfig settings it reads beyond lr, weight_decay and warmup_steps (its ``hp`` columns).
    """

    name: str
    doc: str
    decoupled: bool
    state: tuple[str, ...]
    update: Callable[..., None]
    fields: tuple[Field, ...] = ()
    fused: str | None = None
    bias_corrected: bool = False
    layout: bool = False

    @property
    def hparams(self) -> tuple[str, ...]:
        """The names of the rule's settings, the columns of its per-run hyper-parameters."""
        return tuple(f.name for f in self.fields)

    def kernel(self) -> Callable | None:
        """PyTorch's fused kernel, or None."""
        return getattr(torch, self.fused) if self.fused else None

    def step_size(self, lr: float, beta1: float, t: int) -> float:
        """How far update ``t`` (1-based) moves the weights per unit of the rule's direction."""
        return lr / (1 - beta1 ** t) if self.bias_corrected else lr


def apply_decay(p: Tensor, g: Tensor, lr, wd, target: Tensor | None, decoupled: bool) -> None:
    """Weight decay, in place, written once for every rule.

    Towards zero (``target`` None) or towards ``target`` (e.g. the initialization). Decoupled (AdamW): the weights
    move ``lr * wd`` of the way to the target; otherwise (Adam, SGD) the L2 term ``wd * (p - target)`` is added to
    the gradient. ``lr``, ``wd``: numbers or (rows, 1) columns.
    """
    if decoupled:
        if target is None:
            p.mul_(1 - lr * wd)  # as PyTorch's fused AdamW rounds it
        else:
            p.sub_(lr * wd * (p - target))
    else:
        g.add_(wd * (p if target is None else p - target))


def as_matrix(t: Tensor, matrix: tuple[tuple[int, ...], tuple[int, ...]]) -> Tensor:
    """A parameter with a leading run axis, t (E, *shape), as the (E, inputs, outputs) matrices its model declares
    (``ParamInit.matrix``: the axes of each side): a view where the axes are in order, else a copy."""
    rows, cols = matrix
    shape = t.shape[1:]
    order = (0, *(a + 1 for a in rows), *(a + 1 for a in cols))
    n_in = math.prod(shape[a] for a in rows)
    if order != tuple(range(len(order))):
        t = t.permute(order)
    return t.reshape(t.shape[0], n_in, -1)


def from_matrix_index(shape: tuple[int, ...], matrix: tuple[tuple[int, ...], tuple[int, ...]],
                      device) -> Tensor | None:
    """Where each entry of ``as_matrix``'s matrix lies in the parameter's flat layout (None: in order, a plain
    reshape puts it back)."""
    rows, cols = matrix
    if (*rows, *cols) == tuple(range(len(shape))):
        return None
    return as_matrix(torch.arange(math.prod(shape), device=device).view(1, *shape), matrix).reshape(-1)
