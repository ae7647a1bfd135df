"""What a loss is: ``Loss``, a per-example loss on the answer, by name.

A loss maps logits ``(E, N, V)`` and target answers ``(E, N)`` to one loss per example ``(E, N)`` in the logits'
dtype; training averages it over each run's batch, evaluation over each run's training and validation rows. The
engine casts the logits to the loss's working precision first: ``precision`` (``fp32`` or ``fp64``) when the run's
``loss_precision`` is ``auto``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..fields import Field


@dataclass(frozen=True)
class Loss:
    """One loss: ``fn(logits (E, N, V), target (E, N)) -> (E, N)``, its own precision under ``auto`` and (rarely)
    settings of its own."""

    name: str
    doc: str
    fn: Callable
    precision: str = "fp32"
    fields: tuple[Field, ...] = ()
