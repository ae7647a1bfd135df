"""The paper's algorithmic data sets: binary-operation tables, tokens and splits.

Every algorithmic task is a table of equations ``x op y = z`` over a finite set
of symbols (the residues mod p, or the 120 permutations of S5). The network
sees abstract tokens only: symbol ``i`` is token ``i``, then one token for the
operator and one for ``=``. A sequence is ``x op y =`` and the target is the
token of ``z``.

Beyond the paper: ``custom``, a formula in x and y of the user's
(``--expression``, parsed by ``groklab.expressions``); ``group``, composition
or conjugation in a small finite group (``--group``, ``groklab.groups``);
``parity``, k-sparse parity of random bit strings drawn from the seed (Barak et
al. 2022); and ``digits`` (Omnigrok, Liu et al. 2022), the 1,797 handwritten
8x8 digits scikit-learn ships (``load_digits``, no download). A task whose table
depends on more than the modulus names those RunConfig fields (``Task.fields``)
and every function here takes them as keywords (``make_table("group",
group="S4")``). Digits and parity are vector tasks: their table's ``x`` is an
example's index, ``y`` is 0, ``z`` its label, and ``task_inputs`` holds each
example's input vector (the 64 pixel values divided by 16 into [0, 1]; the
bits). ``register`` adds a task from Python, and installed packages add theirs
through entry points of group ``groklab.tasks`` (``load_plugins``).

>>> t = get_task("add")
>>> x, y, z = make_table("add", 7)
>>> int(z[(x == 3) & (y == 5)][0])
1
>>> train_idx, val_idx = split(len(x), 0.5, seed=0)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, ClassVar, NamedTuple

import numpy as np
import torch

from .errors import ConfigError


Table = tuple[np.ndarray, np.ndarray, np.ndarray]


class Shape(NamedTuple):
    """What a model's size depends on besides its own fields: the symbols it embeds and answers with, and (a
    vector task) the length of each example's input vector."""

    n_symbols: int
    n_inputs: int = 0


def shape_of(cfg) -> Shape:
    """A run's ``Shape``, from a RunConfig (or a mapping of its fields)."""
    get = cfg.get if isinstance(cfg, dict) else lambda f: getattr(cfg, f)
    params = {k: v for k, v in params_of(cfg).items() if k != "modulus"}
    task, modulus = get("task"), get("modulus")
    inputs = task_inputs(task, modulus, **params)
    return Shape(n_symbols(task, modulus, **params), 0 if inputs is None else inputs.shape[1])


@dataclass(frozen=True)
class Task:
    """One task: its table of equations ``x op y = z`` and how its symbols are written.

    The paper's operations are ``fn(x, y, p)`` over the pairs of residues (``modular``); the S5 tasks over the
    pairs of permutations. A task whose table depends on more than the modulus names those RunConfig fields in
    ``fields`` (``expression``, ``group``, the parity fields) and builds it from ``params`` (``params_of``: the
    modulus and those fields): ``build(params) -> (x, y, z)``, ``symbols(params)`` its symbol count,
    ``size(params)`` its table size, ``name(params, symbol)`` how a symbol is written, ``check(params)`` its
    refusals. A vector task (``inputs``) reads an input vector per example (digits' pixels, parity's bits)
    instead of two symbols; ``sequence``: the transformer reads that vector as tokens (parity's bits).
    """

    id: str
    equation: str
    modular: bool  # the symbols are the residues mod p (the modulus applies)
    needs_prime: bool = False
    y_nonzero: bool = False  # the operand y ranges over 1..p-1
    fn: Callable[[np.ndarray, np.ndarray, int], np.ndarray] | None = None
    image: bool = False  # x indexes an image (its inputs), not a symbol; the answer is its class
    fields: tuple[str, ...] = ()
    build: Callable[[dict], Table] | None = None
    symbols: Callable[[dict], int] | None = None
    size: Callable[[dict], int] | None = None
    name: Callable[[dict, int], str] | None = None
    check: Callable[[dict], None] | None = None
    inputs: Callable[[dict], np.ndarray] | None = None  # (n, F) float32: each example's input vector
    sequence: bool = False

    @property
    def vector(self) -> bool:
        return self.inputs is not None


def _inverse_mod(y: np.ndarray, p: int) -> np.ndarray:
    """Modular inverses of the nonzero residues ``y`` (p prime)."""
    table = np.array([0] + [pow(v, -1, p) for v in range(1, p)], dtype=np.int64)
    return table[y]


def _div(x, y, p):
    return x * _inverse_mod(y, p) % p


def _div_odd_sub(x, y, p):
    return np.where(y % 2 == 1, x * _inverse_mod(y, p) % p, (x - y) % p)


_MODULAR = [
    ("add", "x + y mod p", False, False, lambda x, y, p: (x + y) % p),
    ("sub", "x - y mod p", False, False, lambda x, y, p: (x - y) % p),
    ("mul", "x * y mod p", False, False, lambda x, y, p: (x * y) % p),
    ("div", "x / y mod p", True, True, _div),
    ("div_odd_sub", "x / y if y is odd, else x - y (mod p)", True, True, _div_odd_sub),
    ("x2_y2", "x^2 + y^2 mod p", False, False, lambda x, y, p: (x * x + y * y) % p),
    ("x2_xy_y2", "x^2 + xy + y^2 mod p", False, False, lambda x, y, p: (x * x + x * y + y * y) % p),
    ("x2_xy_y2_x", "x^2 + xy + y^2 + x mod p", False, False,
     lambda x, y, p: (x * x + x * y + y * y + x) % p),
    ("x3_xy", "x^3 + xy mod p", False, False, lambda x, y, p: (x * x % p * x + x * y) % p),
    ("x3_xy2_y", "x^3 + xy^2 + y mod p", False, False,
     lambda x, y, p: (x * x % p * x + x * (y * y % p) + y) % p),
]


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a . b)[i] = a[b[i]] for stacks of permutations, shape (n, 5)."""
    return np.take_along_axis(a, b, axis=1)


def _invert(a: np.ndarray) -> np.ndarray:
    return np.argsort(a, axis=1)


_S5 = [
    ("s5_mul", "x . y in S5", lambda x, y: _compose(x, y)),
    ("s5_conj", "x . y . x^-1 in S5", lambda x, y: _compose(_compose(x, y), _invert(x))),
    ("s5_aba", "x . y . x in S5", lambda x, y: _compose(_compose(x, y), x)),
]


@lru_cache(maxsize=1)
def permutations() -> np.ndarray:
    """The 120 permutations of 0..4 in lexicographic order, shape (120, 5); 0 is the identity."""
    return np.array(list(itertools.permutations(range(5))), dtype=np.int64)


def _s5_fn(op):
    def fn(x, y, _p):
        perms = permutations()
        z = op(perms[x], perms[y])
        index = {tuple(p): i for i, p in enumerate(perms.tolist())}
        return np.array([index[tuple(r)] for r in z.tolist()], dtype=np.int64)

    return fn


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)


def digit_pixels() -> np.ndarray:
    """The 1,797 digit images as (1797, 64) float32 in [0, 1] (scikit-learn's 0-16 values divided by 16)."""
    return _digits()[0]


def _digits_table(params: dict) -> Table:
    labels = _digits()[1]
    x = np.arange(len(labels), dtype=np.int64)
    return x, np.zeros_like(x), labels.copy()


# -- your own operation (groklab.expressions) --------------------------------------------------------------------


@lru_cache(maxsize=16)
def _custom(expression: str, p: int) -> Table:
    from .expressions import parse

    xs = np.arange(p, dtype=np.int64)
    x, y = (a.ravel() for a in np.meshgrid(xs, xs, indexing="ij"))
    z, ok = parse(expression).evaluate(x, y, p)
    return x[ok], y[ok], z[ok]


def _check_custom(params: dict) -> None:
    from .expressions import parse

    e = parse(params.get("expression", ""))
    p = params["modulus"]
    if p < 2:
        raise ConfigError(f"modulus {p} is too small; task 'custom' needs a modulus >= 2")
    if e.divides and not is_prime(p):
        raise ConfigError(f"modulus {p} is not prime; expression {e.text!r} divides, which needs a prime modulus")
    if len(_custom(e.text, p)[0]) < 2:
        raise ConfigError(f"expression {e.text!r} is defined at fewer than 2 pairs mod {p}")


def canonical_expression(text: str) -> str:
    """An expression's canonical spelling (what a run's config keeps and its identity hashes)."""
    from .expressions import parse

    return parse(text).text


# -- any small finite group (groklab.groups) ---------------------------------------------------------------------


def _group_table(params: dict) -> Table:
    from .groups import get_group

    g = get_group(params["group"])
    xs = np.arange(g.order, dtype=np.int64)
    x, y = (a.ravel() for a in np.meshgrid(xs, xs, indexing="ij"))
    return x, y, g.answers(x, y, params.get("group_op", "mul"))


def _check_group(params: dict) -> None:
    from .groups import GROUP_OPS, check_group

    check_group(params.get("group", ""))
    if params.get("group_op", "mul") not in GROUP_OPS:
        raise ConfigError(f"group_op {params['group_op']!r} is not allowed; allowed: {', '.join(GROUP_OPS)}")


def _group_name(params: dict, symbol: int) -> str:
    from .groups import get_group

    return get_group(params["group"]).name(symbol)


# -- k-sparse parity (Barak et al. 2022) -------------------------------------------------------------------------

MAX_BITS = 1024


@lru_cache(maxsize=8)
def parity_data(n_bits: int, parity_k: int, n_examples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_examples`` distinct bit strings of ``n_bits`` bits, (M, N) uint8, and the ``parity_k`` relevant bits,
    (K,) sorted: all drawn from ``seed`` (a generator of its own: the same on every machine)."""
    rng = np.random.default_rng([seed, 0x9A817])
    relevant = np.sort(rng.choice(n_bits, size=parity_k, replace=False))
    seen, rows = set(), []
    while len(rows) < n_examples:  # distinct strings: a string in both splits would leak its answer
        for r in rng.integers(0, 2, size=(n_examples - len(rows), n_bits), dtype=np.uint8):
            key = r.tobytes()
            if key not in seen:
                seen.add(key)
                rows.append(r)
    return np.stack(rows), relevant


def parity_labels(bits: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """The parity of the relevant bits of each string: (M,) int64 in {0, 1}."""
    return (bits[:, relevant].sum(1) % 2).astype(np.int64)


def _parity_table(params: dict) -> Table:
    bits, relevant = parity_data(params["n_bits"], params["parity_k"], params["n_examples"], params["seed"])
    x = np.arange(len(bits), dtype=np.int64)
    return x, np.zeros_like(x), parity_labels(bits, relevant)


def _check_parity(params: dict) -> None:
    n, k, m = params["n_bits"], params["parity_k"], params["n_examples"]
    if not 1 <= n <= MAX_BITS:
        raise ConfigError(f"n_bits {n} is not allowed; from 1 to {MAX_BITS}")
    if not 1 <= k <= n:
        raise ConfigError(f"parity_k {k} is not allowed; the parity of 1 to n_bits ({n}) bits")
    if m < 2 or (n < 63 and m > 2 ** n):
        raise ConfigError(f"n_examples {m} is not allowed; from 2 to the {2 ** min(n, 62):,} distinct strings of "
                          f"{n} bits")


def _parity_inputs(params: dict) -> np.ndarray:
    return parity_data(params["n_bits"], params["parity_k"], params["n_examples"], params["seed"])[0].astype(
        np.float32)


def _parity_name(params: dict, symbol: int) -> str:
    return str(symbol)


# -- the registry ------------------------------------------------------------------------------------------------

TASKS: dict[str, Task] = {
    **{tid: Task(tid, eq, True, prime, nz, fn) for tid, eq, prime, nz, fn in _MODULAR},
    **{tid: Task(tid, eq, False, fn=_s5_fn(op)) for tid, eq, op in _S5},
    "digits": Task("digits", "the digit (0-9) in an 8x8 handwritten image (scikit-learn's load_digits)", False,
                   image=True, build=_digits_table, symbols=lambda _: 10, size=lambda _: len(digit_pixels()),
                   inputs=lambda _: digit_pixels()),
    "custom": Task("custom", "your formula in x and y mod p (--expression)", True, fields=("expression",),
                   build=lambda ps: _custom(canonical_expression(ps["expression"]), ps["modulus"]),
                   symbols=lambda ps: ps["modulus"], check=_check_custom),
    "group": Task("group", "x . y (or x . y . x^-1) in a finite group (--group, --group-op)", False,
                  fields=("group", "group_op"), build=_group_table,
                  symbols=lambda ps: __import__("groklab.groups", fromlist=["group_order"]).group_order(ps["group"]),
                  name=_group_name, check=_check_group),
    "parity": Task("parity", "the parity of k fixed bits among n random bits (--n-bits, --parity-k, --n-examples)",
                   False, fields=("n_bits", "parity_k", "n_examples", "seed"), build=_parity_table,
                   symbols=lambda _: 2, size=lambda ps: ps["n_examples"], name=_parity_name, check=_check_parity,
                   inputs=_parity_inputs, sequence=True),
}
BUILTIN = frozenset(TASKS)
_PLUGINS_LOADED = False


def register(task_id: str, fn: Callable[[np.ndarray, np.ndarray, int], np.ndarray], equation: str | None = None,
             needs_prime: bool = False, y_nonzero: bool = False, replace: bool = False) -> Task:
    """Add a modular task: ``fn(x, y, p)`` maps int64 arrays of residues (every pair, vectorized) to answers mod
    p. ``task_id`` is then accepted everywhere a task is (``RunConfig``, the CLI, sweep files, the store).

    >>> register("x2_minus_y", lambda x, y, p: (x * x - y) % p, "x^2 - y mod p")   # doctest: +SKIP
    """
    if not isinstance(task_id, str) or not task_id.isidentifier():
        raise ConfigError(f"task id {task_id!r} is not allowed; use letters, digits and _")
    if task_id in BUILTIN or (task_id in TASKS and not replace):
        raise ConfigError(f"task {task_id!r} exists already" + ("" if task_id in BUILTIN else "; replace=True to "
                                                                                               "replace it"))
    TASKS[task_id] = Task(task_id, equation or f"{task_id}(x, y) mod p", True, needs_prime, y_nonzero, fn)
    return TASKS[task_id]


def load_plugins() -> None:
    """Load the tasks of installed packages: every entry point of group ``groklab.tasks`` names a callable that
    registers tasks (``groklab.tasks.register``) or a module that does on import. Once per process; a plugin
    that fails is reported on stderr and left out."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    import sys
    from importlib.metadata import entry_points

    for ep in entry_points(group="groklab.tasks"):
        try:
            obj = ep.load()
            if callable(obj):
                obj()
        except Exception as e:  # noqa: BLE001 - a broken plugin must not break groklab
            print(f"groklab: task plugin {ep.name!r} ({ep.value}) failed to load: {e}", file=sys.stderr)


def all_tasks() -> dict[str, Task]:
    """Every task: groklab's and those of installed plugins."""
    load_plugins()
    return TASKS


class TaskIds:
    """The task ids as ``RunConfig.task``'s choices: plugins' tasks included, looked up when asked."""

    def __contains__(self, task_id) -> bool:
        return task_id in all_tasks()

    def __iter__(self):
        return iter(all_tasks())

    def __len__(self) -> int:
        return len(all_tasks())


def is_image(task_id: str) -> bool:
    return get_task(task_id).image


def is_s5(task_id: str) -> bool:
    return task_id in ("s5_mul", "s5_conj", "s5_aba")


def get_task(task_id: str) -> Task:
    tasks = all_tasks()
    if task_id not in tasks:
        raise ConfigError(f"unknown task {task_id!r}; allowed: {', '.join(tasks)}")
    return tasks[task_id]


def params_of(cfg) -> dict:
    """What a run's table depends on: its modulus and its task's fields (``Task.fields``), from a RunConfig or a
    mapping of its fields."""
    get = cfg.get if isinstance(cfg, dict) else lambda f: getattr(cfg, f)
    return {"modulus": get("modulus"), **{f: get(f) for f in get_task(get("task")).fields}}


def _params(task_id: str, modulus: int, params: dict) -> dict:
    task = get_task(task_id)
    missing = [f for f in task.fields if f not in params]
    if missing:
        from .config import FIELDS  # the defaults of the fields not given

        params = {**{f: FIELDS[f].default for f in missing}, **params}
    return {"modulus": modulus, **params}


def equation_of(task_id: str, **params) -> str:
    """A task's equation as figures name it, with its own fields filled in: ``x^2 + x * y mod p``,
    ``x . y in D6``, ``parity of 3 of 40 bits``."""
    if task_id == "custom" and params.get("expression"):
        return f"{canonical_expression(params['expression'])} mod p"
    if task_id == "group" and params.get("group"):
        op = "x . y . x^-1" if params.get("group_op") == "conj" else "x . y"
        return f"{op} in {params['group']}"
    if task_id == "parity" and params.get("n_bits"):
        return f"parity of {params.get('parity_k')} of {params['n_bits']} bits"
    return get_task(task_id).equation


def is_symmetric(task_id: str, modulus: int = 97, **params) -> bool:
    """Whether ``x op y == y op x`` for every pair of the task's table (the paper finds these easier)."""
    x, y, z = make_table(task_id, modulus, **params)
    answer = {(a, b): c for a, b, c in zip(x.tolist(), y.tolist(), z.tolist())}
    return all(answer.get((b, a)) == c for (a, b), c in answer.items())


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, int(n**0.5) + 1))


def check_modulus(task_id: str, modulus: int) -> None:
    """Raise ConfigError when ``modulus`` does not suit the task."""
    task = get_task(task_id)
    if not task.modular or task.check is not None:
        return
    if task.needs_prime and not is_prime(modulus):
        raise ConfigError(f"modulus {modulus} is not prime; task {task_id!r} needs a prime modulus")
    if modulus < 2:
        raise ConfigError(f"modulus {modulus} is too small; task {task_id!r} needs a modulus >= 2")


def check_task(task_id: str, modulus: int = 97, **params) -> None:
    """Raise ConfigError when the modulus or the task's own fields do not suit it."""
    task = get_task(task_id)
    check_modulus(task_id, modulus)
    if task.check is not None:
        task.check(_params(task_id, modulus, params))


def n_symbols(task_id: str, modulus: int = 97, **params) -> int:
    """How many distinct symbols (operands and answers) the task has."""
    task = get_task(task_id)
    if task.symbols is not None:
        return task.symbols(_params(task_id, modulus, params))
    return modulus if task.modular else len(permutations())


def n_examples(task_id: str, modulus: int = 97, **params) -> int:
    """The number of equations in the task's table."""
    task = get_task(task_id)
    if task.size is not None:
        return task.size(_params(task_id, modulus, params))
    if task.build is not None:
        return len(make_table(task_id, modulus, **params)[0])
    n = n_symbols(task_id, modulus)
    return n * (n - 1 if task.y_nonzero else n)


def make_table(task_id: str, modulus: int = 97, **params) -> Table:
    """All equations of a task: ``x, y, z`` as int64 arrays of symbol indices (for a vector task, ``x`` indexes
    its examples and ``y`` is 0), row-major in (x, y)."""
    task = get_task(task_id)
    check_task(task_id, modulus, **params)
    if task.build is not None:
        return task.build(_params(task_id, modulus, params))
    n = n_symbols(task_id, modulus)
    ys = np.arange(1 if task.y_nonzero else 0, n, dtype=np.int64)
    xs = np.arange(n, dtype=np.int64)
    x, y = (a.ravel() for a in np.meshgrid(xs, ys, indexing="ij"))
    return x, y, task.fn(x, y, modulus)


def task_inputs(task_id: str, modulus: int = 97, **params) -> np.ndarray | None:
    """A vector task's input per example, (n, F) float32 (digits' pixels, parity's bits); None otherwise."""
    task = get_task(task_id)
    return None if task.inputs is None else task.inputs(_params(task_id, modulus, params))


def symbol_name(task_id: str, symbol: int, **params) -> str:
    """How a symbol is written: an integer, a permutation in one-line notation (``01234``), a group element."""
    task = get_task(task_id)
    if task.name is not None:
        return task.name(_params(task_id, params.pop("modulus", 97), params), int(symbol))
    if not is_s5(task_id):
        return str(symbol)
    return "".join(str(v) for v in permutations()[symbol])


def table_csv(task_id: str, modulus: int = 97, **params) -> str:
    """The task's table as CSV with header ``x,y,z`` (a parity example's x is its bit string)."""
    import csv
    import io

    x, y, z = make_table(task_id, modulus, **params)
    task = get_task(task_id)
    name = lambda s: symbol_name(task_id, int(s), modulus=modulus, **params)  # noqa: E731
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["x", "y", "z"])
    if task.sequence:
        bits = task_inputs(task_id, modulus, **params).astype(int)
        for a, c in zip(x, z):
            w.writerow(["".join(map(str, bits[a])), "", name(c)])
    else:
        w.writerows([name(a), name(b), name(c)] for a, b, c in zip(x, y, z))
    return buf.getvalue()


@dataclass(frozen=True)
class TokenLayout:
    """The sequence ``x op y =`` of a task with ``n_symbols`` symbols: its positions and token ids.

    Symbol ``i`` is token ``i``; the operator is token ``n_symbols`` and ``=`` is ``n_symbols + 1``.
    Models read the layout from here (never a copy of it).

    >>> TokenLayout(7).tokens(torch.tensor([3]), torch.tensor([5])).tolist()
    [[3, 7, 5, 8]]
    """

    n_symbols: int
    X: ClassVar[int] = 0  # positions in the sequence
    OP: ClassVar[int] = 1
    Y: ClassVar[int] = 2
    EQ: ClassVar[int] = 3
    SEQ_LEN: ClassVar[int] = 4

    @property
    def op_token(self) -> int:
        return self.n_symbols

    @property
    def eq_token(self) -> int:
        return self.n_symbols + 1

    @property
    def d_vocab(self) -> int:
        return self.n_symbols + 2

    def tokens(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Operands ``x, y`` (...,) -> sequences (..., 4)."""
        op = torch.full_like(x, self.op_token)
        return torch.stack([x, op, y, torch.full_like(x, self.eq_token)], dim=-1)


def tokens(x: torch.Tensor, y: torch.Tensor, n_sym: int) -> torch.Tensor:
    """Sequences ``x op y =``: (batch,) operands -> (batch, 4) tokens (see ``TokenLayout``)."""
    return TokenLayout(n_sym).tokens(x, y)


def split_sizes(n: int, train_fraction: float) -> tuple[int, int]:
    if not 0.0 < train_fraction < 1.0:
        raise ConfigError(f"train_fraction {train_fraction} is outside (0, 1)")
    n_train = int(round(train_fraction * n))
    if n_train < 1 or n_train > n - 1:
        raise ConfigError(
            f"train_fraction {train_fraction} of {n} equations leaves {n_train} for training; "
            "each side needs at least one example"
        )
    return n_train, n - n_train


def split(n: int, train_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A random split of ``n`` equations: (train indices, validation indices), sorted, disjoint.

    Drawn from its own generator seeded by ``seed``, so it never depends on global RNG state.
    """
    n_train, _ = split_sizes(n, train_fraction)
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=gen)
    return perm[:n_train].sort().values, perm[n_train:].sort().values


def task_label(cfg) -> str:
    """A run's task in a few words, from a RunConfig: ``div mod 97``, ``x^3 + x * y mod 23``, ``x . y in S4``."""
    task = get_task(cfg.task)
    if task.fields:
        return equation_of(cfg.task, **cfg.task_params).replace("mod p", f"mod {cfg.modulus}")
    return cfg.task + (f" mod {cfg.modulus}" if task.modular else "")
