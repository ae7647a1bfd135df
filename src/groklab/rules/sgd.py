"""SGD with (heavy-ball) momentum; weight decay as an L2 term in the gradient."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..fields import Field
from ..lazy import lazy
from .spec import UpdateRule

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

MOMENTUM = Field("momentum", 0.0, "SGD momentum, in [0, 1)", min=0.0, lt=1.0)


def sgd(p: Tensor, g: Tensor, state: dict[str, Tensor], hp, lr: Tensor,
        step: Tensor) -> None:
    state["exp_avg"].mul_(hp["momentum"]).add_(g)
    p.sub_(lr * state["exp_avg"])


SGD = UpdateRule("sgd", "stochastic gradient descent with momentum", False, ("exp_avg",), sgd, (MOMENTUM,))
