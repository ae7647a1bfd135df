"""What an analysis is: ``Analysis``, one way of looking inside a run's networks, with where it applies, what it
measures at each snapshot, what it says and what it draws.

``groklab analyze RUN`` (``analysis.progress.analyze``) loads a run's snapshots, evaluates each one as training
did (losses, accuracies, the weight norm: the run's metrics.csv row at that step) and hands each applicable
analysis a ``Snapshot``; an analysis module (``analysis/fourier.py``, a plugin's file) holds its ``Analysis`` at
its top level, and the registry (``groklab.analysis.ANALYSES``) finds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..fields import Field


@dataclass
class Snapshot:
    """One model of a run, as an analysis sees it: ``model`` (``groklab.models.Model``, no ensemble axis), the
    run's ``cfg``, its ``data`` (``progress.Data``: the whole table and the run's split, on the CPU), ``logits``
    (n, V) of the whole table as the run's evaluation computed them (fp32), ``options`` (the analyses' settings
    by name: ``options["sharpness_examples"]``) and ``step``."""

    model: Any
    cfg: Any
    data: Any
    logits: Any
    options: dict
    step: int = 0

    @property
    def loss(self) -> dict:
        """The run's loss and its precision, as the measures of a loss take them (``loss=``, ``precision=``)."""
        return {"loss": self.cfg.loss, "precision": self.cfg.loss_precision}


@dataclass
class Drawing:
    """What an analysis draws from: the ``result`` (what analysis.json holds), the run's metrics ``history``, its
    ``cfg``, the ``final`` model, ``models(k)`` (up to k (step, model) pairs spread over the snapshots), the
    figures' ``title`` and the ``options``."""

    result: dict
    history: list
    cfg: Any
    final: Any
    models: Callable[[int], list]
    title: str
    options: dict


@dataclass(frozen=True)
class Series:
    """A measure as the progress figure draws it over the snapshots: its key in each snapshot's row, its label,
    and its ``panel``: ``loss`` (beside the training and validation loss, log scale), ``structure`` (a share or a
    Gini, 0 to 1), or None (drawn by the analysis's own ``panel``, or only listed)."""

    key: str
    label: str
    panel: str | None = None


@dataclass(frozen=True)
class Analysis:
    """One analysis.

    - ``applies(cfg)``: whether it applies to a run (its task, its model);
    - ``keys(snapshot)``: what every snapshot is measured against, found on the final model (the key frequencies
      whose restricted loss each snapshot reports); None when it needs none;
    - ``measure(snapshot, keys) -> dict``: its measures of one snapshot (numbers, or lists of numbers), a row's
      entries of analysis.json's ``snapshots``;
    - ``summary(rows, keys, snapshot)``: its entries of analysis.json's top level (the final snapshot's);
    - ``lines(result)``: what ``groklab analyze`` prints about it;
    - ``figures(drawing) -> {file name: Figure}``: the figures it writes into the analysis folder, and
      ``captions`` (file name -> what it shows: the report's captions);
    - ``series``: its measures in the progress figure (``Series``); ``panel(ax, steps, rows, result)``: a panel
      of its own there;
    - ``fields``: its settings (``fields.Field``), flags of ``groklab analyze``.
    """

    name: str
    doc: str
    applies: Callable[[Any], bool]
    measure: Callable[[Snapshot, Any], dict] | None = None
    keys: Callable[[Snapshot], Any] | None = None
    summary: Callable[[list, Any, Snapshot], dict] | None = None
    lines: Callable[[dict], list[str]] | None = None
    figures: Callable[[Drawing], dict] | None = None
    series: tuple[Series, ...] = ()
    captions: dict[str, str] = field(default_factory=dict)
    panel: Callable[..., None] | None = None
    fields: tuple[Field, ...] = ()
