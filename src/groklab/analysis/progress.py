"""Measures of one model, and of a run over its snapshots (``groklab analyze``).

``measure(model, cfg, ...)`` computes, for one model of a run with config ``cfg``: training and validation loss
and accuracy, the weight norm, the Fourier norms and Gini of the embedding (modular tasks), the restricted and
excluded losses on given key frequencies (x + y and x - y), the sharpness of the training loss, the share of
training examples whose fp32 loss is exactly zero (softmax collapse) and the logit scale. ``analyze(run_dir)``
runs it over every snapshot (the key frequencies are those of the last one), reads the phases off the curves and
returns what ``analysis.json`` holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import rundir
from ..data import RunSplit, TaskTable
from ..events import steps_at
from ..tasks import get_task, is_s5
from .embeddings import neuron_logit_map, symbol_embeddings
from .fourier import LINEAR_TASKS, frequency_norms, gini, key_frequencies, restricted_excluded_loss
from .sharpness import perturbation_sharpness, top_hessian_eigenvalue


def applicable(task: str) -> dict[str, bool]:
    """Which analyses apply to a task: Fourier norms over residues to modular tasks; restricted / excluded losses
    to x + y and x - y (their logits are built from cos / sin k(x +/- y - z)); S5 gets its coset colouring; an
    image task has no symbol embeddings to draw."""
    t = get_task(task)
    return {"embeddings": not t.image, "fourier": t.modular, "restricted_excluded": task in LINEAR_TASKS,
            "s5_cosets": is_s5(task), "sharpness": True, "softmax_collapse": True}


@dataclass
class Data:
    """A run's whole table and its training mask, on the CPU."""

    x: torch.Tensor
    y: torch.Tensor
    z: torch.Tensor
    train: torch.Tensor  # bool mask over the table's rows

    @classmethod
    def of(cls, cfg) -> "Data":
        table = TaskTable.build(cfg.task, cfg.modulus, torch.device("cpu"))
        split = RunSplit.build(table, cfg.train_fraction, cfg.seed, cfg.label_noise)
        z = table.z if split.answers is None else split.answers  # label noise changes training rows only
        return cls(table.x, table.y, z, split.train_mask.bool())

    def sharpness_rows(self, n: int) -> torch.Tensor:
        """A fixed subset of n training rows (the first n of a seeded order), for the Hessian estimate."""
        rows = self.train.nonzero().squeeze(1)
        g = torch.Generator().manual_seed(0)
        return rows[torch.randperm(len(rows), generator=g)[:n]]


def measure(model, cfg, data: Data, keys: list[int] | None = None, sharpness_examples: int = 512,
            sharpness_iters: int = 50) -> dict:
    """Every measure of one model (see the module doc); ``keys``: the frequencies for restricted / excluded."""
    app = applicable(cfg.task)
    out: dict = {}
    with torch.no_grad():
        logits = model.answer_logits(data.x, data.y).float()
        per = F.cross_entropy(logits, data.z, reduction="none")
        correct = (logits.argmax(-1) == data.z).float()
        tr, va = data.train, ~data.train
        out["train_loss"], out["val_loss"] = per[tr].mean().item(), per[va].mean().item()
        out["train_acc"], out["val_acc"] = correct[tr].mean().item(), correct[va].mean().item()
        out["zero_loss_frac"] = (per[tr] == 0).float().mean().item()
        centred = logits - logits.mean(-1, keepdim=True)
        out["logit_norm"] = centred.norm(dim=-1).mean().item()
        out["weight_norm"] = math.sqrt(sum(float(p.double().pow(2).sum()) for p in model.parameters()))
    if app["fourier"]:
        norms = frequency_norms(symbol_embeddings(model))
        out["embedding_norms"] = norms.tolist()
        out["fourier_gini"] = gini(norms[1:].numpy())
        out["neuron_logit_gini"] = gini(frequency_norms(neuron_logit_map(model))[1:].numpy())
        out["key_frequencies"] = key_frequencies(norms)
    if app["restricted_excluded"] and keys:
        if len(data.z) == cfg.modulus ** 2:
            out["restricted_loss"], out["excluded_loss"] = restricted_excluded_loss(
                logits, data.z, data.train, cfg.task, keys)
    rows = data.sharpness_rows(sharpness_examples)
    out["sharpness"] = top_hessian_eigenvalue(model, data.x[rows], data.y[rows], data.z[rows], iters=sharpness_iters)
    out["perturbed_loss_rise"] = perturbation_sharpness(model, data.x[rows], data.y[rows], data.z[rows])
    return out


def phases(steps: list[int], train_acc: list[float], val_acc: list[float]) -> dict[str, list[int] | None]:
    """The three phases of Nanda et al. as read off the accuracy curves: memorization up to the first step with
    99% training accuracy; cleanup from the last step validation accuracy was under 50% before it reached 99%
    (the validation loss falls as weight decay removes the memorizing components) to that step; circuit
    formation between. None where a boundary is never reached. A reading of the curves, not a measurement of
    the circuit: compare with the restricted and excluded losses."""
    mem, gen = steps_at(steps, train_acc), steps_at(steps, val_acc)
    out: dict[str, list[int] | None] = {"memorization": [steps[0], mem] if mem is not None else None,
                                        "circuit_formation": None, "cleanup": None}
    if mem is not None and gen is not None and gen > mem:
        low = [s for s, a in zip(steps, val_acc) if s <= gen and a < 0.5]
        start = max(mem, low[-1]) if low else mem
        out["circuit_formation"] = [mem, start]
        out["cleanup"] = [start, gen]
    return out


def analyze(run_dir, sharpness_examples: int = 512, sharpness_iters: int = 50, progress=None) -> dict:
    """Every measure at every snapshot of a run (its final checkpoint when it kept none)."""
    cfg = rundir.load_config(run_dir)
    data = Data.of(cfg)
    files = rundir.snapshot_files(run_dir)
    models = [(step, lambda f=f: rundir.load_snapshot(f, run_dir)) for step, f in files]
    if not models:
        final = rundir.load_model(run_dir)
        step = (rundir.read_summary(run_dir) or {}).get("steps_run") or 0
        models = [(step, lambda: final)]
    app = applicable(cfg.task)
    last = models[-1][1]()
    keys = key_frequencies(frequency_norms(symbol_embeddings(last))) if app["fourier"] else []
    rows = []
    for i, (step, load) in enumerate(models):
        model = last if i == len(models) - 1 else load()
        rows.append({"step": step, **measure(model, cfg, data, keys, sharpness_examples, sharpness_iters)})
        if progress is not None:
            progress(i + 1, len(models))
    curve = rundir.read_metrics(run_dir) or rows  # the evaluations are denser than the snapshots
    ph = phases([r["step"] for r in curve], [r["train_acc"] for r in curve], [r["val_acc"] for r in curve])
    return {"task": cfg.task, "modulus": cfg.modulus, "model": cfg.model, "applies": app,
            "key_frequencies": keys, "fourier_gini": rows[-1].get("fourier_gini"),
            "sharpness": rows[-1]["sharpness"], "phases": ph, "n_snapshots": len(files),
            "sharpness_examples": int(min(sharpness_examples, int(data.train.sum()))), "snapshots": rows}
