"""Look inside a run: embeddings (Figure 3), Fourier progress measures, flatness, softmax collapse.

Each analysis is a plain function on one model (``groklab.models.Model``, no ensemble axis)::

    from groklab.rundir import load_model
    from groklab.analysis import fourier, embeddings, sharpness
    model = load_model("runs/add97")
    norms = fourier.frequency_norms(embeddings.symbol_embeddings(model))
    fourier.key_frequencies(norms), fourier.gini(norms[1:])

``write_analysis(run_dir)`` (``groklab analyze RUN``) runs every one that applies to the run's task over its
snapshots (``--snapshots N`` at training) and writes ``RUN/analysis/``: ``analysis.json``, ``progress.png``,
``embeddings.png``, ``embeddings_over_time.png`` and (modular tasks) ``fourier.png``.
"""

from __future__ import annotations

import io
from pathlib import Path

from .. import rundir
from ..tasks import task_label
from ..errors import ConfigError
from . import embeddings, fourier, sharpness
from .progress import analyze, applicable, measure, phases
from .sharpness import SHARPNESS_EXAMPLES, SHARPNESS_ITERS

__all__ = ["SHARPNESS_EXAMPLES", "analysis_figures", "analyze", "applicable", "embeddings", "fourier", "measure", "phases",
           "sharpness", "write_analysis"]


def analysis_figures(run_dir, sharpness_examples: int = SHARPNESS_EXAMPLES, use_tsne: bool = True, strip: int = 6,
                     progress=None, sharpness_iters: int = SHARPNESS_ITERS) -> tuple[dict, dict]:
    """Analyse a run directory: ``analyze``'s result and the figures that apply, by file name (``progress.png``,
    ...), as matplotlib Figures."""
    from . import figures

    run_dir = Path(run_dir)
    if not (run_dir / "checkpoint.pt").exists() and not rundir.snapshot_files(run_dir):
        raise ConfigError(f"{str(run_dir)!r} has no checkpoint or snapshots to analyse")
    cfg = rundir.load_config(run_dir)
    result = analyze(run_dir, sharpness_examples=sharpness_examples, sharpness_iters=sharpness_iters, progress=progress)
    app = result["applies"]
    title = f"{task_label(cfg)}, {cfg.model}"
    files = rundir.snapshot_files(run_dir)
    final = rundir.load_snapshot(files[-1][1], run_dir) if files else rundir.load_model(run_dir)
    keys = result["key_frequencies"]
    history = rundir.read_metrics(run_dir)
    figs = {"progress.png": figures.progress(result, history, title=title)}
    if app["embeddings"]:
        figs["embeddings.png"] = figures.embeddings(final, cfg.task, keys, use_tsne=use_tsne,
                                                    title=f"{title}, step {result['snapshots'][-1]['step']:,}")
    if app["fourier"]:
        figs["fourier.png"] = figures.fourier(final, keys, title=title)
    if app["multiplicative"]:
        mkeys = result["multiplicative"]["key_frequencies"]
        figs["fourier_multiplicative.png"] = figures.fourier(final, mkeys, title=title, multiplicative=True)
        figs["multiplicative_planes.png"] = figures.multiplicative_planes(final, mkeys, title=title)
    if app["irreps"]:
        figs["irreps.png"] = figures.irreps(result, history, title=title)
    if app["parity"]:
        figs["parity.png"] = figures.parity(result, history, title=title)
    if len(files) > 1 and app["embeddings"]:
        pick = sorted({round(i * (len(files) - 1) / (min(strip, len(files)) - 1)) for i in range(min(strip, len(files)))})
        models = [(files[i][0], rundir.load_snapshot(files[i][1], run_dir)) for i in pick]
        strongest = figures.strongest(embeddings.symbol_embeddings(final), keys, 1)
        figs["embeddings_over_time.png"] = figures.embeddings_over_time(models, cfg.task,
                                                                        strongest[0] if strongest else None)
    return result, figs


def write_analysis(run_dir, out_dir=None, sharpness_examples: int = SHARPNESS_EXAMPLES, use_tsne: bool = True,
                   strip: int = 6, progress=None, sharpness_iters: int = SHARPNESS_ITERS) -> dict:
    """Analyse a run directory and write its figures and ``analysis.json`` (to ``RUN/analysis`` by default)."""
    result, figs = analysis_figures(run_dir, sharpness_examples, use_tsne, strip, progress, sharpness_iters)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "analysis"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create {str(out)!r}: {e.strerror or e}") from None
    for name, fig in figs.items():
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        rundir.atomic_write(out / name, buf.getvalue())
    rundir.atomic_json(out / "analysis.json", result)
    result["files"] = sorted(figs) + ["analysis.json"]
    return result
