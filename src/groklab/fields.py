"""A setting: ``Field`` is one named value with its default, its one-line help and the values it allows.

Every setting in groklab is a Field: RunConfig's own (``config.CORE``) and those each registry entry brings
with it (a task's formula, an update rule's betas, a model's width, an intervention's strength, an analysis's
option, an executor's cluster address). The command line makes one flag of each, TOML and sweep files name
them, ``Field.parse`` reads one from text and ``Field.check`` refuses a bad value in one line that names it and
says what is allowed.

    >>> f = Field("dropout", 0.0, "residual dropout probability", min=0.0, lt=1.0)
    >>> f.parse("0.25")
    0.25
    >>> f.check(1.0)
    Traceback (most recent call last):
    ...
    groklab.errors.ConfigError: dropout 1.0 is outside [0, 1)
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

TYPES = ("int", "float", "bool", "str", "int | str")
_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "text"}


def _type_of(default: Any, words: tuple[str, ...]) -> str:
    if words:
        return "int | str"
    for typ, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str")):
        if isinstance(default, typ):
            return name
    raise TypeError(f"a field's default must be an int, a float, a bool or a str, not {default!r}")


@dataclass(frozen=True)
class Field:
    """One setting.

    - ``choices``: the allowed values, or a function returning them (a registry's names, looked up when asked);
    - ``min`` (>=), ``gt`` (>), ``lt`` (<; with ``min`` the range ``[min, lt)``): a number's bounds;
    - ``switch``: another field that turns this one on: while it is off (0 or False) this field means nothing
      and is refused when set (``grokfast_alpha`` beside ``grokfast_lamb``);
    - ``words``: named values of an integer field (``batch_size``: ``auto``, ``full``, or a number);
    - ``aliases``: older spellings of its flag, still accepted.
    """

    name: str
    default: Any
    doc: str
    choices: tuple[str, ...] | Callable[[], Iterable[str]] | None = None
    min: float | None = None
    gt: float | None = None
    lt: float | None = None
    switch: str | None = None
    words: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    type: str = field(default="", compare=True)

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ConfigError(f"field name {self.name!r} is not allowed; use letters, digits and _")
        if not self.type:
            object.__setattr__(self, "type", _type_of(self.default, self.words))
        if self.type not in TYPES:
            raise ConfigError(f"field {self.name}: type {self.type!r} is not one of {', '.join(TYPES)}")

    @property
    def flag(self) -> str:
        """The command-line flag: ``--grokfast-lamb``."""
        return "--" + self.name.replace("_", "-")

    def allowed(self) -> tuple[str, ...] | None:
        """The allowed values now (a registry's names include the plugins loaded), or None for any."""
        if self.choices is None:
            return None
        return tuple(self.choices() if callable(self.choices) else self.choices)

    # -- reading and checking --------------------------------------------------------------------------------
    def parse(self, text: str, where: str | None = None) -> Any:
        """The value written as ``text`` (a flag, a sweep axis, ``--where``), read as this field's type: an int,
        a number, ``true`` / ``false``, one of the words or an int, else the text itself. The range is checked by
        ``check``. ``where`` names the source in the error (default: the field's name)."""
        text = str(text).strip()
        try:
            if self.type == "int":
                return int(text)
            if self.type == "float":
                return float(text)
            if self.type == "bool":
                if text.lower() not in ("true", "false"):
                    raise ValueError
                return text.lower() == "true"
            if self.type == "int | str":
                return text if text in self.words else int(text)
        except ValueError:
            raise ConfigError(f"{where or self.name} {text!r} is not allowed; use {self._what()}") from None
        return text

    def _what(self) -> str:
        if self.type == "int | str":
            least = self.min if self.min is not None else 1
            return ", ".join(repr(w) for w in self.words) + f" or an integer >= {least}"
        return _WORDS[self.type]

    def check(self, value: Any) -> None:
        """Refuse a value of the wrong type or outside what the field allows (ConfigError, one line)."""
        name = self.name
        if self.type == "int | str":
            if not (value in self.words or (_is_int(value) and value >= (self.min if self.min is not None else 1))):
                raise ConfigError(f"{name} {value!r} is not allowed; use {self._what()}")
            return
        if not _type_ok(value, self.type):
            raise ConfigError(f"{name} {value!r} has the wrong type; expected {self.type}")
        if self.type == "float" and not math.isfinite(value):
            raise ConfigError(f"{name} {value!r} is not a finite number")
        allowed = self.allowed()
        if allowed is not None and value not in allowed:
            close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{name} {value!r} is not allowed; allowed: {', '.join(map(str, allowed))}{hint}")
        if self.lt is not None:
            low = self.min if self.min is not None else -math.inf
            if not low <= value < self.lt:
                raise ConfigError(f"{name} {value!r} is outside [{low:g}, {self.lt:g})")
        elif self.min is not None and value < self.min:
            raise ConfigError(f"{name} {value!r} is too small; must be >= {self.min}")
        if self.gt is not None and not value > self.gt:
            raise ConfigError(f"{name} {value!r} must be > {self.gt}")

    def off(self, value: Any) -> bool:
        """Whether ``value`` switches this field off (0, 0.0, False, ""): what a ``switch`` field means by off."""
        return not value

    def help(self) -> str:
        """The flag's help: the doc, the choices when few, the default."""
        doc = self.doc
        allowed = self.allowed()
        if allowed is not None and len(allowed) <= 6:
            doc += f" [{'|'.join(map(str, allowed))}]"
        return doc if self.type == "bool" or self.default == "" else f"{doc} (default {self.default})"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_ok(value, typ: str) -> bool:
    if typ == "int":
        return _is_int(value)
    if typ == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if typ == "bool":
        return isinstance(value, bool)
    return isinstance(value, str)


def merge(fields: Iterable[Field], where: str) -> dict[str, Field]:
    """Fields by name; a name given twice must mean the same setting (type and default), else ConfigError naming
    ``where``. The first declaration's doc is kept."""
    out: dict[str, Field] = {}
    for f in fields:
        first = out.get(f.name)
        if first is None:
            out[f.name] = f
        elif (first.type, first.default) != (f.type, f.default):
            raise ConfigError(f"{where}: field {f.name} is declared twice, as {first.type} {first.default!r} and "
                              f"as {f.type} {f.default!r}; a name means one setting")
    return out
