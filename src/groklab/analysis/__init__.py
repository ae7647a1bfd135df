"""Look inside a run: analyses by name (``ANALYSES``), each measuring the networks a run kept.

An analysis is an ``Analysis`` (``analysis.spec``: where it applies, what it measures at each snapshot, what it
says, what it draws, its settings) in a module of this package or of a plugin package (entry points of group
``groklab.analyses``). groklab's own:

- ``fourier``: Fourier norms of the embedding over Z_p, key frequencies, Gini, restricted and excluded losses
  (Nanda et al. 2023); ``multiplicative``: the same in the discrete-log basis of Z_p^* (x * y, x / y);
- ``irreps``: norm shares over a group's irreducible representations (Chughtai et al. 2023);
- ``parity``: sparse parity's hidden progress (Barak et al. 2022);
- ``sharpness``: the top Hessian eigenvalue and the loss rise under weight noise;
- ``embeddings``: PCA, t-SNE and key-frequency planes of the embeddings (the paper's Figure 3).

Each is also plain functions on one model (``groklab.models.Model``, no ensemble axis)::

    from groklab.rundir import load_model
    from groklab.analysis import fourier, weights
    model = load_model("runs/add97")
    norms = fourier.frequency_norms(weights.symbol_embeddings(model))
    fourier.key_frequencies(norms), fourier.gini(norms[1:])

``write_analysis(run_dir)`` (``groklab analyze RUN``, ``analysis.progress``) runs every one that applies over the
run's snapshots (``--snapshots N`` at training) and writes ``RUN/analysis/``: ``analysis.json``, ``progress.png``
and each analysis's figures.
"""

from __future__ import annotations

import importlib

from ..registry import Registry
from .spec import Analysis, Drawing, Series, Snapshot

ANALYSES: Registry[Analysis] = Registry(
    "analysis", Analysis, __name__, "groklab.analyses", namespace="analysis",
    first=("embeddings", "fourier", "multiplicative", "representations", "parity", "sharpness"),
    skip=("progress", "figures", "weights"))

# the run-level functions, served from ``analysis.progress`` (which reads this registry) when asked for
_PROGRESS = ("Data", "analysis_figures", "analyze", "applicable", "captions", "describe", "evaluation", "find_keys",
             "measure", "options", "phases", "write_analysis")

__all__ = ["ANALYSES", "Analysis", "Drawing", "Series", "Snapshot", *_PROGRESS]


def __getattr__(name: str):
    if name in _PROGRESS:
        return getattr(importlib.import_module(f"{__name__}.progress"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
