"""Store figures by name (``FIGURES``): what ``groklab plot NAME`` draws from a store's runs, and the report shows
wherever it applies.

A figure is a ``FigureSpec`` (``figures.spec``) in a module of this package or of a plugin package (entry points
of group ``groklab.figures``). ``selection(store, rows)`` is what a figure is drawn from.
"""

from __future__ import annotations

from ..registry import Registry
from ..store import SavedComparison
from .spec import FigureSpec, Selection

FIGURES: Registry[FigureSpec] = Registry(
    "figure", FigureSpec, __name__, "groklab.figures", namespace="figure",
    first=("curves", "double_descent", "model_wise", "data_efficiency", "best_val", "compare"))

__all__ = ["FIGURES", "FigureSpec", "Selection", "selection"]


def selection(store, runs: list[dict], run_ids: list[int] | None = None, source: str = "the store") -> Selection:
    """A ``Selection`` of a ``groklab.store.Store``'s rows, with the comparison it keeps."""
    return Selection(runs, store.metrics, run_ids, source, SavedComparison.load(store))
