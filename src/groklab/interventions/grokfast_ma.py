"""Grokfast-MA (Lee et al. 2024, ``gradfilter_ma`` with ``filter_type="mean"``, ``warmup=True``): amplify the mean
of the last ``window`` gradients."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..fields import Field
from ..lazy import lazy
from .spec import Intervention, StepContext

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

LAMB = Field("grokfast_ma_lamb", 0.0, "Grokfast-MA amplification of the mean of the last grokfast_ma_window "
             "gradients (0: off)", min=0.0)
WINDOW = Field("grokfast_ma_window", 100, "Grokfast-MA window, in updates", min=1, switch="grokfast_ma_lamb")


def init(flat: Tensor, hp) -> dict[str, Tensor]:
    window = int(max(hp.host["grokfast_ma_window"]))  # runs with a shorter window use its first slots
    return {"ma_window": flat.new_zeros(flat.shape[0], window, flat.shape[1]), "ma_sum": torch.zeros_like(flat)}


def grokfast_ma(g: Tensor, state: dict[str, Tensor], hp, ctx: StepContext) -> Tensor:
    """Keep each run's last ``window`` gradients; once the window is full, ``g <- g + lamb * mean(window)`` (the
    window includes the current gradient). A ring buffer per run and a running sum: one add and one subtract per
    update."""
    buf, total = state["ma_window"], state["ma_sum"]
    out = g.clone()
    lamb, windows = hp.host["grokfast_ma_lamb"], hp.host["grokfast_ma_window"]
    for e, step in enumerate(ctx.steps):
        if lamb[e] == 0:
            continue
        window = int(windows[e])
        slot = step % window
        total[e].sub_(buf[e, slot]).add_(g[e])
        buf[e, slot].copy_(g[e])
        if step + 1 >= window:
            out[e].add_(total[e], alpha=lamb[e] / window)
    return out


GROKFAST_MA = Intervention("grokfast_ma", "amplify the moving average of the last grokfast_ma_window gradients",
                           "gradient", (LAMB, WINDOW), grokfast_ma, init)
