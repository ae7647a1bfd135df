"""The learned symbol embeddings as pictures (the paper's Figure 3): PCA and t-SNE of the input embeddings and of
the unembedding rows, the plane of each key frequency (a circle for modular addition), coloured by the task's
labels (residues; for S5 a subgroup's cosets and the cycle type: ``Task.labels``), and one of those pictures at
several snapshots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..fields import Field
from ..plots import new_figure
from ..tasks import get_task, n_symbols, params_of
from .figures import NAMED, finish, plane, scatter, strongest
from .fourier import frequency_norms, frequency_plane
from .spec import Analysis, Drawing
from .weights import pca, symbol_embeddings, tsne, unembedding_rows

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TSNE = Field("tsne", True, "draw the t-SNE panel of the embeddings (scikit-learn; a few seconds)")
STRIP = 6  # snapshots in embeddings_over_time.png


def labels(cfg) -> dict[str, list]:
    """How to colour a run's symbols (``cfg``: a RunConfig): the task's own labels (``Task.labels``: S5's cosets and
    cycle types), else ``residue`` for modular tasks and ``element`` for the others."""
    task = get_task(cfg.task)
    if task.labels is not None:
        return task.labels(params_of(cfg))
    n = n_symbols(cfg.task, cfg.modulus, **cfg.task_params)
    return {"residue" if task.modular else "element": list(range(n))}


def names_of(cfg) -> list[str] | None:
    """The symbols' names for the pictures (a group's elements as written), where there are few enough to write
    beside their points (``figures.NAMED``) and the task names them."""
    task = get_task(cfg.task)
    n = n_symbols(cfg.task, cfg.modulus, **cfg.task_params)
    if task.symbol_name is None or n > NAMED or task.modular:
        return None
    return [str(task.symbol_name(params_of(cfg), s)) for s in range(n)]


def embeddings(model, labels: Mapping[str, list], keys: Sequence[int] = (), use_tsne: bool = True,
               title: str | None = None, names: Sequence[str] | None = None) -> Figure:
    """PCA (and t-SNE) of the input embeddings and the unembedding rows, coloured by ``labels``; for residues also
    the planes of the three strongest key frequencies, each coloured by k x mod p so the walk around its circle
    shows."""
    W_E, W_U = symbol_embeddings(model), unembedding_rows(model)
    modular = "residue" in labels
    panels = [("PCA of the input embeddings", pca(W_E), None), ("PCA of the unembedding rows", pca(W_U), None)]
    if use_tsne:
        panels.append(("t-SNE of the input embeddings", tsne(W_E), None))
    if modular:
        panels += [(f"input embeddings, frequency {k} plane", frequency_plane(W_E, k), k)
                   for k in strongest(W_E, keys, 3, frequency_norms)]
    colourings = list(labels.items()) if not modular else [next(iter(labels.items()))]
    fig = new_figure(figsize=(3.3 * len(panels), 3.2 * len(colourings)))
    axes = fig.subplots(len(colourings), len(panels), squeeze=False)
    p = model.cfg.n_symbols
    for r, (name, colour) in enumerate(colourings):
        for c, (ptitle, xy, k) in enumerate(panels):
            if k is None:
                scatter(axes[r, c], xy, colour, f"{ptitle}\n(colour: {name})", cyclic=modular, names=names)
            else:
                plane(axes[r, c], xy, k, f"{ptitle}\n(colour: {k} x mod {p})")
    return finish(fig, title)


def embeddings_over_time(models: Sequence[tuple[int, object]], labels: Mapping[str, list], key: int | None) -> Figure:
    """One panel per (step, model): the plane of frequency ``key`` of the input embeddings (residues), else their
    PCA; the same colouring throughout."""
    fig = new_figure(figsize=(2.6 * len(models), 2.8))
    axes = fig.subplots(1, len(models), squeeze=False)[0]
    name, colour = next(iter(labels.items()))
    modular = name == "residue"
    for ax, (step, model) in zip(axes, models):
        W = symbol_embeddings(model)
        if modular and key:
            plane(ax, frequency_plane(W, key), key, f"step {step:,}")
        else:
            scatter(ax, pca(W), colour, f"step {step:,}", cyclic=modular)
    what = (f"input embeddings in the frequency-{key} plane (colour: {key} x mod p)" if key
            else "PCA of the input embeddings")
    fig.suptitle(f"{what}, over training", fontsize=10)
    fig.tight_layout()
    return fig


def _figures(d: Drawing) -> dict:
    keys = d.result.get("key_frequencies", [])
    colours = labels(d.cfg)
    step = d.result["snapshots"][-1]["step"]
    out = {"embeddings.png": embeddings(d.final, colours, keys, d.options["tsne"], f"{d.title}, step {step:,}",
                                        names_of(d.cfg))}
    models = d.models(STRIP)
    if len(models) > 1:
        top = strongest(symbol_embeddings(d.final), keys, 1, frequency_norms)
        out["embeddings_over_time.png"] = embeddings_over_time(models, colours, top[0] if top else None)
    return out


EMBEDDINGS = Analysis(
    "embeddings", "pictures of the symbol embeddings: PCA, t-SNE, key-frequency planes, over time (Figure 3)",
    applies=lambda cfg: not get_task(cfg.task).vector, figures=_figures,
    captions={"embeddings.png": "the embeddings", "embeddings_over_time.png": "the embeddings over time"},
    fields=(TSNE,))
