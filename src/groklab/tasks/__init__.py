"""The tasks: tables of equations ``x op y = z``, by name (``TASKS``), and what the rest of groklab asks of them.

Every algorithmic task is a table of equations ``x op y = z`` over a finite set of symbols (the residues mod p,
the 120 permutations of S5, a group's elements). The network sees abstract tokens only; loss and accuracy are on
the answer. One module per family, each holding its ``Task`` objects (``tasks.spec.Task``):

- ``modular``: the paper's ten operations mod p; ``s5``: its three on the permutations of five elements;
- ``custom``: a formula of the user's (``--expression``); ``group``: composition or conjugation in a small
  finite group (``--group``); ``parity``: k-sparse parity of random bit strings; ``digits``: Omnigrok's
  handwritten digits.

A new task is one more module here, or a plugin package's (entry points of group ``groklab.tasks``), or, for an
operation on residues, one call from anywhere: ``register("x2_minus_y", lambda x, y, p: (x * x - y) % p)``.
Functions here take a task's own fields as keywords (``make_table("group", group="S4")``).

    >>> x, y, z = make_table("add", 7)
    >>> int(z[(x == 3) & (y == 5)][0])
    1
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Callable

from .. import limits
from ..errors import ConfigError
from ..lazy import lazy
from ..registry import Registry
from .spec import Shape, Table, Task, is_prime, pairs

np = lazy("numpy")

TASKS: Registry[Task] = Registry("task", Task, __name__, "groklab.tasks", selector="task",
                                 first=("modular", "s5", "digits", "custom", "group", "parity"))

__all__ = ["TASKS", "Shape", "Table", "Task", "all_tasks", "check_modulus", "check_task", "equation_of", "get_task",
           "is_prime", "make_table", "n_examples", "n_symbols", "params_of", "register", "shape_of", "split_sizes",
           "symbol_name", "table_csv", "task_inputs", "task_label"]


def register(task_id: str, fn: Callable[[np.ndarray, np.ndarray, int], np.ndarray], equation: str | None = None,
             needs_prime: bool = False, y_nonzero: bool = False, replace: bool = False) -> Task:
    """Add a modular task: ``fn(x, y, p)`` maps int64 arrays of residues (every pair, vectorized) to answers mod
    p. ``task_id`` is then accepted everywhere a task is (``RunConfig``, the CLI, sweep files, the store).

        >>> register("x2_minus_y", lambda x, y, p: (x * x - y) % p, "x^2 - y mod p")   # doctest: +SKIP
    """
    if not isinstance(task_id, str) or not task_id.isidentifier():
        raise ConfigError(f"task id {task_id!r} is not allowed; use letters, digits and _")
    task = Task(task_id, equation or f"{task_id}(x, y) mod p", True, needs_prime, y_nonzero, fn)
    return TASKS.register(task, replace=replace)


def all_tasks() -> dict[str, Task]:
    """Every task: groklab's and those of installed plugins."""
    return dict(TASKS.items())


def get_task(task_id: str) -> Task:
    """The registered task of that id; an unknown id is refused in one line with a did-you-mean."""
    return TASKS[task_id]


def params_of(cfg) -> dict:
    """What a run's table depends on: its modulus and its task's params (``Task.params``), from a RunConfig or a
    mapping of its fields."""
    get = cfg.get if isinstance(cfg, dict) else lambda f: getattr(cfg, f)
    return {"modulus": get("modulus"), **{f: get(f) for f in get_task(get("task")).params}}


def _params(task: Task, modulus: int, params: dict) -> dict:
    """``params`` with the modulus and the defaults of the task's own fields it leaves out."""
    return {"modulus": modulus, **{f.name: f.default for f in task.fields if f.name not in params}, **params}


def shape_of(cfg) -> Shape:
    """A run's ``Shape``, from a RunConfig (or a mapping of its fields)."""
    get = cfg.get if isinstance(cfg, dict) else lambda f: getattr(cfg, f)
    params = {k: v for k, v in params_of(cfg).items() if k != "modulus"}
    task, modulus = get("task"), get("modulus")
    inputs = task_inputs(task, modulus, **params)
    return Shape(n_symbols(task, modulus, **params), 0 if inputs is None else inputs.shape[1])


def equation_of(task_id: str, **params) -> str:
    """A task's equation as figures name it, with its own fields filled in: ``x^2 + x * y mod p``,
    ``x . y in D6``, ``parity of 3 of 40 bits``."""
    task = get_task(task_id)
    return task.describe(params) if task.describe is not None else task.equation


def task_label(cfg) -> str:
    """A run's task in a few words, from a RunConfig or a mapping of its fields (a store row's config): ``div mod
    97``, ``x^3 + x * y mod 23``, ``x . y in S4``, ``parity of 3 of 40 bits``."""
    get = cfg.get if isinstance(cfg, Mapping) else lambda f: getattr(cfg, f)
    task = get_task(get("task"))
    modulus = get("modulus")
    if task.describe is not None:
        params = {f: get(f) for f in task.params if get(f) is not None}
        return equation_of(task.name, **params).replace("mod p", f"mod {modulus}")
    return task.name + (f" mod {modulus}" if task.modular else "")


def defining_fields(task_id: str) -> tuple[frozenset, frozenset]:
    """(the fields a task's label already says, the task fields that mean nothing for it): what a legend or a
    table leaves out beside ``task_label`` (a group run's ``group`` is in its label; its ``modulus`` and a
    formula's ``expression`` mean nothing)."""
    task = get_task(task_id)
    own = set(task.params) | ({"modulus"} if task.modular else set())
    others = {f.name for t in TASKS.values() for f in t.fields} | {"modulus"}
    return frozenset(own if task.describe is not None else ()), frozenset(others - own)


def is_symmetric(task_id: str, modulus: int = 97, **params) -> bool:
    """Whether ``x op y == y op x`` for every pair of the task's table (the paper finds these easier)."""
    x, y, z = make_table(task_id, modulus, **params)
    answer = {(a, b): c for a, b, c in zip(x.tolist(), y.tolist(), z.tolist())}
    return all(answer.get((b, a)) == c for (a, b), c in answer.items())


def check_modulus(task_id: str, modulus: int) -> None:
    """Raise ConfigError when ``modulus`` does not suit a task that takes its symbols from the modulus."""
    task = get_task(task_id)
    if not task.modular or task.check is not None:
        return
    if task.needs_prime and not is_prime(modulus):
        raise ConfigError(f"modulus {modulus} is not prime; task {task_id!r} needs a prime modulus")
    if modulus < 2:
        raise ConfigError(f"modulus {modulus} is too small; task {task_id!r} needs a modulus >= 2")


def check_fits(task_id: str, modulus: int = 97, **params) -> None:
    """Raise ConfigError when the task's table cannot fit in this machine's memory (``groklab.limits``), from
    the sizes alone: before anything is built."""
    task = get_task(task_id)
    full = _params(task, modulus, params)
    if task.size is not None:
        rows = task.size(full)
    else:  # every pair of symbols at most (a custom formula keeps those where it is defined)
        n = n_symbols(task_id, modulus, **params)
        rows = n * (n - 1 if task.y_nonzero else n)
    nbytes = task.footprint(full) if task.footprint is not None else rows * limits.BYTES_PER_EQUATION
    sized = [f"modulus {modulus:,}"] if task.modular else []
    sized += [f"{f.name} {full[f.name]:,}" for f in task.fields if f.type == "int"]
    limits.check_table(task_id, rows, nbytes, ", ".join(sized) or "its fields")


def check_task(task_id: str, modulus: int = 97, **params) -> None:
    """Raise ConfigError when the modulus or the task's own fields do not suit it, or its table cannot fit."""
    task = get_task(task_id)
    check_fits(task_id, modulus, **params)
    check_modulus(task_id, modulus)
    if task.check is not None:
        task.check(_params(task, modulus, params))


def n_symbols(task_id: str, modulus: int = 97, **params) -> int:
    """How many distinct symbols (operands and answers) the task has."""
    task = get_task(task_id)
    return task.symbols(_params(task, modulus, params)) if task.symbols is not None else modulus


def n_examples(task_id: str, modulus: int = 97, **params) -> int:
    """The number of equations in the task's table."""
    task = get_task(task_id)
    if task.size is not None:
        return task.size(_params(task, modulus, params))
    if task.build is not None:
        return len(make_table(task_id, modulus, **params)[0])
    n = n_symbols(task_id, modulus, **params)
    return n * (n - 1 if task.y_nonzero else n)


def make_table(task_id: str, modulus: int = 97, **params) -> Table:
    """All equations of a task: ``x, y, z`` as int64 arrays of symbol indices (for a vector task, ``x`` indexes
    its examples and ``y`` is 0), row-major in (x, y)."""
    task = get_task(task_id)
    check_task(task_id, modulus, **params)
    if task.build is not None:
        return task.build(_params(task, modulus, params))
    x, y = pairs(n_symbols(task_id, modulus, **params), 1 if task.y_nonzero else 0)
    return x, y, task.fn(x, y, modulus)


def task_inputs(task_id: str, modulus: int = 97, **params) -> np.ndarray | None:
    """A vector task's input per example, (n, F) float32 (digits' pixels, parity's bits); None otherwise."""
    task = get_task(task_id)
    return None if task.inputs is None else task.inputs(_params(task, modulus, params))


def symbol_name(task_id: str, symbol: int, **params) -> str:
    """How a symbol is written: an integer, a permutation in one-line notation (``01234``), a group element."""
    task = get_task(task_id)
    if task.symbol_name is None:
        return str(symbol)
    return task.symbol_name(_params(task, params.pop("modulus", 97), params), int(symbol))


def table_csv(task_id: str, modulus: int = 97, **params) -> str:
    """The task's table as CSV with header ``x,y,z`` (a sequence task's: ``x,relevant bits I J K,z``, x the bit
    string and the middle column the bits that decide its answer)."""
    import csv
    import io

    x, y, z = make_table(task_id, modulus, **params)
    task = get_task(task_id)
    name = lambda s: symbol_name(task_id, int(s), modulus=modulus, **params)  # noqa: E731
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if task.sequence:  # an example is its bit string; the bits that decide its answer get a column of their own
        bits = task_inputs(task_id, modulus, **params).astype(int)
        rel = task.relevant({"modulus": modulus, **params}) if task.relevant is not None else []
        w.writerow(["x", f"relevant bits {' '.join(map(str, rel))}" if rel else "relevant bits", "z"])
        for a, c in zip(x, z):
            w.writerow(["".join(map(str, bits[a])), "".join(str(bits[a][i]) for i in rel), name(c)])
        return buf.getvalue()
    w.writerow(["x", "y", "z"])
    w.writerows([name(a), name(b), name(c)] for a, b, c in zip(x, y, z))
    return buf.getvalue()


def ignored_operand(task_id: str, modulus: int = 97, **params) -> str | None:
    """``"x"`` or ``"y"`` when the task's answer does not depend on that operand (``x . y . x^-1`` in an abelian
    group is y), ``"x and y"`` when it is constant; None when it depends on both (and for vector tasks, whose x is
    the example)."""
    task = get_task(task_id)
    if task.vector:
        return None
    x, y, z = (np.asarray(a) for a in make_table(task_id, modulus, **params))

    def constant_within(groups: np.ndarray) -> bool:  # z is one value for each value of ``groups``
        order = np.argsort(groups, kind="stable")
        g, v = groups[order], z[order]
        starts = np.r_[True, g[1:] != g[:-1]]
        return bool((v == v[starts][np.cumsum(starts) - 1]).all())

    no_x, no_y = constant_within(y), constant_within(x)
    if no_x and no_y:
        return "x and y"
    return "x" if no_x else "y" if no_y else None


def split_sizes(n: int, train_fraction: float) -> tuple[int, int]:
    """(training, validation) sizes of a table of ``n`` equations at ``train_fraction``; refuses a split that
    leaves either side empty."""
    if not 0.0 < train_fraction < 1.0:
        raise ConfigError(f"train_fraction {train_fraction} is outside (0, 1)")
    n_train = int(round(train_fraction * n))
    if n_train < 1 or n_train > n - 1:
        raise ConfigError(
            f"train_fraction {train_fraction} of {n} equations leaves {n_train} for training; "
            "each side needs at least one example"
        )
    return n_train, n - n_train
