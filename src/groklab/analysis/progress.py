"""Measures of one model, and of a run over its snapshots (``groklab analyze``).

``measure(model, cfg, ...)`` computes, for one model of a run with config ``cfg``: what training logs at an
evaluation (``evaluation``: training and validation loss and accuracy, the share of training examples whose loss
is exactly zero in the run's loss precision (softmax collapse), the weight norm; by the engine's own evaluation
and the run's own loss, so these equal the run's metrics.csv row at that step), the Fourier norms and Gini of the
embedding (modular tasks), the restricted and excluded losses on given key frequencies (x + y and x - y), the
sharpness of the run's training loss and the logit scale. ``analyze(run_dir)``
runs it over every snapshot (the key frequencies are those of the last one), reads the phases off the curves and
returns what ``analysis.json`` holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import rundir
from ..data import RunSplit, TaskTable
from ..engine import autocast, score_table, split_means, weight_norms
from ..events import held_from, steps_at
from ..losses import get_loss, loss_dtype
from ..tasks import get_task, is_s5, params_of, parity_data
from . import multiplicative, parity, representations
from .embeddings import neuron_logit_map, symbol_embeddings, unembedding_rows
from .fourier import LINEAR_TASKS, frequency_norms, gini, key_frequencies, restricted_excluded_loss
from .sharpness import SHARPNESS_EXAMPLES, SHARPNESS_ITERS, perturbation_sharpness, top_hessian_eigenvalue


COMPOSITION = {"s5_mul": ("S5", "mul"), "s5_conj": ("S5", "conj"), "s5_aba": ("S5", "aba")}


def group_of(task: str, params: dict | None = None) -> tuple[str, str] | None:
    """(group id, operation) of a task whose symbols are a group's elements (the S5 tasks, ``group``)."""
    params = params or {}
    if task in COMPOSITION:
        return COMPOSITION[task]
    if task == "group" and params.get("group"):
        return params["group"], params.get("group_op", "mul")
    return None


def applicable(task: str, params: dict | None = None) -> dict[str, bool]:
    """Which analyses apply to a task (``params``: its modulus and own fields, ``tasks.params_of``):

    - ``fourier``: additive Fourier norms over residues, to modular tasks; ``restricted_excluded`` to x + y and
      x - y (their logits are built from cos / sin k(x +/- y - z));
    - ``multiplicative``: the same in the discrete-log basis, with its restricted and excluded losses, to
      x * y, x / y and formulas x^a * y^b mod a prime;
    - ``irreps``: norm shares over a group's irreducible representations, to the S5 and group tasks;
      ``irreps_restricted``: their restricted and excluded losses, to compositions x . y;
    - ``parity``: the relevant bits' weight share and the Walsh coefficient, to parity;
    - ``embeddings``: the operand embeddings' pictures (a vector task has none); ``s5_cosets`` S5's colouring.
    """
    t, params = get_task(task), dict(params or {})
    grp = group_of(task, params)
    return {"embeddings": not t.vector, "fourier": t.modular, "restricted_excluded": task in LINEAR_TASKS,
            "multiplicative": multiplicative.applies(task, params) if "modulus" in params
            else task in multiplicative.MONOMIAL_TASKS,
            "irreps": grp is not None, "irreps_restricted": grp is not None and grp[1] == "mul",
            "parity": task == "parity", "s5_cosets": is_s5(task), "sharpness": True, "softmax_collapse": True}


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
    def x(self) -> torch.Tensor:
        return self.table.x

    @property
    def y(self) -> torch.Tensor:
        return self.table.y

    @property
    def z(self) -> torch.Tensor:
        """The answers the run was scored against: its own training answers (label noise), the table's elsewhere."""
        return self.table.z if self.split.answers is None else self.split.answers

    @property
    def train(self) -> torch.Tensor:
        """(n,) bool: the run's training rows."""
        return self.split.train_mask.bool()

    def sharpness_rows(self, n: int) -> torch.Tensor:
        """A fixed subset of n training rows (the first n of a seeded order), for the Hessian estimate."""
        rows = self.train.nonzero().squeeze(1)
        g = torch.Generator().manual_seed(0)
        return rows[torch.randperm(len(rows), generator=g)[:n]]


def evaluation(model, cfg, data: Data) -> tuple[dict, torch.Tensor]:
    """What training logs of ``model`` at an evaluation, computed by the engine's own evaluation
    (``engine.score_table``: the run's loss in its precision, its answers, its matmul precision), so that it
    equals the run's metrics.csv row at that step: training and validation loss and accuracy, the share of
    training rows whose loss is exactly zero, the weight norm. Also the table's logits (n, V), in fp32."""
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
    out = dict(zip(("train_loss", "train_acc", "val_loss", "val_acc", "zero_loss_frac"), means), weight_norm=norm)
    return out, scores.logits[0].float()


def find_keys(model, cfg) -> dict[str, list[int]]:
    """The key frequencies (additive, multiplicative) and key irreps of one model (the last snapshot's are used
    for every snapshot's restricted and excluded losses)."""
    app, params = applicable(cfg.task, params_of(cfg)), params_of(cfg)
    W = symbol_embeddings(model) if app["embeddings"] else None
    keys: dict[str, list[int]] = {}
    if app["fourier"]:
        keys["fourier"] = key_frequencies(frequency_norms(W))
    if app["multiplicative"]:
        keys["multiplicative"] = key_frequencies(multiplicative.multiplicative_norms(W))
    if app["irreps"]:
        iso = representations.isotypic(group_of(cfg.task, params)[0])
        keys["irreps"] = representations.key_irreps(representations.irrep_shares(W, iso).numpy(), iso)
    return keys


def measure(model, cfg, data: Data, keys: dict | list | None = None, sharpness_examples: int = SHARPNESS_EXAMPLES,
            sharpness_iters: int = SHARPNESS_ITERS) -> dict:
    """Every measure of one model (see the module doc); ``keys``: ``find_keys``'s (a list: the additive key
    frequencies), for the restricted and excluded losses."""
    params = params_of(cfg)
    app = applicable(cfg.task, params)
    keys = {"fourier": keys} if isinstance(keys, list) else dict(keys or {})
    loss = {"loss": cfg.loss, "precision": cfg.loss_precision}  # the run's own, for every loss measured here
    out, logits = evaluation(model, cfg, data)
    with torch.no_grad():
        centred = logits - logits.mean(-1, keepdim=True)
        out["logit_norm"] = centred.norm(dim=-1).mean().item()
    W = symbol_embeddings(model) if app["embeddings"] else None
    if app["fourier"]:
        norms = frequency_norms(W)
        out["embedding_norms"] = norms.tolist()
        out["fourier_gini"] = gini(norms[1:].numpy())
        out["neuron_logit_gini"] = gini(frequency_norms(neuron_logit_map(model))[1:].numpy())
        out["key_frequencies"] = key_frequencies(norms)
    if app["restricted_excluded"] and keys.get("fourier"):
        if len(data.z) == cfg.modulus ** 2:
            out["restricted_loss"], out["excluded_loss"] = restricted_excluded_loss(
                logits, data.z, data.train, cfg.task, keys["fourier"], **loss)
    if app["multiplicative"]:
        norms = multiplicative.multiplicative_norms(W)
        out["mult_norms"] = norms.tolist()
        out["mult_gini"] = gini(norms[1:].numpy())
        out["mult_neuron_logit_gini"] = gini(multiplicative.multiplicative_norms(neuron_logit_map(model))[1:].numpy())
        out["mult_key_frequencies"] = key_frequencies(norms)
        if keys.get("multiplicative"):
            out["mult_restricted_loss"], out["mult_excluded_loss"] = multiplicative.restricted_excluded_loss(
                logits, data.x, data.y, data.z, data.train, multiplicative.monomial(cfg.task, params),
                keys["multiplicative"], **loss)
    if app["irreps"]:
        grp = group_of(cfg.task, params)[0]
        iso = representations.isotypic(grp)
        shares = representations.irrep_shares(W, iso).numpy()
        out["irrep_shares"] = shares.tolist()
        out["irrep_shares_unembed"] = representations.irrep_shares(unembedding_rows(model), iso).tolist()
        out["irrep_gini"] = representations.irrep_gini(shares, iso)
        out["key_irreps"] = [iso.names[k] for k in representations.key_irreps(shares, iso)]
        if app["irreps_restricted"] and keys.get("irreps"):
            out["irrep_restricted_loss"], out["irrep_excluded_loss"] = representations.restricted_excluded_loss(
                logits, data.x, data.y, data.z, data.train, grp, keys["irreps"], **loss)
    if app["parity"]:
        relevant = parity_data(cfg.n_bits, cfg.parity_k, cfg.n_examples, cfg.seed)[1]
        out["relevant_share"] = parity.relevant_share(model, relevant)
        out["walsh_parity"] = parity.walsh_coefficient(model, relevant, cfg.n_bits)
    rows = data.sharpness_rows(sharpness_examples)
    xs = data.table.operands(rows)  # operand symbols, or a vector task's input vectors
    out["sharpness"] = top_hessian_eigenvalue(model, xs, data.y[rows], data.z[rows], iters=sharpness_iters,
                                              **loss)
    out["perturbed_loss_rise"] = perturbation_sharpness(model, xs, data.y[rows], data.z[rows], **loss)
    return out


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
        low = [s for s, a in zip(steps, val_acc) if s <= gen and a < half]
        start = max(mem, low[-1]) if low else mem
        out["circuit_formation"] = [mem, start]
        out["cleanup"] = [start, gen]
    return out


def analyze(run_dir, sharpness_examples: int = SHARPNESS_EXAMPLES, sharpness_iters: int = SHARPNESS_ITERS,
            progress=None) -> dict:
    """Every measure at every snapshot of a run (its final checkpoint when it kept none)."""
    cfg = rundir.load_config(run_dir)
    data = Data.of(cfg)
    files = rundir.snapshot_files(run_dir)
    models = [(step, lambda f=f: rundir.load_snapshot(f, run_dir)) for step, f in files]
    if not models:
        final = rundir.load_model(run_dir)
        step = (rundir.read_summary(run_dir) or {}).get("steps_run") or 0
        models = [(step, lambda: final)]
    params = params_of(cfg)
    app = applicable(cfg.task, params)
    last = models[-1][1]()
    keys = find_keys(last, cfg)
    rows = []
    for i, (step, load) in enumerate(models):
        model = last if i == len(models) - 1 else load()
        rows.append({"step": step, **measure(model, cfg, data, keys, sharpness_examples, sharpness_iters)})
        if progress is not None:
            progress(i + 1, len(models))
    curve = rundir.read_metrics(run_dir) or rows  # the evaluations are denser than the snapshots
    chance = float(torch.bincount(data.table.z).max()) / len(data.table)  # always answering the commonest answer
    ph = phases([r["step"] for r in curve], [r["train_acc"] for r in curve], [r["val_acc"] for r in curve], chance)
    out = {"task": cfg.task, "modulus": cfg.modulus, "model": cfg.model, "applies": app,
           "key_frequencies": keys.get("fourier", []), "fourier_gini": rows[-1].get("fourier_gini"),
           "sharpness": rows[-1]["sharpness"], "phases": ph, "n_snapshots": len(files),
           "sharpness_examples": int(min(sharpness_examples, int(data.train.sum()))), "snapshots": rows}
    if app["multiplicative"]:
        out["multiplicative"] = {"key_frequencies": keys["multiplicative"], "gini": rows[-1]["mult_gini"],
                                 "generator": multiplicative.primitive_root(cfg.modulus),
                                 "zero_residue": multiplicative.ZERO_NOTE}
    if app["irreps"]:
        iso = representations.isotypic(group_of(cfg.task, params)[0])
        out["irreps"] = {"group": group_of(cfg.task, params)[0], "names": list(iso.names), "dims": list(iso.dims),
                         "key_irreps": [iso.names[k] for k in keys["irreps"]], "gini": rows[-1]["irrep_gini"]}
    if app["parity"]:
        out["parity"] = {"relevant_bits": parity_data(cfg.n_bits, cfg.parity_k, cfg.n_examples,
                                                      cfg.seed)[1].tolist(),
                         "relevant_share": rows[-1]["relevant_share"], "walsh_parity": rows[-1]["walsh_parity"]}
    return out
