"""Gradient noise (the paper's Figure 2): Gaussian noise on the optimizer's update direction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..fields import Field
from ..lazy import lazy
from .spec import Intervention, StepContext, normal_rows

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

STD = Field("grad_noise", 0.0, "gradient noise (the paper's): Gaussian noise of this standard deviation added to the "
            "optimizer's update direction (Adam: its normalized step), so the weights move by an extra lr_t * N(0, "
            "grad_noise^2) (times the warm-up and Adam's 1/(1 - beta1^t)); 0: off", min=0.0)


def update_noise(p: Tensor, state: dict[str, Tensor], hp, ctx: StepContext) -> None:
    """Noise of standard deviation ``grad_noise`` added to the base rule's update direction, as in the paper's code
    (openai/grok ``CustomAdamW``: ``upd += randn_like(upd) * noise_factor`` on Adam's normalized step, before
    ``p -= step_size * upd``). The weights therefore move by an extra ``-step_size * N(0, grad_noise^2)`` per
    coordinate, ``step_size`` being the learning rate of this update (warm-up included) divided, for Adam, by the
    bias correction ``1 - beta1^t``."""
    for e, noise in normal_rows(p.shape[1], p.device, hp.host["grad_noise"], ctx.generators):
        p[e].sub_(noise, alpha=ctx.step_size[e])


GRAD_NOISE = Intervention("grad_noise", "Gaussian noise on the update direction (the paper's gradient noise)",
                          "update", (STD,), update_noise)
