"""Best validation accuracy within the budget vs training fraction, tasks named by their equation, symmetric ones
solid (the paper's Figure 2, right)."""

from __future__ import annotations

from ..plots import best_val
from ..queries import by_setting, config_of
from ..tasks import get_task, is_symmetric, params_of
from .spec import FigureSpec, Selection


def draw(sel: Selection):
    symmetric, labels = {}, {}
    for key, rows in by_setting(sel.runs, exclude=("train_fraction",)).items():
        c = {"modulus": rows[0]["modulus"], **config_of(rows[0]), "task": rows[0]["task"]}
        params = {k: v for k, v in params_of(c).items() if k != "modulus"}
        symmetric[key] = is_symmetric(c["task"], c["modulus"], **params)
        if get_task(c["task"]).params:  # the setting's label says its own equation (the formula, the group)
            labels[key] = key
        labels.setdefault(c["task"], get_task(c["task"]).equation)
    return best_val(sel.runs, symmetric, labels, palette=sel.palette)


BEST_VAL = FigureSpec("best-val", "best validation accuracy within the budget vs training fraction (Figure 2, right)",
                      draw, lambda sel: sel.varies("train_fraction"))
