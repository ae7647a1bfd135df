"""The variants of the store's last ``groklab compare`` side by side (the paper's Figure 2, left)."""

from __future__ import annotations

from ..errors import ConfigError
from ..plots import compare
from .spec import FigureSpec, Selection


def draw(sel: Selection):
    if not sel.comparison:
        raise ConfigError(f"{sel.source} holds no comparison; groklab compare FILE --store S saves one")
    return compare(sel.comparison.results(sel.runs), title=sel.comparison.title or None, palette=sel.palette)


COMPARE = FigureSpec("compare", "the variants of the store's last groklab compare side by side (Figure 2, left)",
                     draw, lambda sel: bool(sel.comparison))
