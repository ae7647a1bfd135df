"""SGD with (heavy-ball) momentum; weight decay as an L2 term in the gradient."""

from __future__ import annotations

from ..fields import Field
from ..lazy import lazy
from .spec import UpdateRule

torch = lazy("torch")

MOMENTUM = Field("momentum", 0.0, "SGD momentum, in [0, 1)", min=0.0, lt=1.0)


def sgd(p: torch.Tensor, g: torch.Tensor, state: dict[str, torch.Tensor], hp, lr: torch.Tensor,
        step: torch.Tensor) -> None:
    state["exp_avg"].mul_(hp["momentum"]).add_(g)
    p.sub_(lr * state["exp_avg"])


SGD = UpdateRule("sgd", "stochastic gradient descent with momentum", False, ("exp_avg",), sgd, (MOMENTUM,))
