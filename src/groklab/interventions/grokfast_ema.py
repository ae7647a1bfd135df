"""Grokfast-EMA (Lee et al. 2024, ``gradfilter_ema``): amplify the slow component of the gradient, its exponential
moving average, before the optimizer sees it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..fields import Field
from ..lazy import lazy
from .spec import Intervention, StepContext

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

LAMB = Field("grokfast_lamb", 0.0, "Grokfast-EMA amplification of slow gradients (0: off)", min=0.0)
ALPHA = Field("grokfast_alpha", 0.98, "Grokfast-EMA momentum, in [0, 1)", min=0.0, lt=1.0, switch="grokfast_lamb")


def init(flat: Tensor, hp) -> dict[str, Tensor]:
    return {"ema": torch.zeros_like(flat)}


def grokfast_ema(g: Tensor, state: dict[str, Tensor], hp, ctx: StepContext) -> Tensor:
    """``ema <- alpha ema + (1 - alpha) g``, the average starting at the first gradient; then ``g <- g + lamb
    ema``."""
    ema, alpha = state["ema"], hp["grokfast_alpha"]
    first = [e for e, s in enumerate(ctx.steps) if s == 0]
    if first:
        ema[first] = g[first]
    ema.mul_(alpha).add_(g * (1 - alpha))
    return g + hp["grokfast_lamb"] * ema


GROKFAST_EMA = Intervention("grokfast_ema", "amplify the slow (EMA) component of the gradient", "gradient",
                            (LAMB, ALPHA), grokfast_ema, init)
