"""Registries: each kind of part a researcher adds (task, model, loss, update rule, intervention, analysis, store
figure, executor) is a ``Registry`` of entries, and each entry is one object that carries everything about itself:
its name and doc, its fields (``fields.Field``: defaults, help, bounds), where they apply, what it needs.

Entries come from three places and are alike once registered:

- groklab's own: on first use, every module of the kind's package (but ``spec`` and the helper modules the
  registry is told to skip) is imported and each entry object at its top level registered, so that adding one
  inside the package is one new file;
- plugins: installed packages name entries in entry points of the kind's group (``groklab.update_rules``, ...):
  an entry object, a list of them, a module holding them, or a function that registers them (the
  ``groklab.tasks`` group's older form). Loaded once per process, on first use; a plugin that fails to load, or
  whose entry clashes with one already there, is left out with one line on stderr naming it;
- Python: ``REGISTRY.register(entry)`` from a notebook or a script.

Fields are settings of a *namespace*: the run's (``RunConfig``: tasks, models, losses, update rules,
interventions and the config's own), ``analysis`` (``groklab analyze`` options) and ``executor`` (sweep
options). A name means one setting in its namespace: entries of one kind may share a field (the Adam family's
``beta1``) if they agree on its type and default; another kind, or RunConfig itself, may not reuse it.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Generic, TypeVar

from .errors import ConfigError
from .fields import Field, merge

E = TypeVar("E")

# every change to a registry bumps this: what is computed from the registries (RunConfig's fields) is recomputed
VERSION = [0]
# namespace -> field name -> who owns it ("RunConfig", "update rule adamw, adam"): a name means one setting
_OWNED: dict[str, dict[str, str]] = {}
_ENTRY_POINTS = None


def reserve(namespace: str, fields, owner: str) -> None:
    """Claim field names for ``owner`` in ``namespace`` (RunConfig's own fields), so no entry takes them."""
    for f in fields:
        _OWNED.setdefault(namespace, {})[f.name] = owner
    VERSION[0] += 1


def _entry_points(group: str):
    """The installed packages' entry points of ``group`` (every package's metadata read once per process)."""
    global _ENTRY_POINTS
    if _ENTRY_POINTS is None:
        from importlib.metadata import entry_points

        _ENTRY_POINTS = entry_points()
    return list(_ENTRY_POINTS.select(group=group))


def refuse(message: str) -> None:
    """A plugin left out: one line on stderr."""
    print(f"groklab: {message}", file=sys.stderr)


class Registry(Generic[E]):
    """The entries of one kind, by name, in the order they came.

    ``kind`` names the kind in messages (``update rule``); ``entry_type`` is the class of its entries (each has
    ``name``, ``doc`` and ``fields``); ``package`` holds groklab's own entries; ``group`` is the plugins' entry
    point group; ``selector`` the RunConfig field that chooses an entry for a run (``optimizer``), whose choices
    these are; ``namespace`` where the entries' fields are settings; ``first``: modules of ``package`` imported
    before the others (the order entries are listed in); ``skip``: its modules that hold no entries.
    """

    def __init__(self, kind: str, entry_type: type, package: str, group: str, selector: str | None = None,
                 namespace: str = "run", first: tuple[str, ...] = (), skip: tuple[str, ...] = ()):
        self.kind, self.entry_type, self.package, self.group = kind, entry_type, package, group
        self.selector, self.namespace, self.first, self.skip = selector, namespace, first, ("spec", *skip)
        self._entries: dict[str, E] = {}
        self._builtin: set[str] = set()
        self._state = "new"  # new -> loading -> loaded

    # -- loading ---------------------------------------------------------------------------------------------
    def load(self) -> None:
        """Register groklab's own entries, then the plugins' (once)."""
        if self._state != "new":
            return
        self._state = "loading"
        try:
            package = importlib.import_module(self.package)
            names = [m.name for m in pkgutil.iter_modules(package.__path__)
                     if m.name not in self.skip and not m.name.startswith("_")]
            for name in [n for n in self.first if n in names] + sorted(n for n in names if n not in self.first):
                self.take(importlib.import_module(f"{self.package}.{name}"))
            self._builtin = set(self._entries)
            for ep in _entry_points(self.group):
                where = f"plugin {ep.name!r} ({ep.value}) of group {self.group}"
                try:
                    if not self.take(ep.load()):
                        refuse(f"{where} left out: it names no {self.kind}, list, module or function")
                except Exception as e:  # noqa: BLE001 - a broken plugin must not break groklab
                    refuse(f"{where} left out: {type(e).__name__}: {e}".rstrip())
        finally:
            self._state = "loaded"

    def take(self, obj: Any) -> bool:
        """Register what ``obj`` holds: an entry, a list or tuple of entries, a module's top-level entries, or (a
        function) whatever it registers when called. False when it is none of these."""
        if isinstance(obj, self.entry_type):
            if self._entries.get(obj.name) is not obj:  # a module may import another's entry: registered once
                self.register(obj)
            return True
        if isinstance(obj, (list, tuple)) and obj and all(isinstance(o, self.entry_type) for o in obj):
            return all(self.take(o) for o in obj)
        if isinstance(obj, ModuleType):
            for value in list(vars(obj).values()):
                if isinstance(value, self.entry_type):
                    self.take(value)
            return True
        if callable(obj):
            obj()
            return True
        return False

    # -- changing --------------------------------------------------------------------------------------------
    def register(self, entry: E, replace: bool = False) -> E:
        """Add ``entry``; ``replace`` lets it take the place of an entry of the same name (not a built-in one).
        Refused (ConfigError) when the name is taken or one of its fields means another setting."""
        if self._state == "new":
            self.load()
        name = entry.name
        if not isinstance(name, str) or not name.replace("-", "_").isidentifier():
            raise ConfigError(f"{self.kind} name {name!r} is not allowed; use letters, digits and _")
        if name in self._entries and (not replace or name in self._builtin):
            raise ConfigError(f"{self.kind} {name!r} exists already"
                              + ("" if name in self._builtin else "; replace=True to replace it"))
        fields = tuple(getattr(entry, "fields", ()))
        owned = _OWNED.setdefault(self.namespace, {})
        for f in fields:
            owner = owned.get(f.name)
            if owner is not None and owner != self.kind:
                raise ConfigError(f"{self.kind} {name!r}: field {f.name} is a setting of {owner} already")
        others = [e for n, e in self._entries.items() if n != name]
        merge([f for e in others for f in getattr(e, "fields", ())] + list(fields), f"{self.kind} {name!r}")
        self._entries[name] = entry
        for f in fields:
            owned[f.name] = self.kind
        VERSION[0] += 1
        return entry

    def unregister(self, name: str) -> None:
        """Remove an entry added from Python or a plugin (the tests' own, say); groklab's own stay."""
        if name in self._builtin:
            raise ConfigError(f"{self.kind} {name!r} is groklab's own; it cannot be removed")
        entry = self._entries.pop(name)
        still = {f.name for e in self._entries.values() for f in getattr(e, "fields", ())}
        owned = _OWNED.get(self.namespace, {})
        for f in getattr(entry, "fields", ()):
            if f.name not in still and owned.get(f.name) == self.kind:
                del owned[f.name]
        VERSION[0] += 1

    # -- reading ---------------------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> E:
        self.load()
        if name not in self._entries:
            close = difflib.get_close_matches(str(name), list(self._entries), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{self.selector or self.kind} {name!r} is not allowed; allowed: "
                              f"{', '.join(self._entries)}{hint}")
        return self._entries[name]

    def get(self, name: str, default: Any = None) -> E | None:
        """The entry of that name, or ``default``."""
        self.load()
        return self._entries.get(name, default)

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self.load()
        return iter(list(self._entries))

    def __len__(self) -> int:
        self.load()
        return len(self._entries)

    def names(self) -> list[str]:
        """The names of every entry, groklab's and the plugins'."""
        return list(self)

    def values(self) -> list[E]:
        """Every entry."""
        self.load()
        return list(self._entries.values())

    def items(self) -> list[tuple[str, E]]:
        """Every (name, entry) pair."""
        self.load()
        return list(self._entries.items())

    def fields(self) -> dict[str, Field]:
        """Every field of every entry, by name (the first declaration of a shared one), in entry order."""
        return merge([f for e in self.values() for f in getattr(e, "fields", ())], self.kind)

    def owners(self) -> dict[str, tuple[str, ...]]:
        """Field name -> the entries that declare it (the ones it applies to)."""
        out: dict[str, tuple[str, ...]] = {}
        for e in self.values():
            for f in getattr(e, "fields", ()):
                out[f.name] = out.get(f.name, ()) + (e.name,)
        return out

    def __repr__(self) -> str:
        return f"<{self.kind} registry: {', '.join(self._entries) if self._state == 'loaded' else '(not loaded)'}>"
