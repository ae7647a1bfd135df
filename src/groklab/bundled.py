"""The sweep, comparison and tune files that ship inside the package (``src/groklab/sweeps``).

Every command that takes such a file takes a bundled one by its name, with or without ``.toml``, wherever no
file of that name exists in the working directory: ``groklab sweep quick``, ``groklab compare
interventions_quick``, ``groklab tune tune_quick``. An installed wheel has no checkout's ``sweeps/`` folder, so
this is how its user reaches them; ``groklab sweeps`` lists them with their kind, runs and budget.

A file's kind follows from its tables: ``[variants]`` makes a comparison, ``[search]`` a tune file, anything
else a sweep. Its description is its leading comment, up to the first line that shows a command.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

PACKAGE = "groklab.sweeps"
KINDS = {"sweep": "groklab sweep", "compare": "groklab compare", "tune": "groklab tune"}


def names() -> list[str]:
    """The bundled files' names (file names without ``.toml``), sorted."""
    return sorted(p.name[:-5] for p in resources.files(PACKAGE).iterdir() if p.name.endswith(".toml"))


def named(path: str | Path) -> str | None:
    """The bundled file ``path`` names (``quick`` or ``quick.toml``, no folder), or None: a path that exists
    here is the user's own file, never a bundled one."""
    text = str(path)
    if Path(text).exists() or "/" in text or "\\" in text:
        return None
    name = text[:-5] if text.endswith(".toml") else text
    return name if name in names() else None


def text(name: str) -> str:
    """The text of the bundled file of that name."""
    return resources.files(PACKAGE).joinpath(f"{name}.toml").read_text()


def kind_of(data: dict) -> str:
    """``sweep``, ``compare`` or ``tune``: the command that reads a file with these tables."""
    return "compare" if "variants" in data else "tune" if "search" in data else "sweep"


@dataclass
class Bundled:
    """A bundled file: its name, kind (sweep, comparison, tune), description and runs."""
    name: str
    kind: str  # sweep, compare or tune
    description: str  # the file's leading comment, as one paragraph

    @property
    def command(self) -> str:
        """The command that runs it (``groklab sweep quick``)."""
        return f"{KINDS[self.kind]} {self.name}"


def describe(name: str) -> Bundled:
    """The bundled file of that name, read and counted."""
    body = text(name)
    words = []
    for line in body.splitlines():
        if not line.startswith("#"):
            break
        line = line.lstrip("#").strip()
        if line.startswith(("groklab ", "python ")):
            break
        words.append(line)
    return Bundled(name, kind_of(tomllib.loads(body)), " ".join(w for w in words if w))


def missing_hint(path: str | Path) -> str:
    """What a user who gave a file that does not exist may have meant: the bundled files, named without a
    folder (``sweeps/quick.toml`` from a checkout's README is ``quick`` in an installed package)."""
    stem = Path(str(path)).name
    stem = stem[:-5] if stem.endswith(".toml") else stem
    if stem in names():
        return f"; the bundled file of that name is {stem!r} (no folder): groklab sweeps lists them"
    return f"; bundled files (by name, no folder): {', '.join(names())}"
