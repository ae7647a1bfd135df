"""A run over its snapshots (``groklab analyze``): every applicable analysis at every snapshot, the phases read off
the curves, the figures.

``evaluation(model, cfg, data)`` computes what training logs at an evaluation (training and validation loss and
accuracy, the share of training examples whose loss is exactly zero in the run's loss precision, the weight norm),
by the engine's own evaluation and the run's own loss, so these equal the run's metrics.csv row at that step.
``measure`` adds every applicable analysis's measures (``groklab.analysis.ANALYSES``); ``analyze(run_dir)`` does
that at every snapshot (each analysis's keys, such as the key frequencies, are those of the last one), reads the
phases off the curves and returns what ``analysis.json`` holds; ``analysis_figures`` and ``write_analysis`` add
the figures.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import rundir
from ..data import RunSplit, TaskTable
from ..engine import autocast, score_table, split_means, weight_norms
from ..errors import ConfigError
from ..events import held_from, steps_at
from ..lazy import lazy
from ..losses import get_loss, loss_dtype
from ..tasks import task_label
from . import ANALYSES
from .figures import progress as draw_progress
from .spec import Analysis, Drawing, Snapshot

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

EVALUATED = ("train_loss", "train_acc", "val_loss", "val_acc", "zero_loss_frac")


@dataclass
class Data:
    """A run's whole table and its split, on the CPU."""

    table: TaskTable
    split: RunSplit

    @classmethod
    def of(cls, cfg) -> "Data":
        table = TaskTable.build(cfg.task, cfg.modulus, torch.device("cpu"), **cfg.task_params)
        return cls(table, RunSplit.build(table, cfg.train_fraction, cfg.seed, cfg.label_noise))

    @property
    def x(self) -> Tensor:
        return self.table.x

    @property
    def y(self) -> Tensor:
        return self.table.y

    @property
    def z(self) -> Tensor:
        """The answers the run was scored against: its own training answers (label noise), the table's elsewhere."""
        return self.table.z if self.split.answers is None else self.split.answers

    @property
    def train(self) -> Tensor:
        """(n,) bool: the run's training rows."""
        return self.split.train_mask.bool()

    def sharpness_rows(self, n: int) -> Tensor:
        """A fixed subset of n training rows (the first n of a seeded order), for the Hessian estimate."""
        rows = self.train.nonzero().squeeze(1)
        g = torch.Generator().manual_seed(0)
        return rows[torch.randperm(len(rows), generator=g)[:n]]


def options(given: dict | None = None) -> dict:
    """Every analysis setting (``ANALYSES.fields()``) at its default, with ``given`` over it, checked."""
    table = ANALYSES.fields()
    out = {name: f.default for name, f in table.items()}
    for name, value in (given or {}).items():
        if name not in table:
            raise ConfigError(f"unknown analysis option {name!r}; allowed: {', '.join(table)}")
        table[name].check(value)
        out[name] = value
    return out


def applicable(cfg) -> list[Analysis]:
    """The analyses that apply to a run (``cfg``: its RunConfig), in registry order."""
    return [a for a in ANALYSES.values() if a.applies(cfg)]


def evaluation(model, cfg, data: Data) -> tuple[dict, Tensor]:
    """What training logs of ``model`` at an evaluation, computed by the engine's own evaluation
    (``engine.score_table``: the run's loss in its precision, its answers, its matmul precision), so that it
    equals the run's metrics.csv row at that step: training and validation loss and accuracy, the share of
    training rows whose loss is exactly zero, the weight norm; and the mean norm of the centred logits. Also the
    table's logits (n, V), in fp32."""
    state = model.state()  # in the order the engine lays parameters out (the model's param_shapes), for the norm
    params = {k: state[k].detach().unsqueeze(0) for k in model.spec.param_shapes(model.cfg)}
    with autocast("cpu", cfg.precision):
        scores = score_table(model.spec, model.cfg, params, data.table,
                             None if data.split.answers is None else data.split.answers.unsqueeze(0),
                             get_loss(cfg.loss), loss_dtype(cfg.loss, cfg.loss_precision), keep_logits=True)
    with torch.inference_mode():
        means = split_means(scores, data.train.unsqueeze(0))[0].tolist()
        flat = torch.cat([v.reshape(1, -1) for v in params.values()], dim=1)
        norm = weight_norms(flat)[0].item()
        logits = scores.logits[0].float()
        centred = logits - logits.mean(-1, keepdim=True)
        out = dict(zip(EVALUATED, means), weight_norm=norm, logit_norm=centred.norm(dim=-1).mean().item())
    return out, logits


def snapshot(model, cfg, data: Data, opts: dict | None = None, step: int = 0) -> tuple[dict, Snapshot]:
    """``evaluation`` of one model, and the ``Snapshot`` the analyses measure."""
    row, logits = evaluation(model, cfg, data)
    return row, Snapshot(model, cfg, data, logits, options(opts) if opts is None else opts, step)


def find_keys(model, cfg, data: Data, opts: dict | None = None) -> dict:
    """Each applicable analysis's keys (``Analysis.keys``: the key frequencies, the key irreps), found on
    ``model`` (the final one: every snapshot is measured against them)."""
    _, snap = snapshot(model, cfg, data, opts)
    return {a.name: a.keys(snap) for a in applicable(cfg) if a.keys is not None}


def measure(model, cfg, data: Data, keys: dict | None = None, opts: dict | None = None, step: int = 0) -> dict:
    """Every measure of one model: its evaluation and each applicable analysis's (against ``keys``:
    ``find_keys``'s)."""
    row, snap = snapshot(model, cfg, data, options(opts), step)
    for a in applicable(cfg):
        if a.measure is not None:
            row.update(a.measure(snap, (keys or {}).get(a.name)))
    return row


def phases(steps: list[int], train_acc: list[float], val_acc: list[float],
           chance: float = 0.0) -> dict[str, list[int] | None]:
    """The three phases of Nanda et al. as read off the accuracy curves: memorization up to the first step with
    99% training accuracy; cleanup from the last step validation accuracy was under half way from ``chance``
    (the accuracy of always answering the commonest answer: 1/97 for a table mod 97, 1/2 for parity) to 1
    before it generalized (the step from which validation accuracy held 99%, as the run's summary says; the
    validation loss falls as weight decay removes the memorizing components) to that step; circuit formation
    between. None where a boundary is never reached. A reading of the curves, not a
    measurement of the circuit: compare with the restricted and excluded losses."""
    mem, gen = steps_at(steps, train_acc), held_from(steps, val_acc)  # generalized: as the run's summary says
    out: dict[str, list[int] | None] = {"memorization": [steps[0], mem] if mem is not None else None,
                                        "circuit_formation": None, "cleanup": None}
    if mem is not None and gen is not None and gen > mem:
        half = (chance + 1.0) / 2
        # an evaluation inside a loss spike (training accuracy fallen after memorization) is no sign of where the
        # cleanup starts: validation accuracy falls with it and recovers with it
        low = [s for s, a, t in zip(steps, val_acc, train_acc) if s <= gen and a < half and not (s > mem and t < 0.99)]
        start = max(mem, low[-1]) if low else mem
        out["circuit_formation"] = [mem, start]
        out["cleanup"] = [start, gen]
    return out


def spikes(steps: list[int], train_acc: list[float], below: float = 0.9) -> list[dict]:
    """Loss spikes: stretches after memorization (99% training accuracy) where training accuracy fell under
    ``below``, each ``{"start", "end", "low"}`` (the first evaluation under it, the first back at 99% or None when
    it never came back, the lowest training accuracy)."""
    mem = steps_at(steps, train_acc)
    out: list[dict] = []
    if mem is None:
        return out
    cur = None
    for s, a in zip(steps, train_acc):
        if s <= mem:
            continue
        if cur is None and a < below:
            cur = {"start": s, "end": None, "low": a}
        elif cur is not None:
            cur["low"] = min(cur["low"], a)
            if a >= 0.99:
                cur["end"] = s
                out.append(cur)
                cur = None
    if cur is not None:
        out.append(cur)
    return out


def _models(run_dir: Path) -> list[tuple[int, object]]:
    """(step, load) of every snapshot of a run; its final checkpoint when it kept none."""
    files = rundir.snapshot_files(run_dir)
    if files:
        return [(step, lambda f=f: rundir.load_snapshot(f, run_dir)) for step, f in files]
    final = rundir.load_model(run_dir)
    return [((rundir.read_summary(run_dir) or {}).get("steps_run") or 0, lambda: final)]


def analyze(run_dir, progress=None, only: list[str] | None = None, **opts) -> dict:
    """Every measure at every snapshot of a run (its final checkpoint when it kept none): what analysis.json
    holds. ``opts``: analysis settings (``sharpness_examples=128``); ``progress(i, n)`` after each snapshot;
    ``only``: the names of the analyses to run (default: every one that applies)."""
    cfg = rundir.load_config(run_dir)
    opts = options(opts)
    data = Data.of(cfg)
    models = _models(Path(run_dir))
    analyses = [a for a in applicable(cfg) if only is None or a.name in only]
    last = models[-1][1]()
    _, final = snapshot(last, cfg, data, opts, models[-1][0])
    keys = {a.name: a.keys(final) for a in analyses if a.keys is not None}
    rows = []
    for i, (step, load) in enumerate(models):
        row, snap = snapshot(last if i == len(models) - 1 else load(), cfg, data, opts, step)
        for a in analyses:
            if a.measure is not None:
                row.update(a.measure(snap, keys.get(a.name)))
        rows.append({"step": step, **row})
        if progress is not None:
            progress(i + 1, len(models))
    curve = rundir.read_metrics(run_dir) or rows  # the evaluations are denser than the snapshots
    chance = float(torch.bincount(data.table.z).max()) / len(data.table)  # always answering the commonest answer
    out = {"task": cfg.task, "modulus": cfg.modulus, "model": cfg.model,
           "applies": {a.name: a in analyses for a in ANALYSES.values()},
           "phases": phases([r["step"] for r in curve], [r["train_acc"] for r in curve],
                            [r["val_acc"] for r in curve], chance),
           "spikes": spikes([r["step"] for r in curve], [r["train_acc"] for r in curve]),
           "n_snapshots": len(rundir.snapshot_files(run_dir)), "options": opts, "snapshots": rows}
    for a in analyses:
        if a.summary is not None:
            out.update(a.summary(rows, keys.get(a.name), final))
    return out


def measure_keys() -> dict[str, str | None]:
    """Every measure ``series_of`` can give, with the analysis that measures it (None: the evaluation's own)."""
    out: dict[str, str | None] = {k: None for k in (*EVALUATED, "weight_norm", "logit_norm")}
    for a in ANALYSES.values():
        out.update({s.key: a.name for s in a.series})
    return out


def series_of(run_dir, key: str, **opts) -> list[tuple[int, float | None]]:
    """(step, value) of one measure at every snapshot of a run: from its analysis.json when that holds it, else
    measured now by the one analysis that owns it (kept in ``RUN/analysis/measure-NAME.json`` with its settings,
    and reused while they are the same)."""
    keys = measure_keys()
    if key not in keys:
        raise ConfigError(f"measure {key!r} is not known; allowed: {', '.join(keys)}")
    run_dir = Path(run_dir)
    cfg = rundir.load_config(run_dir)
    owner = keys[key]
    if owner is not None and not ANALYSES[owner].applies(cfg):
        raise ConfigError(f"measure {key!r} (analysis {owner}) does not apply to the run in {str(run_dir)!r}")
    opts = options(opts)
    mine = {f.name: opts[f.name] for f in (ANALYSES[owner].fields if owner else ())}
    full = rundir.read_json(run_dir / "analysis" / "analysis.json")
    cached = run_dir / "analysis" / f"measure-{owner or 'evaluation'}.json"
    n = len(rundir.snapshot_files(run_dir))
    for found in (full, rundir.read_json(cached)):
        if (found and found.get("n_snapshots") == n and all(key in r for r in found.get("snapshots", ()))
                and {k: (found.get("options") or {}).get(k) for k in mine} == mine):
            return [(r["step"], r[key]) for r in found["snapshots"]]
    result = analyze(run_dir, only=[owner] if owner else [], **opts)
    cached.parent.mkdir(parents=True, exist_ok=True)
    rundir.atomic_json(cached, {"n_snapshots": result["n_snapshots"], "options": mine,
                                "snapshots": [{k: v for k, v in r.items() if k == "step" or k in keys}
                                              for r in result["snapshots"]]})
    return [(r["step"], r.get(key)) for r in result["snapshots"]]


def describe(result: dict) -> list[str]:
    """What ``groklab analyze`` says of a result: the last snapshot's accuracies, each analysis's lines, the
    phases."""
    cfg_analyses = [a for a in ANALYSES.values() if result["applies"].get(a.name)]
    last = result["snapshots"][-1]
    lines = [f"step {last['step']:,}: train acc {last['train_acc']:.3f}, val acc {last['val_acc']:.3f}"]
    for a in cfg_analyses:
        if a.lines is not None:
            lines += a.lines(result)
    ph = {k: v for k, v in result["phases"].items() if v}
    if ph:
        lines.append("phases: " + "; ".join(f"{k.replace('_', ' ')} {a:,}-{b:,}" for k, (a, b) in ph.items()))
    if result.get("spikes"):
        said = [f"{sp['start']:,} ({sp['low']:.2f}, " + (f"back by {sp['end']:,})" if sp["end"] is not None
                                                         else "not back by the end)") for sp in result["spikes"]]
        lines.append(f"loss spikes (dips and recoveries, not phases): training accuracy under 0.9 at step "
                     f"{'; '.join(said)}")
    return lines


def analysis_figures(run_dir, progress=None, **opts) -> tuple[dict, dict]:
    """Analyse a run directory: ``analyze``'s result and the figures of the analyses that apply, by file name
    (``progress.png``, ...), as matplotlib Figures."""
    run_dir = Path(run_dir)
    if not (run_dir / "checkpoint.pt").exists() and not rundir.snapshot_files(run_dir):
        raise ConfigError(f"{str(run_dir)!r} has no checkpoint or snapshots to analyse")
    cfg = rundir.load_config(run_dir)
    opts = options(opts)
    result = analyze(run_dir, progress=progress, **opts)
    analyses = applicable(cfg)
    title = f"{task_label(cfg)}, {cfg.model}"
    models = _models(run_dir)
    history = rundir.read_metrics(run_dir)

    def spread(k: int) -> list[tuple[int, object]]:  # up to k snapshots, evenly spread, the last included
        if len(models) < 2:
            return [(models[-1][0], models[-1][1]())]
        k = min(k, len(models))
        pick = sorted({round(i * (len(models) - 1) / (k - 1)) for i in range(k)})
        return [(models[i][0], models[i][1]()) for i in pick]

    drawing = Drawing(result, history, cfg, models[-1][1](), spread, title, opts)
    figs = {"progress.png": draw_progress(result, history, analyses, title=title)}
    for a in analyses:
        if a.figures is not None:
            figs.update(a.figures(drawing))
    return result, figs


def captions() -> dict[str, str]:
    """What each analysis figure shows, by file name (the report's captions)."""
    return {"progress.png": "progress measures over the snapshots",
            **{name: text for a in ANALYSES.values() for name, text in a.captions.items()}}


def write_analysis(run_dir, out_dir=None, progress=None, **opts) -> dict:
    """Analyse a run directory and write its figures and ``analysis.json`` (to ``RUN/analysis`` by default)."""
    result, figs = analysis_figures(run_dir, progress=progress, **opts)
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
