"""The orthogonal gradient (⊥Grad, Prieto et al. 2025, their ``orthograd.py``): remove from each weight tensor's
gradient its component along the tensor, keeping the gradient's norm, before the optimizer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..fields import Field
from ..lazy import lazy
from .spec import Intervention, StepContext

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

ON = Field("orthograd", False, "orthogonal gradient (Prieto et al. 2025): remove each weight tensor's gradient "
           "component along the tensor, keeping its norm, before the optimizer")


def orthograd(g: Tensor, state: dict[str, Tensor], hp, ctx: StepContext) -> Tensor:
    """For each weight tensor w with gradient g: ``g_perp = g - (w.g / (w.w + 1e-30)) w``, then rescaled to g's
    norm, ``g_perp * ||g|| / (||g_perp|| + 1e-30)``. Per tensor (not per row), for every tensor, per run."""
    on = hp["orthograd"] > 0  # (E, 1): the runs it is on for
    out = g.clone()
    for a, b in ctx.segments:
        w, gs = ctx.params[:, a:b], g[:, a:b]
        proj = (w * gs).sum(1, keepdim=True) / ((w * w).sum(1, keepdim=True) + 1e-30)
        perp = gs - proj * w
        perp = perp * (gs.norm(dim=1, keepdim=True) / (perp.norm(dim=1, keepdim=True) + 1e-30))
        out[:, a:b] = torch.where(on, perp, gs)
    return out


ORTHOGRAD = Intervention("orthograd", "remove each weight tensor's gradient component along the tensor (norm kept)",
                         "gradient", (ON,), orthograd)
