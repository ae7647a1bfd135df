"""Interventions by name (``INTERVENTIONS``): what a run does to its weights, gradients and updates.

An intervention is an ``Intervention`` (``interventions.spec``: its stage, its fields, the first of which switches it
on) in a module of this package or of a plugin package (entry points of group ``groklab.interventions``). Its fields
become RunConfig fields and flags; the engine applies the ones some run of a group switches on, in registry order
within each stage.
"""

from __future__ import annotations

from ..registry import Registry
from .spec import STAGES, Intervention, StepContext

INTERVENTIONS: Registry[Intervention] = Registry(
    "intervention", Intervention, __name__, "groklab.interventions",
    first=("grokfast_ema", "grokfast_ma", "orthograd", "grad_noise", "weight_noise"))

__all__ = ["INTERVENTIONS", "STAGES", "Intervention", "StepContext", "active_transforms"]


def active_transforms(cfgs, stage: str | None = None) -> list[Intervention]:
    """The interventions some run of ``cfgs`` switches on (of one ``stage``, or all), in registry order."""
    return [t for t in INTERVENTIONS.values() if (stage is None or t.stage == stage) and any(t.active(c) for c in cfgs)]
