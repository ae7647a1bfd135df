"""Weight noise (the paper's Figure 2): Gaussian noise on every weight for the forward and backward pass of each
update; the stored weights and evaluation stay clean."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..fields import Field
from ..lazy import lazy
from .spec import Intervention, StepContext, normal_rows

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

STD = Field("weight_noise", 0.0, "Gaussian noise of this standard deviation added to every weight for the forward "
            "and backward pass of each update (stored weights and evaluation stay clean); 0: off", min=0.0)


def weight_noise(views: dict[str, Tensor], state: dict[str, Tensor], hp,
                 ctx: StepContext) -> dict[str, Tensor]:
    """Noise of standard deviation ``weight_noise`` on every weight, drawn afresh for each update (the paper's code
    adds ``randn_like(weight) * weight_noise`` to every Linear, LayerNorm and Embedding weight in training mode).
    The gradient is taken at the noisy weights and applied to the clean ones."""
    first = next(iter(views.values()))
    rows = normal_rows(ctx.segments[-1][1], first.device, hp.host["weight_noise"], ctx.generators)
    if not rows:
        return views
    noise = first.new_zeros(first.shape[0], ctx.segments[-1][1])
    for e, n in rows:
        noise[e] = n
    return {name: v + noise[:, a:b].view(v.shape) for (name, v), (a, b) in zip(views.items(), ctx.segments)}


WEIGHT_NOISE = Intervention("weight_noise", "Gaussian noise on the weights of each update's forward and backward pass",
                            "weights", (STD,), weight_noise)
