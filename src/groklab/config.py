"""``RunConfig``: every option of a run, with the paper's defaults, validated when built.

CLI flags, TOML files, sweep files and presets all go through ``RunConfig``::

    from groklab import RunConfig
    cfg = RunConfig(task="add", modulus=23, train_fraction=0.5)
    cfg = RunConfig.from_dict({"task": "s5_mul"}, preset="paper")
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from . import loggers
from .errors import ConfigError
from .losses import LOSSES
from .models import MODELS
from .optim import RULES
from .tasks import TaskIds, all_tasks, canonical_expression, check_task, get_task, n_examples, split_sizes


def _f(default, doc: str, **meta):
    return field(default=default, metadata={"doc": doc, **meta})


@dataclass(frozen=True)
class RunConfig:
    """One run. Defaults are the paper's setup (appendix A.1.2) on division mod 97, 50% of the data."""

    task: str = _f("div", "task id (see `groklab tasks`)", choices=TaskIds())
    modulus: int = _f(97, "modulus p of the modular tasks (ignored by the S5 tasks)", min=2)
    train_fraction: float = _f(0.5, "fraction of the table used for training, in (0, 1)")
    seed: int = _f(0, "seed of the split, the initialization and the batches (and of parity's bit strings)", min=0)
    expression: str = _f("", "task custom: the operation, a formula in x and y mod p, e.g. \"x^3 + x*y^2 + y\" "
                         "(+ - * / ^, parentheses, integers; / multiplies by the inverse)")
    group: str = _f("", "task group: S3-S6, A4-A6, D3-D30, Z<n>, or a product such as Z4xZ6")
    group_op: str = _f("mul", "task group: the answer x . y (mul) or x . y . x^-1 (conj)", choices=("mul", "conj"))
    n_bits: int = _f(40, "task parity: bits per string", min=1)
    parity_k: int = _f(3, "task parity: the answer is the parity of this many fixed bits (drawn from the seed)",
                       min=1)
    n_examples: int = _f(2000, "task parity: bit strings drawn from the seed (train_fraction of them to train on)",
                         min=2)
    # model
    model: str = _f("transformer", "model (see groklab.models.MODELS)", choices=MODELS)
    n_layers: int = _f(2, "transformer layers", min=1)
    d_model: int = _f(128, "residual stream width", min=1)
    n_heads: int = _f(4, "attention heads (d_model must divide by it)", min=1)
    d_mlp: int = _f(512, "hidden width of each MLP", min=1)
    act: str = _f("relu", "MLP activation (quadratic: x^2, Gromov 2023)", choices=("relu", "gelu", "quadratic"))
    norm: str = _f("post", "LayerNorm placement", choices=("post", "pre", "none"))
    mlp_embed: str = _f("concat", "model mlp: the operands' embeddings concatenated (one table) or summed "
                        "(a table each)", choices=("concat", "sum"))
    dropout: float = _f(0.0, "residual dropout probability, in [0, 1)")
    init_scale: float = _f(1.0, "multiplier on the initial weights (Omnigrok)", gt=0.0)
    # optimization
    loss: str = _f("cross_entropy", "per-example loss on the answer: cross_entropy, stablemax (Prieto et al. 2025), "
                   "mse on one-hot targets (see groklab.losses.LOSSES)", choices=LOSSES)
    loss_precision: str = _f("auto", "precision of the loss and its softmax: fp32, fp64, or auto (fp64 for stablemax as "
                             "published, fp32 otherwise); softmax collapse (a training loss of exactly 0) depends on it",
                             choices=("auto", "fp32", "fp64"))
    optimizer: str = _f("adamw", "base optimizer: adamw, adam, sgd, or muon (Muon for the hidden matrices, AdamW "
                        "for the rest; see groklab.optim.RULES)", choices=RULES)
    lr: float = _f(1e-3, "peak learning rate", gt=0.0)
    weight_decay: float = _f(1.0, "weight decay (decoupled for adamw, L2 for adam and sgd)", min=0.0)
    decay_to_init: bool = _f(False, "decay the weights towards their initialization, not zero")
    beta1: float = _f(0.9, "Adam beta1, in [0, 1)")
    beta2: float = _f(0.98, "Adam beta2, in [0, 1)")
    eps: float = _f(1e-8, "Adam epsilon", gt=0.0)
    momentum: float = _f(0.0, "SGD momentum, in [0, 1)")
    muon_lr: float = _f(0.02, "optimizer muon: learning rate of the matrices (Muon); the rest use lr (AdamW)", gt=0.0)
    muon_momentum: float = _f(0.95, "optimizer muon: Muon's (Nesterov) momentum, in [0, 1)")
    warmup_steps: int = _f(10, "linear learning-rate warm-up, in updates", min=0)
    grokfast_lamb: float = _f(0.0, "Grokfast-EMA amplification of slow gradients (0: off)", min=0.0)
    grokfast_alpha: float = _f(0.98, "Grokfast-EMA momentum, in [0, 1)")
    grokfast_ma_lamb: float = _f(0.0, "Grokfast-MA amplification of the mean of the last grokfast_ma_window "
                                 "gradients (0: off)", min=0.0)
    grokfast_ma_window: int = _f(100, "Grokfast-MA window, in updates", min=1)
    orthograd: bool = _f(False, "orthogonal gradient (Prieto et al. 2025): remove each weight tensor's gradient "
                         "component along the tensor, keeping its norm, before the optimizer")
    grad_noise: float = _f(0.0, "gradient noise (the paper's): Gaussian noise of this standard deviation added to the "
                           "optimizer's update direction (Adam: its normalized step), so the weights move by an extra "
                           "lr_t * N(0, grad_noise^2) (times the warm-up and Adam's 1/(1 - beta1^t)); 0: off", min=0.0)
    weight_noise: float = _f(0.0, "Gaussian noise of this standard deviation added to every weight for the forward and "
                             "backward pass of each update (stored weights and evaluation stay clean); 0: off", min=0.0)
    label_noise: float = _f(0.0, "fraction of training examples whose answer is replaced by a uniformly drawn wrong "
                            "one, fixed per seed (validation stays clean), in [0, 1)")
    l2: float = _f(0.0, "L2 penalty in the loss, l2 * ||w||^2 / 2 over all weights (not decoupled: Adam's moments "
                   "see it); 0: off", min=0.0)
    batch_size: int | str = _f("auto", "minibatch: 'auto' = min(512, n_train/2), 'full', or a number")
    steps: int = _f(100_000, "budget of updates", min=1)
    # schedule of evaluation, stopping and checkpoints
    early_stop: bool = _f(True, "stop once validation accuracy has held >= 0.99 for stop_patience updates")
    stop_patience: int = _f(500, "updates validation accuracy must hold >= 0.99 before stopping", min=0)
    eval_every: int = _f(10, "evaluation interval early on; later a tenth of the current power of ten (10 per decade)", min=1)
    checkpoint_every: int = _f(1000, "updates between checkpoints", min=1)
    snapshots: int = _f(0, "keep the parameters at about this many log-spaced steps over the budget (and at the "
                        "end) in RUN/snapshots/, for measures over time (groklab analyze); 0: none", min=0)
    logger: str = _f("none", "also log the metrics to: tensorboard (RUN/tensorboard/), wandb (offline unless WANDB_MODE "
                     "says otherwise), several joined by + (tensorboard+wandb), or none; see groklab.loggers")
    device: str = _f("auto", "device", choices=("auto", "cpu", "cuda"))
    precision: str = _f("fp32", "matmul precision: fp32; bf16 autocast (CUDA, or CPUs with bf16 "
                        "matmul: AVX512-BF16/AMX; far slower on others) or tf32 (CUDA): not bitwise the same", choices=("fp32", "bf16", "tf32"))
    compile: bool = _f(False, "compile the training step with torch.compile: for CUDA; no gain measured on the CPU, "
                       "and compiling takes tens of seconds")

    def __post_init__(self):
        _validate(self)
        if self.task == "custom":  # one spelling per formula: the run identity does not depend on spaces
            object.__setattr__(self, "expression", canonical_expression(self.expression))

    # -- derived ---------------------------------------------------------
    @property
    def table_size(self) -> int:
        """The number of equations in the run's table."""
        return n_examples(self.task, self.modulus, **self.task_params)

    @property
    def task_params(self) -> dict:
        """The fields besides the modulus the task's table depends on (``tasks.Task.fields``)."""
        return {f: getattr(self, f) for f in get_task(self.task).fields}

    @property
    def n_train(self) -> int:
        return split_sizes(self.table_size, self.train_fraction)[0]

    @property
    def resolved_batch_size(self) -> int:
        n = self.n_train
        if self.batch_size == "full":
            return n
        if self.batch_size == "auto":
            return max(1, min(512, n // 2))
        return min(int(self.batch_size), n)

    # -- conversion ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "RunConfig":
        """This config with ``changes``; a field the changes make meaningless (``inapplicable``: the Grokfast-MA
        window once its amplification is 0) goes back to its default."""
        kept = self.to_dict()
        return RunConfig.from_dict({**kept, **changes}, loose=set(kept) - set(changes))

    @classmethod
    def from_dict(cls, data: dict[str, Any], preset: str | None = None, loose: Collection[str] = ()) -> "RunConfig":
        """Build from a mapping (over a preset's values when given); unknown keys are refused. A field that means
        nothing for the run (``inapplicable``: ``n_heads`` of an MLP, ``muon_lr`` without Muon) is refused when
        ``data`` gives it, and left at its default when the preset or a key of ``loose`` does (a preset, or a
        sweep's base, is a starting point for runs it does not fully describe), so no config stores it."""
        values = load_preset(preset) if preset else {}
        check_keys(data, "config")
        loose = {*(k for k in values if k not in data), *loose}
        values.update(data)
        for name in inapplicable(values):
            if name in loose:
                values.pop(name)
        return cls(**values)

    @classmethod
    def from_toml(cls, path: str | Path, preset: str | None = None) -> "RunConfig":
        return cls.from_dict(read_toml(path), preset=preset)

    def to_toml(self) -> str:
        lines = []
        for k, v in self.to_dict().items():
            lines.append(f"{k} = {json.dumps(v)}")
        return "\n".join(lines) + "\n"

    def hash(self) -> str:
        """Identity of a run: everything that changes its results (not the device or checkpoint rate).

        Stable as fields are added: the fields of groklab 0.1 always count, a field added later
        only when it differs from its default, so every run made before keeps its hash (its store
        row and run directory name).
        """
        d = {k: v for k, v in self.to_dict().items()
             if k not in NOT_IDENTITY and (k in HASHED_SINCE_0_1 or v != FIELDS[k].default)}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


TASK_FIELDS = ("expression", "group", "group_op", "n_bits", "parity_k", "n_examples")  # read by some tasks only
# fields read by some update rules only (optimizer -> its own fields; beta1, beta2, eps: not SGD's)
OPTIMIZER_FIELDS = {"muon_lr": ("muon",), "muon_momentum": ("muon",), "momentum": ("sgd",),
                    "beta1": ("adamw", "adam", "muon"), "beta2": ("adamw", "adam", "muon"),
                    "eps": ("adamw", "adam", "muon")}
# fields that only mean something while another is switched on: field -> (the switch, its "off" test)
SWITCHED = {"grokfast_alpha": ("grokfast_lamb", lambda v: v == 0), "grokfast_ma_window": ("grokfast_ma_lamb",
            lambda v: v == 0), "decay_to_init": ("weight_decay", lambda v: v == 0)}
NOT_IDENTITY = {"device", "checkpoint_every", "snapshots", "logger"}  # where and what a run writes, not what it computes
# the RunConfig fields of groklab 0.1, whose hash counted every field; never extend this list
HASHED_SINCE_0_1 = frozenset((
    "task", "modulus", "train_fraction", "seed", "n_layers", "d_model", "n_heads", "d_mlp", "act", "norm",
    "dropout", "init_scale", "optimizer", "lr", "weight_decay", "decay_to_init", "beta1", "beta2", "eps",
    "momentum", "warmup_steps", "grokfast_lamb", "grokfast_alpha", "batch_size", "steps", "early_stop",
    "stop_patience", "eval_every", "precision", "compile"))
FIELDS = {f.name: f for f in fields(RunConfig)}


BATCH_WORDS = ("auto", "full")  # batch_size's named values


def parse_value(name: str, text: str, where: str | None = None) -> Any:
    """The value of RunConfig field ``name`` written as text (a command-line flag, a sweep axis, ``--where``):
    an int, a float, ``true`` / ``false`` for a bool, ``auto`` / ``full`` or an int for ``batch_size``, else the
    text itself. Only the type is read here; the range is checked when the RunConfig is built. ``where`` names
    the source in the error (default: the field)."""
    check_keys({name: None}, "config")
    typ, text = FIELDS[name].type, str(text).strip()
    try:
        if typ == "int":
            return int(text)
        if typ == "float":
            return float(text)
        if typ == "bool":
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        if name == "batch_size":
            return text if text in BATCH_WORDS else int(text)
    except ValueError:
        allowed = {"int": "an integer", "float": "a number", "bool": "true or false",
                   "int | str": "'auto', 'full' or an integer >= 1"}[typ]
        raise ConfigError(f"{where or name} {text!r} is not allowed; use {allowed}") from None
    return text


def check_keys(data: dict, where: str) -> None:
    for key in data:
        if key not in FIELDS:
            close = difflib.get_close_matches(str(key), FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown {where} key {key!r}{hint}; allowed: {', '.join(FIELDS)}")


def _type_ok(value, annotation: str) -> bool:
    if annotation == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation == "bool":
        return isinstance(value, bool)
    if annotation == "str":
        return isinstance(value, str)
    return True


def inapplicable(values: Mapping[str, Any]) -> dict[str, str]:
    """The fields of a config (a mapping of fields over the defaults) set away from their default where they mean
    nothing for the run, each with why: another task's, another model's or another update rule's settings, a
    switch's companion with the switch off. Such a field is never stored: it would change the run's identity and
    nothing else."""
    get = lambda k: values.get(k, FIELDS[k].default)  # noqa: E731
    out: dict[str, str] = {}

    def set_(k):
        return k in values and values[k] != FIELDS[k].default

    task = get("task")
    if task in all_tasks():
        for name in TASK_FIELDS:
            if set_(name) and name not in get_task(task).fields:
                users = [t.id for t in all_tasks().values() if name in t.fields]
                out[name] = f"does not apply to task {task!r}; only to task {', '.join(users)}"
    model = get("model")
    if model in MODELS:
        for name in sorted({f for spec in MODELS.values() for f in spec.fields} - set(MODELS[model].fields)):
            if set_(name):
                users = [m for m, spec in MODELS.items() if name in spec.fields]
                out[name] = f"does not apply to model {model!r}; only to model {', '.join(users)}"
    for name, rules in OPTIMIZER_FIELDS.items():
        if set_(name) and get("optimizer") not in rules:
            out[name] = f"does not apply to optimizer {get('optimizer')!r}; only to optimizer {', '.join(rules)}"
    for name, (switch, off) in SWITCHED.items():
        if set_(name) and off(get(switch)):
            out[name] = f"does nothing while {switch} is {get(switch)!r}"
    return out


def _validate(cfg: RunConfig) -> None:
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        meta = f.metadata
        if f.name == "batch_size":
            ok = v in BATCH_WORDS or (_type_ok(v, "int") and v >= 1)
            if not ok:
                raise ConfigError(f"batch_size {v!r} is not allowed; use 'auto', 'full' or an integer >= 1")
            continue
        if not _type_ok(v, f.type):
            raise ConfigError(f"{f.name} {v!r} has the wrong type; expected {f.type}")
        if f.type == "float" and not math.isfinite(v):
            raise ConfigError(f"{f.name} {v!r} is not a finite number")
        if "choices" in meta and v not in meta["choices"]:
            raise ConfigError(f"{f.name} {v!r} is not allowed; allowed: {', '.join(meta['choices'])}")
        if "min" in meta and v < meta["min"]:
            raise ConfigError(f"{f.name} {v!r} is too small; must be >= {meta['min']}")
        if "gt" in meta and not v > meta["gt"]:
            raise ConfigError(f"{f.name} {v!r} must be > {meta['gt']}")
    for name in ("dropout", "beta1", "beta2", "momentum", "muon_momentum", "grokfast_alpha", "label_noise"):
        v = getattr(cfg, name)
        if not 0.0 <= v < 1.0:
            raise ConfigError(f"{name} {v!r} is outside [0, 1)")
    loggers.parse(cfg.logger)
    for name, why in inapplicable(cfg.to_dict()).items():  # settings only where they mean something: none saved unread
        raise ConfigError(f"{name} {getattr(cfg, name)!r} {why}")
    check_task(cfg.task, cfg.modulus, **cfg.task_params)
    MODELS[cfg.model].check(cfg)
    split_sizes(cfg.table_size, cfg.train_fraction)


# -- files and presets ---------------------------------------------------------


def read_toml(path: str | Path, kind: str = "config file") -> dict[str, Any]:
    """A TOML file's tables; ``kind`` names the file in the errors (``sweep file``, ``tune file``)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{kind} {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{kind} {str(path)!r} is a directory") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{kind} {str(path)!r} is not valid TOML: {e}") from None


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("groklab.presets").iterdir() if p.name.endswith(".toml"))


def load_preset(name: str) -> dict[str, Any]:
    if name not in preset_names():
        raise ConfigError(f"unknown preset {name!r}; allowed: {', '.join(preset_names())}")
    text = resources.files("groklab.presets").joinpath(f"{name}.toml").read_text()
    data = tomllib.loads(text)
    check_keys(data, f"preset {name!r}")
    return data
