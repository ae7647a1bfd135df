"""``RunConfig``: every setting of a run, with the paper's defaults, validated when built.

A run's settings are RunConfig's own (``CORE``: the task, the split, the seed, the learning rate and weight decay,
the budget, the schedule, where the run goes) and those the registries' entries bring: a task's (``expression``,
``group``), a model's (``d_model``, ``n_heads``), an update rule's (``beta1``, ``momentum``), an intervention's
(``grokfast_lamb``), groklab's own and the plugins' alike. ``fields()`` lists them all; a setting that means
nothing for a run (another model's width, an intervention's companion with the intervention off) is refused.
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
import tomllib
from collections.abc import Collection, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from . import bundled, loggers, registry
from .errors import ConfigError
from .fields import Field
from .interventions import INTERVENTIONS
from .losses import LOSSES
from .models import MODELS
from .rules import RULES
from .tasks import TASKS, check_task, get_task, n_examples, shape_of, split_sizes

_F = Field
# RunConfig's own settings, in segments between which the registries' entries' settings are listed
_HEAD = (
    _F("task", "div", "task id (see `groklab tasks`)", choices=TASKS.names),
    _F("modulus", 97, "modulus p of the modular tasks (ignored by the S5 tasks)", min=2),
    _F("train_fraction", 0.5, "fraction of the table used for training, in (0, 1)"),
    _F("seed", 0, "seed of the split, the initialization and the batches (and of parity's bit strings)", min=0),
)
_MODEL = (_F("model", "transformer", "model (see groklab.models.MODELS)", choices=MODELS.names),)
_LOSS = (
    _F("dropout", 0.0, "residual dropout probability, in [0, 1)", min=0.0, lt=1.0),
    _F("init_scale", 1.0, "multiplier on the initial weights (Omnigrok)", gt=0.0),
    _F("loss", "cross_entropy", "per-example loss on the answer: cross_entropy, stablemax (Prieto et al. 2025), mse "
       "on one-hot targets (see groklab.losses.LOSSES)", choices=LOSSES.names),
    _F("loss_precision", "auto", "precision of the loss and its softmax: fp32, fp64, or auto (fp64 for stablemax as "
       "published, fp32 otherwise); softmax collapse (a training loss of exactly 0) depends on it",
       choices=("auto", "fp32", "fp64")),
)
_RULE = (
    _F("optimizer", "adamw", "base optimizer: adamw, adam, sgd, or muon (Muon for the hidden matrices, AdamW for the "
       "rest; see groklab.rules.RULES)", choices=RULES.names),
    _F("lr", 1e-3, "peak learning rate", gt=0.0),
    _F("weight_decay", 1.0, "weight decay (decoupled for adamw, L2 for adam and sgd)", min=0.0),
    _F("decay_to_init", False, "decay the weights towards their initialization, not zero", switch="weight_decay"),
)
_WARMUP = (_F("warmup_steps", 10, "linear learning-rate warm-up, in updates", min=0),)
_TAIL = (
    _F("label_noise", 0.0, "fraction of training examples whose answer is replaced by a uniformly drawn wrong one, "
       "fixed per seed (validation stays clean), in [0, 1)", min=0.0, lt=1.0),
    _F("l2", 0.0, "L2 penalty in the loss, l2 * ||w||^2 / 2 over all weights (not decoupled: Adam's moments see it); "
       "0: off", min=0.0),
    _F("batch_size", "auto", "minibatch: 'auto' = min(512, n_train/2), 'full', or a number", words=("auto", "full"),
       min=1),
    _F("steps", 100_000, "budget of updates", min=1),
    _F("early_stop", True, "stop once validation accuracy has held >= 0.99 for stop_patience updates"),
    _F("stop_patience", 500, "updates validation accuracy must hold >= 0.99 before stopping", min=0),
    _F("eval_every", 10, "evaluation interval up to step 1,000; later a tenth of the current power of ten "
       "(every 100 from 1,000, every 1,000 from 10,000: 90 per decade)", min=1),
    _F("checkpoint_every", 1000, "updates between checkpoints", min=1),
    _F("snapshots", 0, "keep the parameters at about this many log-spaced steps over the budget (and at the end) in "
       "RUN/snapshots/, for measures over time (groklab analyze); 0: none", min=0),
    _F("logger", "none", "also log the metrics to: tensorboard (RUN/tensorboard/), wandb (offline unless WANDB_MODE "
       "says otherwise), several joined by + (tensorboard+wandb), or none; see groklab.loggers"),
    _F("device", "auto", "device", choices=("auto", "cpu", "cuda")),
    _F("precision", "fp32", "matmul precision: fp32; bf16 autocast (CUDA, or CPUs with bf16 matmul: AVX512-BF16/AMX; "
       "far slower on others) or tf32 (CUDA): not bitwise the same", choices=("fp32", "bf16", "tf32")),
    _F("compile", False, "compile the training step with torch.compile: for CUDA; no gain measured on the CPU, and "
       "compiling takes tens of seconds"),
)
# the order settings are listed in (flags, config.json): RunConfig's own, each registry's after what chooses it
_LAYOUT = (_HEAD, TASKS, _MODEL, MODELS, _LOSS, LOSSES, _RULE, RULES, _WARMUP, INTERVENTIONS, _TAIL)
CORE: tuple[Field, ...] = (*_HEAD, *_MODEL, *_LOSS, *_RULE, *_WARMUP, *_TAIL)
SELECTED = (TASKS, MODELS, LOSSES, RULES)  # registries whose entry a run chooses by a field (its selector)
registry.reserve("run", CORE, "RunConfig")

NOT_IDENTITY = {"device", "checkpoint_every", "snapshots", "logger"}  # where and what a run writes, not what it computes
# the RunConfig fields of groklab 0.1, whose hash counted every field; never extend this list
HASHED_SINCE_0_1 = frozenset((
    "task", "modulus", "train_fraction", "seed", "n_layers", "d_model", "n_heads", "d_mlp", "act", "norm",
    "dropout", "init_scale", "optimizer", "lr", "weight_decay", "decay_to_init", "beta1", "beta2", "eps",
    "momentum", "warmup_steps", "grokfast_lamb", "grokfast_alpha", "batch_size", "steps", "early_stop",
    "stop_patience", "eval_every", "precision", "compile"))

_CACHE: dict[str, Any] = {"version": None, "fields": {}}


def fields() -> dict[str, Field]:
    """Every setting a run has, by name, in the order they are listed: RunConfig's own and every registry entry's
    (plugins' included), recomputed when a registry changes."""
    if _CACHE["version"] != registry.VERSION[0]:
        out: dict[str, Field] = {}
        for part in _LAYOUT:
            for f in (part.fields().values() if hasattr(part, "fields") else part):
                out.setdefault(f.name, f)
        _CACHE.update(version=registry.VERSION[0], fields=out)
    return _CACHE["fields"]


class _Fields(Mapping):
    """``FIELDS``: ``fields()`` as a mapping that stays current (``FIELDS["lr"].default``)."""

    def __getitem__(self, name: str) -> Field:
        return fields()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(fields())

    def __len__(self) -> int:
        return len(fields())


FIELDS: Mapping[str, Field] = _Fields()


class RunConfig:
    """One run. Defaults are the paper's setup (appendix A.1.2) on division mod 97, 50% of the data.

    Immutable; every setting is an attribute (``cfg.lr``, ``cfg.n_heads``; ``fields()`` lists them). Built from
    keywords, ``from_dict``, ``from_toml``; unknown keys are refused with a did-you-mean.
    """

    __slots__ = ("_values",)

    def __init__(self, **values: Any):
        check_keys(values, "config")
        table = fields()
        resolved = {name: values[name] if name in values else f.default for name, f in table.items()}
        object.__setattr__(self, "_values", resolved)
        _validate(self)
        task = get_task(self.task)
        if task.canonical is not None:  # one spelling per formula: the run identity does not depend on spaces
            resolved.update(task.canonical(self.task_params))

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        table = fields()
        if name in table:  # a setting registered after this config was made: its default
            return table[name].default
        raise AttributeError(f"RunConfig has no setting {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}: a RunConfig is immutable "
                                              "(cfg.replace(...) makes a changed copy)")

    __delattr__ = __setattr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunConfig) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.to_dict().items())))

    def __repr__(self) -> str:
        table = fields()
        changed = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if v != table[k].default)
        return f"RunConfig({changed})"

    def __dir__(self) -> list[str]:
        return sorted({*object.__dir__(self), *fields()})

    def __reduce__(self):
        return (_rebuild, (self.to_dict(),))

    # -- derived ---------------------------------------------------------
    @property
    def table_size(self) -> int:
        """The number of equations in the run's table."""
        return n_examples(self.task, self.modulus, **self.task_params)

    @property
    def task_params(self) -> dict:
        """The settings besides the modulus the task's table depends on (``tasks.Task.params``)."""
        return {f: getattr(self, f) for f in get_task(self.task).params}

    @property
    def n_train(self) -> int:
        """Training examples of this run's split of its task's table."""
        return split_sizes(self.table_size, self.train_fraction)[0]

    @property
    def resolved_batch_size(self) -> int:
        """The batch size in examples: ``auto`` is min(512, n_train / 2), ``full`` the whole training set."""
        n = self.n_train
        if self.batch_size == "full":
            return n
        if self.batch_size == "auto":
            return max(1, min(512, n // 2))
        return min(int(self.batch_size), n)

    # -- conversion ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every setting, in ``fields()`` order."""
        return {name: getattr(self, name) for name in fields()}

    def replace(self, **changes) -> "RunConfig":
        """This config with ``changes``; a field the changes make meaningless (``inapplicable``: the Grokfast-MA
        window once its amplification is 0) goes back to its default."""
        kept = self.to_dict()
        return RunConfig.from_dict({**kept, **changes}, loose=set(kept) - set(changes))

    @classmethod
    def from_dict(cls, data: dict[str, Any], preset: str | None = None, loose: Collection[str] = (),
                  given: Collection[str] = ()) -> "RunConfig":
        """Build from a mapping (over a preset's values when given); unknown keys are refused. A field that means
        nothing for the run (``inapplicable``: ``n_heads`` of an MLP, ``muon_lr`` without Muon) is refused when
        ``data`` gives it, and left at its default when the preset or a key of ``loose`` does (a preset, or a
        sweep's base, is a starting point for runs it does not fully describe), so no config stores it."""
        values = load_preset(preset) if preset else {}
        check_keys(data, "config")
        loose = {*(k for k in values if k not in data), *loose}
        values.update(data)
        for name, why in inapplicable(values, given).items():
            if name in loose:
                values.pop(name)
            elif name in given:  # a flag typed at its default value means something to its user: refused too
                raise ConfigError(f"{name} {values[name]!r} {why}")
        return cls(**values)

    @classmethod
    def from_toml(cls, path: str | Path, preset: str | None = None) -> "RunConfig":
        """A config from a TOML file of fields (over ``preset``'s), validated."""
        return cls.from_dict(read_toml(path), preset=preset)

    def to_toml(self) -> str:
        """Every field as TOML, one ``name = value`` line each (a config file ``from_toml`` reads back)."""
        return "".join(f"{k} = {json.dumps(v)}\n" for k, v in self.to_dict().items())

    def hash(self) -> str:
        """Identity of a run: everything that changes its results (not the device or checkpoint rate).

        Stable as fields are added: the fields of groklab 0.1 always count, a field added later (a plugin's
        included) only when it differs from its default, so every run made before keeps its hash (its store row
        and run directory name).
        """
        table = fields()
        d = {k: v for k, v in self.to_dict().items()
             if k not in NOT_IDENTITY and (k in HASHED_SINCE_0_1 or v != table[k].default)}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _rebuild(values: dict) -> RunConfig:
    return RunConfig.from_dict(values)


def parse_value(name: str, text: str, where: str | None = None) -> Any:
    """The value of setting ``name`` written as text (a command-line flag, a sweep axis, ``--where``), read as its
    type (``Field.parse``); the range is checked when the RunConfig is built. ``where`` names the source in the
    error (default: the field)."""
    check_keys({name: None}, "config")
    return fields()[name].parse(text, where)


def check_keys(data: Mapping, where: str) -> None:
    """Refuse in one line, with a did-you-mean, a key of ``data`` that is no RunConfig field (``where`` names the
    source)."""
    table = fields()
    for key in data:
        if key not in table:
            close = difflib.get_close_matches(str(key), table, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown {where} key {key!r}{hint}; allowed: {', '.join(table)}")


def inapplicable(values: Mapping[str, Any], given: Collection[str] = ()) -> dict[str, str]:
    """The fields of a config (a mapping of fields over the defaults) set away from their default (or named in
    ``given``: flags a user typed, at their default too) where they mean nothing for the run, each with why: a
    task's, a model's, a loss's or an update rule's setting where the run chose another (its registry says whose
    it is), the modulus of a task whose table is not residues mod p, a switched setting with its switch off
    (``Field.switch``). Such a field is never stored: it would change the run's identity and nothing else."""
    table = fields()
    get = lambda k: values.get(k, table[k].default)  # noqa: E731
    out: dict[str, str] = {}

    def set_(k):
        return k in values and (values[k] != table[k].default or k in given)

    task = TASKS.get(get("task"))
    if set_("modulus") and task is not None and not task.modular:
        out["modulus"] = (f"does not apply to task {task.name!r}: its table is not residues mod p (set by "
                          + (f"{', '.join('--' + f.name.replace('_', '-') for f in task.fields)})" if task.fields
                             else "the task itself)"))

    for reg in SELECTED:
        chosen = get(reg.selector)
        if chosen not in reg:
            continue
        for name, owners in reg.owners().items():
            if set_(name) and chosen not in owners:
                out[name] = (f"does not apply to {reg.selector} {chosen!r}; only to {reg.selector} "
                             f"{', '.join(owners)}")
    for name, f in table.items():
        if f.switch and set_(name) and table[f.switch].off(get(f.switch)):
            out[name] = f"does nothing while {f.switch} is {get(f.switch)!r}"
    return out


def _validate(cfg: RunConfig) -> None:
    for name, f in fields().items():
        f.check(getattr(cfg, name))
    loggers.parse(cfg.logger)
    for name, why in inapplicable(cfg.to_dict()).items():  # settings only where they mean something: none saved unread
        raise ConfigError(f"{name} {getattr(cfg, name)!r} {why}")
    check_task(cfg.task, cfg.modulus, **cfg.task_params)  # its table's size first: nothing built that cannot fit
    MODELS[cfg.model].check(cfg)
    split_sizes(cfg.table_size, cfg.train_fraction)
    model = MODELS[cfg.model]
    model.check_fits(cfg, model.config(cfg, shape_of(cfg)))


# -- files and presets ---------------------------------------------------------


def read_toml(path: str | Path, kind: str = "config file") -> dict[str, Any]:
    """A TOML file's tables; ``kind`` names the file in the errors (``sweep file``, ``tune file``). A name with no
    folder that is no file here but a bundled file's (``quick``) reads the bundled one (``groklab.bundled``)."""
    name = bundled.named(path)
    if name is not None:  # a bundled file by name (groklab sweep quick): what an installed wheel has
        return tomllib.loads(bundled.text(name))
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{kind} {str(path)!r} does not exist" + bundled.missing_hint(path)) from None
    except IsADirectoryError:
        raise ConfigError(f"{kind} {str(path)!r} is a directory") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{kind} {str(path)!r} is not valid TOML: {e}") from None


def preset_names() -> list[str]:
    """The presets that ship in ``groklab/presets`` (``--preset NAME``)."""
    return sorted(p.name[:-5] for p in resources.files("groklab.presets").iterdir() if p.name.endswith(".toml"))


def load_preset(name: str) -> dict[str, Any]:
    """A preset's fields as a dict; an unknown name is refused in one line listing the presets."""
    if name not in preset_names():
        raise ConfigError(f"unknown preset {name!r}; allowed: {', '.join(preset_names())}")
    text = resources.files("groklab.presets").joinpath(f"{name}.toml").read_text()
    data = tomllib.loads(text)
    check_keys(data, f"preset {name!r}")
    return data
