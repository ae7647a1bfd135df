"""The curves of chosen runs: accuracy and loss vs steps (the paper's Figure 1, left)."""

from __future__ import annotations

from ..errors import ConfigError
from ..plots import curves, nth_colour
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
    # one colour per distinct setting when the runs span several (seeds alike), else one per run: the setting's
    # colour in the other figures (the palette's), or, where a setting is drawn at two training fractions (which
    # the other figures put on their x axis), one colour per setting and fraction
    kinds = sorted({(sel.palette.setting(r), r["train_fraction"]) for r in chosen})
    if len(kinds) == 1:
        colours = None
    elif len(kinds) == len({k for k, _ in kinds}):
        colours = {lab: sel.palette(r) for lab, r in zip(labels, chosen)}
    else:
        colours = {lab: nth_colour(kinds.index((sel.palette.setting(r), r["train_fraction"])), len(kinds))
                   for lab, r in zip(labels, chosen)}
    return curves({label: sel.metrics(i) for i, label in zip(ids, labels)}, colours=colours)


CURVES = FigureSpec("curves", "accuracy and loss vs steps of the runs --run-id (default: the first 12)", draw,
                    caption="accuracy and loss vs steps of the store's first 12 finished runs")
