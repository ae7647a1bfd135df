"""The curves of chosen runs: accuracy and loss vs steps (the paper's Figure 1, left)."""

from __future__ import annotations

from ..errors import ConfigError
from ..plots import curves
from ..queries import run_labels
from .spec import FigureSpec, Selection


def draw(sel: Selection):
    by_id = {r["id"]: r for r in sel.runs}
    ids = sel.run_ids or list(by_id)[:12]
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise ConfigError(f"run id {missing[0]} is not a finished run of {sel.source}; see groklab runs")
    chosen = [by_id[i] for i in ids]
    labels = run_labels(chosen)
    # coloured by setting when the runs span several (as the other figures are), else one colour per run
    colours = {lab: sel.palette(r) for lab, r in zip(labels, chosen)} \
        if len({sel.palette.setting(r) for r in chosen}) > 1 else None
    return curves({label: sel.metrics(i) for i, label in zip(ids, labels)}, colours=colours)


CURVES = FigureSpec("curves", "accuracy and loss vs steps of the runs --run-id (default: the first 12)", draw)
