"""What an intervention is: ``Intervention``, what a run does to its weights, gradients or updates at one stage of
each update, switched on by a setting of its own.

Each intervention acts at one stage of an update (``STAGES``):

- ``weights``: the weights the forward and backward pass of this update see (weight noise); the stored weights
  stay clean, evaluation uses them. ``apply(views, state, hp, ctx) -> views``.
- ``gradient``: the flat gradient before the base optimizer (Grokfast-EMA). ``apply(g, state, hp, ctx) -> g``.
- ``update``: the weights after the base optimizer's step (update noise). ``apply(p, state, hp, ctx) -> None``,
  in place.

``g`` and ``p`` are the flat tensors of a group of runs ``(E, P)``; ``views`` the named parameter tensors
(leading axis E); ``state`` holds the intervention's tensors with a leading E axis (checkpointed per run, dropped
with a run that finishes); ``hp[field]`` is an (E, 1) column of that field and ``hp.host[field]`` the same values
as floats; ``ctx`` (``StepContext``) gives each run's update count, its own random generator and the base rule's
step size. Runs of one group may differ in every setting, and a run for which an intervention is off must come
out bit for bit as without it (and draw nothing from its generator).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ..fields import Field
from ..lazy import lazy

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

STAGES = ("weights", "gradient", "update")


@dataclass
class StepContext:
    """What an intervention may need about the update being made, per run of the group."""

    steps: list[int]  # each run's updates before this one
    generators: list | None = None  # each run's own noise stream (torch.Generator, on the device)
    step_size: list[float] | None = None  # update stage: how far the base rule moved along its direction
    params: Tensor | None = None  # gradient stage: the flat weights (E, P) the gradient was taken at
    segments: list[tuple[int, int]] | None = None  # each weight tensor's [start, stop) columns (FlatParams order)


def _no_state(flat, hp) -> dict:
    return {}


@dataclass(frozen=True)
class Intervention:
    """One intervention: its ``stage``, its ``fields`` (the first is its switch: on for a run where it is not 0 or
    False; the others mean something only while it is on), ``apply`` (see the module doc) and ``init(flat, hp) ->
    state`` when it keeps tensors across updates."""

    name: str
    doc: str
    stage: str
    fields: tuple[Field, ...]
    apply: Callable
    init: Callable[..., dict] = _no_state

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"intervention {self.name!r}: stage {self.stage!r} is not one of {', '.join(STAGES)}")
        if not self.fields:
            raise ValueError(f"intervention {self.name!r} needs a field that switches it on")

    @property
    def switch(self) -> str:
        """The setting that switches the intervention on (its first field)."""
        return self.fields[0].name

    @property
    def hparams(self) -> tuple[str, ...]:
        """The fields it reads per run (``hp[name]``)."""
        return tuple(f.name for f in self.fields)

    def active(self, cfg) -> bool:
        """On for this RunConfig."""
        return bool(getattr(cfg, self.switch))


def normal_rows(n: int, device, std: list[float], generators: list) -> list[tuple[int, Tensor]]:
    """(run, N(0, std^2) noise of n values) for every run whose std is > 0, drawn from that run's generator."""
    return [(e, torch.randn(n, generator=generators[e], device=device).mul_(s)) for e, s in enumerate(std) if s > 0]
