"""Adam and AdamW (Kingma and Ba 2015; Loshchilov and Hutter 2019): PyTorch's fused kernel, one call per set of runs
sharing settings, or the same update as elementwise operations. AdamW's weight decay is decoupled (the paper's
setup), Adam's an L2 term in the gradient."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..fields import Field
from ..lazy import lazy
from .spec import UpdateRule

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

BETA1 = Field("beta1", 0.9, "Adam beta1, in [0, 1)", min=0.0, lt=1.0)
BETA2 = Field("beta2", 0.98, "Adam beta2, in [0, 1)", min=0.0, lt=1.0)
EPS = Field("eps", 1e-8, "Adam epsilon", gt=0.0)
ADAM_FIELDS = (BETA1, BETA2, EPS)


def adam(p: Tensor, g: Tensor, state: dict[str, Tensor], hp, lr: Tensor,
         step: Tensor) -> None:
    """Adam's moments and step, elementwise: the fused kernel's update, written out."""
    b1, b2 = hp["beta1"], hp["beta2"]
    state["exp_avg"].lerp_(g, 1 - b1)
    state["exp_avg_sq"].mul_(b2).addcmul_(g, g * (1 - b2))
    denom = (state["exp_avg_sq"] / (1 - b2 ** step)).sqrt_().add_(hp["eps"])
    p.sub_(lr / (1 - b1 ** step) * state["exp_avg"] / denom)


ADAMW = UpdateRule("adamw", "Adam with decoupled weight decay (the paper's)", True, ("exp_avg", "exp_avg_sq"), adam,
                   ADAM_FIELDS, fused="_fused_adamw_", bias_corrected=True)
ADAM = UpdateRule("adam", "Adam, weight decay as an L2 term in the gradient", False, ("exp_avg", "exp_avg_sq"), adam,
                  ADAM_FIELDS, fused="_fused_adam_", bias_corrected=True)
