"""Questions asked of a store's rows (``Store.runs()``): their configs, which settings differ between them, the
rows of each setting, the rows matching ``field=value``, a legend label per row.

The figures (``plots``), ``groklab runs`` and the report ask them here, so that they agree on what "the same
setting" means: every RunConfig field but the seed (replicates) and what only says where and what a run writes.

    >>> rows = [{"config": {"lr": 1e-3, "seed": 0}}, {"config": {"lr": 3e-3, "seed": 1}}]
    >>> varying(rows)
    ['lr']
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from .config import FIELDS, NOT_IDENTITY, parse_value
from .errors import ConfigError
from .models import MODELS
from .tasks import TASKS, defining_fields, task_label


def arch_fields() -> tuple[str, ...]:
    """A model's size: ``model`` and the architecture fields of every registered model (model-wise puts them on
    one axis)."""
    return ("model", *sorted(MODELS.fields()))


def config_of(r: Mapping) -> dict:
    """A store row's config (its ``config`` JSON; a dict is taken as it is)."""
    c = r.get("config")
    return json.loads(c) if isinstance(c, str) else dict(c or {})


def varying(runs: Sequence[Mapping], exclude: Sequence[str] = ()) -> list[str]:
    """The RunConfig fields (settings) whose values differ between store rows: not the seed (replicates), not what
    only says where and what a run writes (device, checkpoints, snapshots, logger), nor ``exclude``."""
    configs = [config_of(r) for r in runs]
    skip = {"seed", *NOT_IDENTITY, *exclude}
    keys = sorted({k for c in configs for k in c if k in FIELDS} - skip)
    return [k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1]


def fmt_value(v) -> str:
    """A setting's value as legends and tables print it (floats in %g)."""
    return f"{v:g}" if isinstance(v, float) else str(v)


def task_words(r: Mapping) -> str:
    """A row's task as legends name it: its id, or for a task defined by its options its equation with them
    filled in (``x . y in D6``, ``x^2 * y mod 23``, ``parity of 3 of 40 bits``)."""
    c = {"task": r.get("task"), **config_of(r)}
    task = TASKS.get(c.get("task"))
    if task is None or task.describe is None:
        return str(c.get("task", ""))
    try:
        return task_label(c)
    except ConfigError:
        return str(c.get("task"))


def modulus_of(r: Mapping):
    """A row's modulus where its task's table is residues mod p; None for a group, parity, digits."""
    task = TASKS.get(r.get("task"))
    return r.get("modulus", config_of(r).get("modulus")) if task is not None and task.modular else None


def setting_label(r: Mapping, fields: Sequence[str]) -> str:
    """A row's setting: its task (``task_words``) and each of ``fields`` that means something for it as
    ``name=value`` (not a field its task label already says, nor another task's option: no ``group=`` beside
    ``add``, no ``modulus=97`` beside a group)."""
    return ", ".join([task_words(r)] + _meant(r, fields))


def _meant(r: Mapping, fields: Sequence[str]) -> list[str]:
    """``name=value`` of each of ``fields`` that means something for row ``r`` beside its task's words."""
    c = config_of(r)
    name = r.get("task", c.get("task"))
    said, meaningless = defining_fields(name) if name in TASKS else (frozenset(), frozenset())
    return [f"{k}={fmt_value(c.get(k))}" for k in fields if k != "task" and k not in said and k not in meaningless]


def by_setting(runs: Sequence[Mapping], exclude: Sequence[str] = ()) -> dict[str, list[Mapping]]:
    """Store rows grouped by every setting that varies between them (``varying``): label -> rows; the label is
    ``task`` and each varying field's ``name=value`` (task alone when only seeds and ``exclude`` differ), so a
    figure never pools, say, weight decay 0 and 1 as if they were seeds."""
    fields = varying(runs, exclude)
    out: dict[str, list[Mapping]] = {}
    for r in runs:
        out.setdefault(setting_label(r, fields), []).append(r)
    return out


def _matches(value, wanted) -> bool:
    """A config value equals a parsed ``--where`` value (numbers as numbers: 1 == 1.0)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(wanted, (int, float)) \
            and not isinstance(wanted, bool):
        return float(value) == float(wanted)
    return value == wanted


def where(runs: Sequence[Mapping], conditions: Sequence[str]) -> list[Mapping]:
    """The rows whose config matches every ``field=value`` (``plot --where``); the value is read as the field's
    type (``config.parse_value``), and numbers compare as numbers."""
    out = list(runs)
    for cond in conditions:
        name, eq, text = cond.partition("=")
        name = name.strip().replace("-", "_")
        if not eq or name not in FIELDS:
            raise ConfigError(f"--where {cond!r} is not allowed; give field=value with a config field, "
                              "e.g. --where weight_decay=1")
        wanted = parse_value(name, text, f"--where {name}:")
        out = [r for r in out if _matches(config_of(r).get(name, FIELDS[name].default), wanted)]
    return out


def run_labels(runs: Sequence[Mapping]) -> list[str]:
    """A legend label per store row: its id, task (``task_words``), fraction and seed, and every other setting
    whose value differs between the rows (``varying``: the swept axis, e.g. ``init_scale=8``) where it means
    something for the row's task."""
    fields = varying(runs, exclude=("task", "train_fraction"))
    return [" ".join([f"#{r['id']} {task_words(r)} f={r['train_fraction']:g} s={r['seed']}"] + _meant(r, fields))
            for r in runs]
