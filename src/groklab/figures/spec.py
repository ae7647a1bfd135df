"""What a store figure is: ``FigureSpec``, one figure ``groklab plot NAME`` and the report draw from a store's runs,
and ``Selection``, the runs it is drawn from.

A figure module (``figures/curves.py``, a plugin's file) holds a ``FigureSpec`` at its top level: its name, its
one-line help, ``draw(selection) -> matplotlib Figure`` (drawn with ``groklab.plots``, or inline with
``plots.new_figure``) and ``applies(selection)``, whether a store has the runs for it (the report shows every
figure that applies). Group rows with ``queries.by_setting`` so that runs differing in a setting are never
pooled as seeds; colour them with ``selection.palette`` so that a setting keeps its colour across figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

from ..plots import Palette


@dataclass(frozen=True)
class Selection:
    """What a store figure is drawn from: the finished runs (store rows), their metrics, chosen run ids."""

    runs: list[dict]
    metrics: Callable[[int], list[dict]]
    run_ids: list[int] | None = None
    source: str = "the store"
    comparison: object | None = None  # the store's last groklab compare (store.SavedComparison)

    @cached_property
    def palette(self) -> Palette:
        """One colour per setting of the selection's runs, shared by every figure drawn from it."""
        return Palette(self.runs)

    def varies(self, key: str) -> bool:
        """Some task of the selection has runs at two or more values of the store column ``key``."""
        seen: dict[str, set] = {}
        for r in self.runs:
            seen.setdefault(r["task"], set()).add(r[key])
        return any(len(v) > 1 for v in seen.values())


def _always(sel: Selection) -> bool:
    return True


@dataclass(frozen=True)
class FigureSpec:
    """A store figure: its name, its help, ``draw(selection)`` and ``applies(selection)``."""
    name: str
    help: str
    draw: Callable[[Selection], object]
    applies: Callable[[Selection], bool] = _always  # whether the selection has what the figure needs (the report)
    fields: tuple = ()
    caption: str = ""  # what the report says under it, where ``help`` speaks of command-line flags
