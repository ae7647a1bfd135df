"""The ``groklab`` command: parse, call the library, print. A user's mistake is one line on stderr, exit 2.

One module per group of commands: ``run`` (train, export), ``sweeps`` (sweep, compare, tune), ``stores`` (runs,
plot, report), ``analyze``, ``tasks``; ``app`` holds the application, its error handling and the options they
share (flags made from the registries' settings, the sweep options).
"""

from __future__ import annotations

from . import analyze, run, stores, sweeps, tasks  # noqa: F401, I001 - each registers its commands, in this order
from .app import app, main

__all__ = ["app", "main"]
