"""Gradient clipping: each run's whole gradient scaled down to at most ``grad_clip`` in norm before the optimizer
(``torch.nn.utils.clip_grad_norm_``'s rule, per run). ``--grad-clip 1`` (0, the default: off)."""

from __future__ import annotations

from groklab.fields import Field
from groklab.interventions.spec import Intervention, StepContext
from groklab.lazy import lazy

torch = lazy("torch")

MAX_NORM = Field("grad_clip", 0.0, "clip each run's gradient to this norm before the optimizer (0: off)", min=0.0)


def clip(g: torch.Tensor, state: dict, hp, ctx: StepContext) -> torch.Tensor:
    """g (E, P), one row per run: rows longer than their run's ``grad_clip`` are scaled to it; a run with 0 (off)
    keeps its gradient bit for bit."""
    limit = hp["grad_clip"]  # (E, 1)
    norm = g.norm(dim=1, keepdim=True)
    scale = torch.where((limit > 0) & (norm > limit), limit / (norm + 1e-6), torch.ones_like(norm))
    return g * scale


GRAD_CLIP = Intervention("grad_clip", "clip each run's gradient to a norm", "gradient", (MAX_NORM,), clip)
