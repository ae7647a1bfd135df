"""Heavy libraries imported when first used, so that ``import groklab`` and the command line start at once.

PyTorch takes over a second to import; ``groklab --help``, ``groklab tasks``, ``groklab runs`` and a refused
flag need none of it. A module that uses torch writes ``torch = lazy("torch")`` where it would write ``import
torch``: the name is a stand-in until its first use (``torch.cat``), which imports torch and puts the module
itself in the stand-in's place, so that later uses are plain module attributes (no cost, and ``torch.compile``
traces a plain module). ``load("torch")`` does that for every stand-in of torch at once: a training calls it
before its first step. Nothing is put in ``sys.modules`` before the real import (libraries that look there for torch, such as
matplotlib, see none).

    >>> json_ = lazy("json")
    >>> json_.dumps([1])
    '[1]'
"""

from __future__ import annotations

import importlib
import sys

_WAITING: list["Lazy"] = []


class Lazy:
    """The stand-in for a module not imported yet, bound to a name in a module's namespace."""

    __slots__ = ("_name", "_namespace")

    def __init__(self, name: str, namespace: dict):
        self._name, self._namespace = name, namespace

    def _load(self):
        module = importlib.import_module(self._name)
        for key, value in list(self._namespace.items()):
            if value is self:  # the module takes the stand-in's place in its namespace
                self._namespace[key] = module
        return module

    def __getattr__(self, attr: str):
        return getattr(self._load(), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}, not imported yet>"


def lazy(name: str) -> Lazy:
    """A stand-in for module ``name`` in the calling module: ``torch = lazy("torch")``."""
    stand_in = Lazy(name, sys._getframe(1).f_globals)
    _WAITING.append(stand_in)
    return stand_in


def load(name: str) -> None:
    """Import module ``name`` and put it in the place of every stand-in for it (idempotent)."""
    for stand_in in [s for s in _WAITING if s._name == name]:
        _WAITING.remove(stand_in)
        stand_in._load()


def loaded(name: str) -> bool:
    """Whether module ``name`` has been imported (for the tests and benchmarks that keep the start-up light)."""
    return name in sys.modules
