"""Update rules as plug-ins: gradient transforms applied before the base optimizer, by name.

A transform is a small function over a state dict::

    apply(g, state, hp, steps) -> g

``g`` is the flat gradient of a group of runs (E, P); ``state`` holds the
transform's tensors with a leading E axis (checkpointed per run, dropped with
a run that finishes); ``hp[field]`` is an (E, 1) column of that RunConfig
field, one value per run; ``steps`` counts each run's updates before this one.
Runs of one group may differ in every hyper-parameter, and a run for which the
transform is off (``active(cfg)`` False) must come out unchanged.

Adding one: a function, a ``GradTransform`` entry in ``GRAD_TRANSFORMS``, its
RunConfig fields (off by default), and a test against the published formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor


@dataclass(frozen=True)
class GradTransform:
    name: str
    doc: str
    hparams: tuple[str, ...]  # the RunConfig fields it reads, per run
    active: Callable[[object], bool]  # on for this RunConfig
    init: Callable[[Tensor], dict[str, Tensor]]  # flat parameters (E, P) -> its state
    apply: Callable[[Tensor, dict[str, Tensor], dict[str, Tensor], list[int]], Tensor]


def _grokfast_ema_init(flat: Tensor) -> dict[str, Tensor]:
    return {"ema": torch.zeros_like(flat)}


def grokfast_ema(g: Tensor, state: dict[str, Tensor], hp: dict[str, Tensor], steps: list[int]) -> Tensor:
    """Grokfast-EMA (Lee et al. 2024, ``gradfilter_ema``): ``ema <- alpha ema + (1 - alpha) g``, the average
    starting at the first gradient; then ``g <- g + lamb ema``."""
    ema, alpha = state["ema"], hp["grokfast_alpha"]
    first = [e for e, s in enumerate(steps) if s == 0]
    if first:
        ema[first] = g[first]
    ema.mul_(alpha).add_(g * (1 - alpha))
    return g + hp["grokfast_lamb"] * ema


GRAD_TRANSFORMS: dict[str, GradTransform] = {
    "grokfast_ema": GradTransform(
        "grokfast_ema", "amplify the slow (EMA) component of the gradient", ("grokfast_lamb", "grokfast_alpha"),
        lambda cfg: cfg.grokfast_lamb > 0, _grokfast_ema_init, grokfast_ema),
}


def active_transforms(cfgs) -> list[GradTransform]:
    """The transforms some run of ``cfgs`` switches on, in registry order."""
    return [t for t in GRAD_TRANSFORMS.values() if any(t.active(c) for c in cfgs)]
