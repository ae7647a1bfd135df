"""Executors by name (``EXECUTORS``): what trains a sweep's groups of runs, and where (``groklab sweep --executor
NAME``).

- ``local``: in this process (one worker, or one group), else a pool of worker processes (``executors.local``);
- ``ray``: Ray tasks on a cluster, or a Ray started here (``executors.ray``).

An executor is an ``Executor`` (``executors.spec``) in a module of this package or of a plugin package (entry
points of group ``groklab.executors``); its fields become flags of ``groklab sweep`` and ``groklab compare``.
"""

from __future__ import annotations

from ..registry import Registry
from .spec import Executor, Work

EXECUTORS: Registry[Executor] = Registry("executor", Executor, __name__, "groklab.executors", namespace="executor",
                                         first=("local", "ray"))

__all__ = ["EXECUTORS", "Executor", "Work", "get_executor"]


def get_executor(name: str) -> Executor:
    """The registered executor of that name; an unknown name is refused in one line."""
    return EXECUTORS[name]
