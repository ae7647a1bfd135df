"""One run's validation loss with its first minimum, peak and second descent marked (the paper's Figure 4)."""

from __future__ import annotations

from ..errors import ConfigError
from ..plots import double_descent
from .spec import FigureSpec, Selection


def draw(sel: Selection):
    by_id = {r["id"]: r for r in sel.runs}
    ids = sel.run_ids or list(by_id)[:1]
    if len(ids) != 1 or ids[0] not in by_id:
        raise ConfigError(f"double-descent draws one finished run of {sel.source}: give --run-id N (groklab runs)")
    return double_descent(sel.metrics(ids[0]))


DOUBLE_DESCENT = FigureSpec(
    "double-descent", "one run's validation loss with its first minimum, peak and second descent (Figure 4)", draw,
    lambda sel: sel.run_ids is not None and len(sel.run_ids) == 1)
