"""Median steps to 99% accuracy vs training fraction, per task and setting (the paper's Figure 1, centre)."""

from __future__ import annotations

from ..plots import data_efficiency
from .spec import FigureSpec

DATA_EFFICIENCY = FigureSpec(
    "data-efficiency", "median steps to 99% accuracy vs training fraction, per task (Figure 1, centre)",
    lambda sel: data_efficiency(sel.runs, palette=sel.palette), lambda sel: sel.varies("train_fraction"))
