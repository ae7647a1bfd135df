"""The logit margin: how far the answer's logit stands above the best wrong one, on the training and the
validation examples, at each snapshot (a margin above 0 is a right answer). A network that groks widens the
validation margin long after the training margin: ``groklab analyze RUN`` writes ``margin.png`` and prints the
final margins; ``--margin-quantile 0.1`` reports that quantile of the margins instead of their median.
"""

from __future__ import annotations

from groklab.analysis.figures import finish, shade
from groklab.analysis.spec import Analysis, Drawing, Series, Snapshot
from groklab.fields import Field
from groklab.lazy import lazy
from groklab.plots import TRAIN, VAL, new_figure

torch = lazy("torch")

QUANTILE = Field("margin_quantile", 0.5, "analysis margin: the quantile of the examples' margins reported "
                 "(0.5: the median), in [0, 1)", min=0.0, lt=1.0)


def margins(logits: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
    """logits (n, V), answers (n,) -> (n,): the answer's logit minus the largest other one."""
    right = logits.gather(1, answers[:, None])[:, 0]
    others = logits.scatter(1, answers[:, None], float("-inf"))
    return right - others.max(1).values


def measure(snap: Snapshot, keys) -> dict:
    m, train, q = margins(snap.logits, snap.data.z), snap.data.train, snap.options["margin_quantile"]
    return {"margin_train": float(m[train].quantile(q)), "margin_val": float(m[~train].quantile(q))}


def figures(d: Drawing) -> dict:
    snaps = d.result["snapshots"]
    steps = [max(r["step"], 1) for r in snaps]
    fig = new_figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.plot(steps, [r["margin_train"] for r in snaps], "o-", ms=3, color=TRAIN, label="training examples")
    ax.plot(steps, [r["margin_val"] for r in snaps], "o-", ms=3, color=VAL, label="validation examples")
    ax.axhline(0, color="0.5", lw=0.8)
    shade(ax, d.result["phases"])
    ax.set(xscale="log", xlabel="optimization steps", ylabel="logit margin (answer - best other)",
           title=f"quantile {d.options['margin_quantile']:g} of the margins")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return {"margin.png": finish(fig, d.title)}


MARGIN = Analysis(
    "margin", "the logit margin of the answer over the best wrong one, on training and validation examples",
    applies=lambda cfg: True, measure=measure,
    summary=lambda rows, keys, snap: {"margin": {"train": rows[-1]["margin_train"], "val": rows[-1]["margin_val"]}},
    lines=lambda r: [f"logit margin: train {r['margin']['train']:.2f}, validation {r['margin']['val']:.2f}"],
    figures=figures, captions={"margin.png": "the logit margins over training"},
    series=(Series("margin_train", "logit margin, training"), Series("margin_val", "logit margin, validation")),
    fields=(QUANTILE,))
