"""Validation loss and accuracy against model size at a few training lengths (Davies et al. 2022's model-wise
picture)."""

from __future__ import annotations

from ..plots import model_wise
from ..queries import arch_fields, varying
from .spec import FigureSpec

MODEL_WISE = FigureSpec(
    "model-wise", "validation loss and accuracy vs parameter count at a few training lengths (Davies et al.)",
    lambda sel: model_wise(sel.runs, sel.metrics),
    lambda sel: sel.varies("n_params") and not varying(sel.runs, exclude=arch_fields()))
