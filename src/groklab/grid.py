"""The sweep-file grammar: a base config and axes, expanded into validated run configs.

A sweep file is TOML::

    preset = "paper"                      # optional, as for `groklab train`
    [base]                                # RunConfig fields shared by every run
    task = "add"
    modulus = 23
    [axes]                                # the grid: every combination is one run
    task = ["add", "sub"]
    train_fraction = "0.3:0.9:0.1"        # start:stop:step, stop included
    seed = [0, 1, 2]
    [zip]                                 # optional: lists of one length that vary together (one more axis)
    d_model = [32, 64]
    d_mlp = [128, 256]

The same axes can be given on the command line (``--train-fraction 0.3:0.9:0.1 --seed 0,1,2``). Every config
is validated before anything is written. A comparison file (``groklab.compare``) is this grammar plus a
``[variants]`` table; a tune file (``groklab.tune``) this grammar's ``preset`` and ``[base]`` plus ``[search]``.

    >>> sweep = load_sweep(None, {"seed": parse_axis("seed", "0,1"), "task": ["add"]})
    >>> [c.seed for c in sweep.configs()]
    [0, 1]

Adding a key: a name in ``TABLES`` with its one-line description, read in ``load_sweep`` (refusals are
``ConfigError`` naming the file and the key) and used in ``Sweep.configs``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from .config import FIELDS, RunConfig, check_keys, inapplicable, parse_value, read_toml
from .errors import ConfigError

# the top-level keys of a sweep file, with what each holds
TABLES = {"preset": "the preset every run starts from", "base": "RunConfig fields shared by every run",
          "axes": "fields whose values are combined: every combination is a run",
          "zip": "fields whose lists of one length vary together, as one more axis"}


def expand_range(name: str, start, stop, step) -> list:
    """start:stop:step with the stop included; the step must be positive and fit a whole number of times."""
    if FIELDS[name].type not in ("int", "float"):
        raise ConfigError(f"axis {name}: a range needs a numeric field, {name} is {FIELDS[name].type}")
    if not step > 0:
        raise ConfigError(f"axis {name}: range {start}:{stop}:{step} has step {step}; the step must be > 0")
    if stop < start:
        raise ConfigError(f"axis {name}: range {start}:{stop}:{step} ends before it starts")
    n = (stop - start) / step
    if abs(n - round(n)) > 1e-6:
        raise ConfigError(f"axis {name}: range {start}:{stop}:{step} does not reach {stop} in whole steps of {step}")
    values = [start + i * step for i in range(int(round(n)) + 1)]
    return [int(v) for v in values] if FIELDS[name].type == "int" else [round(v, 10) for v in values]


def parse_axis(name: str, text: str) -> list:
    """A command-line axis: ``a,b,c`` or ``start:stop:step``."""
    check_keys({name: None}, "axis")
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise ConfigError(f"axis {name}: range {text!r} must be start:stop:step")
        return expand_range(name, *(parse_value(name, p, f"axis {name}:") for p in parts))
    values = [parse_value(name, v, f"axis {name}:") for v in text.split(",") if v.strip()]
    if not values:
        raise ConfigError(f"axis {name} is empty")
    return values


def axis_values(name: str, value) -> list:
    """An axis as a sweep file writes it: a list, a ``"start:stop:step"`` string, a ``{start, stop, step}``
    table, or one value."""
    if isinstance(value, str) and ":" in value:
        return parse_axis(name, value)
    if isinstance(value, dict):
        if set(value) != {"start", "stop", "step"}:
            raise ConfigError(f"axis {name}: a range table needs exactly start, stop, step (got {', '.join(value)})")
        return expand_range(name, value["start"], value["stop"], value["step"])
    if isinstance(value, list):
        if not value:
            raise ConfigError(f"axis {name} is empty")
        return value
    return [value]


@dataclass
class Sweep:
    """A base config, axes (every combination is a run) and optionally ``zipped``: fields whose lists have one
    length and vary together, as one more axis (``[zip] d_model = [32, 64], d_mlp = [128, 256]``: two sizes)."""

    base: dict
    axes: dict[str, list]
    preset: str | None = None
    zipped: dict[str, list] | None = None

    def configs(self) -> list[RunConfig]:
        """Every combination of the axes (and rows of the zipped fields) over the base, validated; duplicates
        removed. A field that means nothing for some combinations (``config.inapplicable``: ``n_heads`` where
        the model axis says mlp) is left out of those; one that means nothing for any is refused."""
        names = list(self.axes)
        rows = [dict(zip(self.zipped, vals)) for vals in zip(*self.zipped.values())] if self.zipped else [{}]
        out, seen, used, unused = [], set(), set(), {}
        for combo, row in itertools.product(itertools.product(*(self.axes[n] for n in names)), rows):
            values = {**self.base, **row, **dict(zip(names, combo))}
            left_out = inapplicable(values)
            used.update(k for k in values if k not in left_out)
            for k, why in left_out.items():
                unused.setdefault(k, f"sweep: none of its runs uses {k} {values[k]!r}: it {why}")
            cfg = RunConfig.from_dict(values, preset=self.preset, loose=left_out)
            if cfg.hash() not in seen:
                seen.add(cfg.hash())
                out.append(cfg)
        for k, message in unused.items():
            if k not in used:
                raise ConfigError(message)
        return out

    def with_base(self, overrides: dict) -> "Sweep":
        """The same grid over a base with ``overrides`` (a comparison's variant)."""
        return Sweep({**self.base, **overrides}, self.axes, self.preset, self.zipped)


def read_tables(path: str | Path, kind: str, allowed: dict[str, str], data: dict | None = None) -> dict:
    """A sweep-like file's top-level tables (``data``: already read), refusing a key not in ``allowed``."""
    data = read_toml(path, kind) if data is None else data
    unknown = set(data) - set(allowed)
    if unknown:
        raise ConfigError(f"{kind} {str(path)!r}: unknown key {sorted(unknown)[0]!r}; allowed: {', '.join(allowed)}")
    return data


def load_sweep(path: str | Path | None, overrides: dict[str, list] | None = None, data: dict | None = None) -> Sweep:
    """A sweep file (or, with ``data``, its tables already read; with neither, an empty base) with the axes of
    ``overrides`` (command-line axes) replacing the file's."""
    if data is None:
        data = read_tables(path, "sweep file", TABLES) if path else {}
    where = f"sweep file {str(path)!r}"
    base = data.get("base", {})
    raw_axes = data.get("axes", {})
    if not isinstance(base, dict) or not isinstance(raw_axes, dict):
        raise ConfigError(f"{where}: base and axes must be tables")
    check_keys(base, "sweep base")
    check_keys(raw_axes, "sweep axis")
    axes = {k: axis_values(k, v) for k, v in raw_axes.items()}
    axes.update(overrides or {})
    zipped = data.get("zip") or None
    if zipped is not None:
        if not isinstance(zipped, dict) or not all(isinstance(v, list) and v for v in zipped.values()):
            raise ConfigError(f"{where}: [zip] must hold non-empty lists, e.g. d_model = [32, 64]")
        check_keys(zipped, "sweep zip")
        lengths = {k: len(v) for k, v in zipped.items()}
        if len(set(lengths.values())) > 1:
            raise ConfigError(f"{where}: the [zip] lists must have one length; got "
                              + ", ".join(f"{k} {n}" for k, n in lengths.items()))
        both = set(zipped) & set(axes)
        if both:
            raise ConfigError(f"{where}: {sorted(both)[0]} is both an axis and in [zip]")
    return Sweep(base, axes, data.get("preset"), zipped)
