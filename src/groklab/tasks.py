"""The paper's algorithmic data sets: binary-operation tables, tokens and splits.

Every algorithmic task is a table of equations ``x op y = z`` over a finite set
of symbols (the residues mod p, or the 120 permutations of S5). The network
sees abstract tokens only: symbol ``i`` is token ``i``, then one token for the
operator and one for ``=``. A sequence is ``x op y =`` and the target is the
token of ``z``.

Beyond algorithms (Omnigrok, Liu et al. 2022): ``digits`` is the 1,797
handwritten 8x8 digits scikit-learn ships (``load_digits``, no download). Its
table's ``x`` is an image's index, ``y`` is 0, ``z`` its label (10 symbols);
``digit_pixels()`` holds the images, the 64 pixel values (0-16) divided by 16
into [0, 1]. Only the MLP reads images (``--model mlp``).

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
from typing import Callable, ClassVar

import numpy as np
import torch

from .errors import ConfigError


@dataclass(frozen=True)
class Task:
    id: str
    equation: str
    modular: bool  # False: the symbols are the permutations of S5
    needs_prime: bool
    y_nonzero: bool  # the operand y ranges over 1..p-1
    fn: Callable[[np.ndarray, np.ndarray, int], np.ndarray]
    image: bool = False  # x indexes an image (digit_pixels), not a symbol; the answer is its class


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


def _digit_labels(x, _y, _p):
    return _digits()[1][x]


TASKS: dict[str, Task] = {
    **{tid: Task(tid, eq, True, prime, nz, fn) for tid, eq, prime, nz, fn in _MODULAR},
    **{tid: Task(tid, eq, False, False, False, _s5_fn(op)) for tid, eq, op in _S5},
    "digits": Task("digits", "the digit (0-9) in an 8x8 handwritten image (scikit-learn's load_digits)", False,
                   False, False, _digit_labels, image=True),
}


def is_image(task_id: str) -> bool:
    return get_task(task_id).image


def is_s5(task_id: str) -> bool:
    t = get_task(task_id)
    return not t.modular and not t.image


def get_task(task_id: str) -> Task:
    if task_id not in TASKS:
        raise ConfigError(f"unknown task {task_id!r}; allowed: {', '.join(TASKS)}")
    return TASKS[task_id]


def is_symmetric(task_id: str, modulus: int = 97) -> bool:
    """Whether ``x op y == y op x`` for every pair of the task's table (the paper finds these easier)."""
    x, y, z = make_table(task_id, modulus)
    answer = {(a, b): c for a, b, c in zip(x.tolist(), y.tolist(), z.tolist())}
    return all(answer.get((b, a)) == c for (a, b), c in answer.items())


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, int(n**0.5) + 1))


def check_modulus(task_id: str, modulus: int) -> None:
    """Raise ConfigError when ``modulus`` does not suit the task."""
    task = get_task(task_id)
    if not task.modular:
        return
    if task.needs_prime and not is_prime(modulus):
        raise ConfigError(f"modulus {modulus} is not prime; task {task_id!r} needs a prime modulus")
    if modulus < 2:
        raise ConfigError(f"modulus {modulus} is too small; task {task_id!r} needs a modulus >= 2")


def n_symbols(task_id: str, modulus: int) -> int:
    """How many distinct symbols (operands and answers) the task has."""
    task = get_task(task_id)
    if task.image:
        return 10
    return modulus if task.modular else len(permutations())


def n_examples(task_id: str, modulus: int = 97) -> int:
    """The number of equations in the task's table."""
    if get_task(task_id).image:
        return len(digit_pixels())
    n = n_symbols(task_id, modulus)
    return n * (n - 1 if get_task(task_id).y_nonzero else n)


def make_table(task_id: str, modulus: int = 97) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All equations of a task: ``x, y, z`` as int64 arrays of symbol indices, row-major in (x, y)."""
    task = get_task(task_id)
    check_modulus(task_id, modulus)
    if task.image:
        x = np.arange(n_examples(task_id), dtype=np.int64)
        return x, np.zeros_like(x), task.fn(x, None, modulus)
    n = n_symbols(task_id, modulus)
    ys = np.arange(1 if task.y_nonzero else 0, n, dtype=np.int64)
    xs = np.arange(n, dtype=np.int64)
    x, y = (a.ravel() for a in np.meshgrid(xs, ys, indexing="ij"))
    return x, y, task.fn(x, y, modulus)


def symbol_name(task_id: str, symbol: int) -> str:
    """How a symbol is written: an integer, or a permutation in one-line notation (``01234``)."""
    if not is_s5(task_id):
        return str(symbol)
    return "".join(str(v) for v in permutations()[symbol])


def table_csv(task_id: str, modulus: int = 97) -> str:
    """The task's table as CSV with header ``x,y,z``."""
    x, y, z = make_table(task_id, modulus)
    name = lambda s: symbol_name(task_id, int(s))  # noqa: E731
    rows = ["x,y,z"] + [f"{name(a)},{name(b)},{name(c)}" for a, b, c in zip(x, y, z)]
    return "\n".join(rows) + "\n"


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
