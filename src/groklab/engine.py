"""The engine: runs stacked along an ensemble axis and trained as one model.

``GroupSpec`` is what the runs of a group share (task, model and architecture,
loss, optimizer kind, precision, compile, device, dropout rate); it is built
from the runs' configs and refuses configs that disagree, naming the field.
Everything else is per run: split, initialization, batch order, random stream
(dropout masks, weight and update noise), label noise, hyper-parameters, budget. ``Group`` holds the stacked
parameters and optimizer and offers four operations: ``build``, ``step`` (one
update of every member), ``evaluate`` (loss and accuracy on each member's
training and validation rows) and ``retire`` (drop members that are done).

A run trains the same alone (``E = 1``) or in any group, bit for bit on the CPU
(tested): each member's initialization, batches, dropout masks and noise come
from its own seeded generators; every member computes through the same batched
kernels whatever E is (no single-model shortcut); and runs stack only with runs
of the same batch size, since padding a smaller batch would change the
summation order of its gradients (and chaotic training turns last-bit
differences into different curves within a few hundred steps).

    >>> from groklab import RunConfig
    >>> g = Group.build([RunConfig(task="add", modulus=7, seed=s) for s in (0, 1)])   # doctest: +SKIP
    >>> g.step(); g.evaluate()[0]["train_acc"]                                          # doctest: +SKIP
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .data import SEED_BATCHES, SEED_INIT, SEED_NOISE, RunSplit, Sampler, TaskTable, derive_seed
from .errors import ConfigError
from .interventions import StepContext, active_transforms
from .lazy import lazy
from .losses import get_loss, l2_penalty, loss_dtype, zero_loss
from .models import ModelSpec, get_model
from .models.stacked import Dropout, init_member, stack
from .optim import BASE_FIELDS, FlatParams, HyperParams, Optimizer
from .rules import RULES
from .runtime import resolve_device
from .tasks import get_task

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

# fields every stacked run must share; the model adds its own architecture fields
SHARED_FIELDS = ("task", "modulus", "model", "loss", "loss_precision", "optimizer", "precision", "compile", "dropout")
EVAL_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc", "zero_loss_frac", "weight_norm", "lr")
# examples x runs per evaluation chunk: cache-sized on the CPU; large on a GPU, where each chunk
# is a round of kernel launches
EVAL_CHUNK = {"cpu": 2048, "cuda": 1 << 17}


@dataclass(frozen=True)
class GroupSpec:
    """What the runs of one stacked group share. ``GroupSpec.of(cfgs)`` checks that they agree."""

    task: str
    modulus: int
    model: str
    loss: str
    loss_precision: str
    optimizer: str
    precision: str
    compile: bool
    dropout: float
    device: str
    batch_size: int  # resolved: every member's batch has the same rows count, so no padding changes its sums
    arch: tuple[tuple[str, Any], ...]  # the model's own fields, (name, value)
    task_params: tuple[tuple[str, Any], ...] = ()  # the task's own fields (its table depends on them)

    @staticmethod
    def key(cfg) -> tuple[tuple[str, Any], ...]:
        """The (field, value) pairs runs must share to stack: configs with equal keys can train together (the
        task's own fields too: one table per group)."""
        names = SHARED_FIELDS + get_task(cfg.task).params + get_model(cfg.model).field_names
        return tuple((n, getattr(cfg, n)) for n in names) + (("device", resolve_device(cfg.device).type),
                                                             ("batch_size", cfg.resolved_batch_size))

    @classmethod
    def of(cls, cfgs) -> "GroupSpec":
        """The spec the configs share; configs that cannot train as one stacked group are refused."""
        if not cfgs:
            raise ValueError("a group needs at least one run")
        first = cls.key(cfgs[0])
        for cfg in cfgs[1:]:
            other = dict(cls.key(cfg))
            for name, value in first:
                if other.get(name) != value:
                    raise ConfigError(f"runs stacked in one group must share {name}; "
                                      f"got {value!r} and {other.get(name)!r}")
        values = dict(first)
        arch = tuple((n, values[n]) for n in get_model(values["model"]).field_names)
        task_params = tuple((n, values[n]) for n in get_task(values["task"]).params)
        return cls(**{n: values[n] for n in SHARED_FIELDS}, device=values["device"], batch_size=values["batch_size"],
                   arch=arch, task_params=task_params)

    @property
    def model_spec(self) -> ModelSpec:
        """The registry entry of this group's model."""
        return get_model(self.model)

    def model_config(self, shape) -> Any:
        """The model's config for the task's ``tasks.Shape`` (or symbol count)."""
        return self.model_spec.config(dict(self.arch), shape)


@dataclass
class Member:
    """One run inside a group: its config, split, batches and random stream."""

    index: int  # position in the configs given to Group.build
    cfg: Any
    split: RunSplit
    sampler: Sampler
    generator: torch.Generator  # dropout masks, weight and update noise of this run, on the device
    step: int = 0


def batch_loss(p, x, y, z, model: ModelSpec, mcfg, loss_fn, dtype, drop) -> Tensor:
    """The sum over runs of each run's mean loss on its batch, so that each run's gradient is its own.

    x, y, z (E, B). The loss is computed in ``dtype`` (fp32 also under bf16 autocast, or fp64).
    """
    return loss_fn(model.answer_logits(p, x, y, mcfg, drop).to(dtype), z).mean(1).sum()


COMPILE_BACKEND = "inductor"  # torch.compile's backend for RunConfig.compile (the tests trace with aot_eager)


@functools.cache
def _compiled_loss(backend: str):
    return torch.compile(batch_loss, backend=backend)


def autocast(device_type: str, precision: str):
    """The matmul precision of a run's forward passes (bf16 autocast, or nothing)."""
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16")


@dataclass
class Scores:
    """Every example of a task's table scored by each member: its loss (in the loss precision), whether the
    answer is right, whether the loss is exactly zero; (E, n) each, and the logits (E, n, V) when kept."""

    loss: Tensor
    correct: Tensor
    zero: Tensor
    logits: Tensor | None = None


def score_table(model: ModelSpec, mcfg, params, table: TaskTable, answers: Tensor | None, loss_fn,
                dtype: torch.dtype, keep_logits: bool = False) -> Scores:
    """Each member's (``params``: (E, ...) tensors) scores on the whole table, in chunks. Rows are scored against
    ``answers`` (E, n) where a run trains on answers of its own (label noise changes training rows only), else
    the table's. The one evaluation of a model: training (``Group.evaluate``) and analysis
    (``analysis.progress.evaluation``) both call it, so they agree on the same weights."""
    with torch.inference_mode():
        return _score_table(model, mcfg, params, table, answers, loss_fn, dtype, keep_logits)


def _score_table(model: ModelSpec, mcfg, params, table: TaskTable, answers, loss_fn, dtype, keep_logits) -> Scores:
    E = next(iter(params.values())).shape[0]
    n, device = len(table), table.x.device
    chunk = max(256, EVAL_CHUNK.get(device.type, 2048) // E)
    loss, correct, zero = (torch.empty(E, n, device=device) for _ in range(3))
    kept = []
    prepared = model.prepare(params, mcfg) if model.prepare is not None else None
    for a in range(0, n, chunk):
        xs = (table.x if table.inputs is None else table.inputs)[a: a + chunk]
        xs, ys = xs.expand(E, *xs.shape), table.y[a: a + chunk].expand(E, -1)
        zs = table.z[a: a + chunk].expand(E, -1) if answers is None else answers[:, a: a + chunk]
        logits = model.answer_logits(params, xs, ys, mcfg, prepared=prepared).to(dtype)
        per = loss_fn(logits, zs)
        loss[:, a: a + chunk] = per
        zero[:, a: a + chunk] = zero_loss(per)
        correct[:, a: a + chunk] = (logits.argmax(-1) == zs).float()
        if keep_logits:
            kept.append(logits)
    return Scores(loss, correct, zero, torch.cat(kept, 1) if keep_logits else None)


def split_means(scores: Scores, train_mask: Tensor) -> Tensor:
    """(E, 5): each member's training loss and accuracy, validation loss and accuracy, and the share of training
    rows whose loss is exactly zero; ``train_mask`` (E, n) marks each member's training rows (the rest validate)."""
    mask = train_mask.float()
    n_tr, n_va = mask.sum(1), (1 - mask).sum(1)
    return torch.stack([(scores.loss * mask).sum(1) / n_tr, (scores.correct * mask).sum(1) / n_tr,
                        (scores.loss * (1 - mask)).sum(1) / n_va, (scores.correct * (1 - mask)).sum(1) / n_va,
                        (scores.zero * mask).sum(1) / n_tr], dim=1)


def weight_norms(flat: Tensor) -> Tensor:
    """(E,): the L2 norm of each member's parameters, ``flat`` (E, P) all of them in one row per member."""
    return flat.norm(dim=1)


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


class Group:
    """Runs stacked along the ensemble axis: their data, parameters and optimizer."""

    def __init__(self, spec: GroupSpec, members: list[Member], params: FlatParams, opt: Optimizer, table: TaskTable):
        self.spec, self.members, self.params, self.opt, self.table = spec, members, params, opt, table
        self.model = spec.model_spec
        self.mcfg = spec.model_config(table.shape)
        self.loss_fn = get_loss(spec.loss)
        self.loss_dtype = loss_dtype(spec.loss, spec.loss_precision)
        self.weight_stage = active_transforms([m.cfg for m in members], "weights")
        self._per_run()

    def _per_run(self) -> None:
        """What is stacked from the current members: their training answers (when some run has label noise)
        and their L2 coefficients (when some run has one)."""
        ms = self.members
        answers = [m.split.answers for m in ms]  # label noise: the answers a run trains on (None: the table's)
        self.answers = (torch.stack([self.table.z if a is None else a for a in answers])
                        if any(a is not None for a in answers) else None)
        self.l2 = (torch.tensor([float(m.cfg.l2) for m in ms], device=self.table.x.device)
                   if any(m.cfg.l2 > 0 for m in ms) else None)

    @classmethod
    def build(cls, cfgs: list, states: list[dict | None] | None = None) -> "Group":
        """A group of fresh runs, or of runs continuing from ``states`` (``member_state`` dicts; None: fresh)."""
        spec = GroupSpec.of(cfgs)
        states = states or [None] * len(cfgs)
        device = torch.device(spec.device)
        table = TaskTable.build(spec.task, spec.modulus, device, **dict(spec.task_params))
        shapes = spec.model_spec.param_shapes(spec.model_config(table.shape))
        members, inits = [], []
        for i, (cfg, state) in enumerate(zip(cfgs, states)):
            split = RunSplit.build(table, cfg.train_fraction, cfg.seed, cfg.label_noise)
            sampler = Sampler(split.train_rows, cfg.resolved_batch_size, derive_seed(cfg.seed, SEED_BATCHES))
            members.append(Member(i, cfg, split, sampler, _generator(device, derive_seed(cfg.seed, SEED_NOISE))))
            inits.append(init_member(shapes, derive_seed(cfg.seed, SEED_INIT), cfg.init_scale) if state is None
                         else state["params"])
        params = FlatParams(stack(inits), device, shapes)
        transforms = active_transforms(cfgs)
        names = BASE_FIELDS + RULES[spec.optimizer].hparams + tuple(f for t in transforms for f in t.hparams)
        hp = HyperParams.from_configs(cfgs, names, device)
        opt = Optimizer(spec.optimizer, params, hp, [c.decay_to_init for c in cfgs], transforms,
                        generators=[m.generator for m in members])
        group = cls(spec, members, params, opt, table)
        for e, state in enumerate(states):
            if state is not None:
                group._load_member(e, state)
        return group

    # -- per-member state (checkpoints) -------------------------------------------------------
    def member_params(self, e: int) -> dict[str, Tensor]:
        """Member e's parameters by name, without the ensemble axis (views: copy before the next update)."""
        return {k: v[e] for k, v in self.params.views.items()}

    def member_state(self, e: int) -> dict:
        """What member e needs to continue bit for bit: parameters, optimizer, sampler, generator, step."""
        m = self.members[e]
        return {"step": m.step, "params": self.params.member(e), "optim": self.opt.state_of(e),
                "sampler": m.sampler.state(), "generator": m.generator.get_state()}

    def _load_member(self, e: int, state: dict) -> None:
        m = self.members[e]
        m.step = int(state["step"])
        m.sampler.load(state["sampler"])
        if "generator" in state:  # checkpoints of groklab 0.1 drew dropout from the global generator
            m.generator.set_state(state["generator"])
        self.opt.load_state_of(e, {k: v.to(self.params.flat.device) for k, v in state["optim"].items()})

    # -- the four operations ------------------------------------------------------------------
    def step(self) -> None:
        """One update of every member: sample, forward, backward, optimizer step. No host synchronization."""
        batches = [m.sampler.next() for m in self.members]
        idx = torch.stack(batches)  # one batch size per group (GroupSpec)
        generators = [m.generator for m in self.members]
        drop = None
        if self.spec.dropout > 0:
            drop = Dropout(self.spec.dropout, generators)
        loss_fn = _compiled_loss(COMPILE_BACKEND) if self.spec.compile and drop is None else batch_loss
        t = self.table
        z = t.z[idx] if self.answers is None else self.answers.gather(1, idx)
        p = self.params.views
        if self.weight_stage:  # weights for this update only: gradients reach the clean ones
            ctx = StepContext([m.step for m in self.members], generators, segments=self.params.segments)
            for intervention in self.weight_stage:
                p = intervention.apply(p, {}, self.opt.hp, ctx)
        with autocast(self.table.x.device.type, self.spec.precision):
            loss = loss_fn(p, t.operands(idx), t.y[idx], z, self.model, self.mcfg, self.loss_fn, self.loss_dtype, drop)
            if self.l2 is not None:
                loss = loss + l2_penalty(self.params.views, self.l2)
            self.params.grad.zero_()
            loss.backward()
            self.opt.step()
        for m in self.members:
            m.step += 1

    def evaluate(self) -> list[dict[str, float]]:
        """Per member: loss and accuracy on its training and validation rows, the share of its training rows
        whose loss is exactly zero in the loss precision (softmax collapse), weight norm, learning rate."""
        with autocast(self.table.x.device.type, self.spec.precision), torch.inference_mode():
            scores = score_table(self.model, self.mcfg, self.params.views, self.table, self.answers, self.loss_fn,
                                 self.loss_dtype)
            mask = torch.stack([m.split.train_mask for m in self.members])
            stats = torch.cat([split_means(scores, mask), weight_norms(self.params.flat).unsqueeze(1),
                               self.opt.current_lr()[:, :1]], dim=1)
        return [dict(zip(EVAL_COLUMNS, row)) for row in stats.cpu().tolist()]

    def retire(self, positions: list[int]) -> None:
        """Drop the members at stack positions ``positions``."""
        keep = [e for e in range(len(self.members)) if e not in positions]
        self.members = [self.members[e] for e in keep]
        if self.members:
            self.params = self.params.select(keep)
            self.opt.params = self.params
            self.opt.select(keep)
            self._per_run()
