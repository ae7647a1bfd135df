"""The paper's three operations on the permutations of five elements (S5, 120 symbols): composition ``x . y``,
conjugation ``x . y . x^-1`` and ``x . y . x``, where ``(x . y)[i] = x[y[i]]``. A permutation is written in
one-line notation: ``01234`` is the identity, ``x[i]`` the image of i.

    >>> S5_MUL.symbol_name({}, 1)
    '01243'
"""

from __future__ import annotations

import itertools
from functools import lru_cache

from ..lazy import lazy
from .spec import Task

np = lazy("numpy")


@lru_cache(maxsize=1)
def permutations() -> np.ndarray:
    """The 120 permutations of 0..4 in lexicographic order, shape (120, 5); 0 is the identity."""
    return np.array(list(itertools.permutations(range(5))), dtype=np.int64)


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a . b)[i] = a[b[i]] for stacks of permutations, shape (n, 5)."""
    return np.take_along_axis(a, b, axis=1)


def invert(a: np.ndarray) -> np.ndarray:
    return np.argsort(a, axis=1)


def cycle_type(perm) -> str:
    """A permutation's cycle type as a partition of 5, e.g. ``3+1+1``."""
    seen, lengths = set(), []
    for i in range(len(perm)):
        if i not in seen:
            n, j = 0, i
            while j not in seen:
                seen.add(j)
                j = int(perm[j])
                n += 1
            lengths.append(n)
    return "+".join(str(n) for n in sorted(lengths, reverse=True))


def _table_fn(op):
    def fn(x, y, _p):
        perms = permutations()
        z = op(perms[x], perms[y])
        index = {tuple(p): i for i, p in enumerate(perms.tolist())}
        return np.array([index[tuple(r)] for r in z.tolist()], dtype=np.int64)

    return fn


def _name(params: dict, symbol: int) -> str:
    return "".join(str(v) for v in permutations()[symbol])


def _labels(params: dict) -> dict[str, list]:
    """The left coset of the subgroup fixing 4 (an S4; sigma H is read off sigma(4)) and the cycle type."""
    perms = permutations()
    return {"coset of S4 (sigma(4))": [int(p[4]) for p in perms], "cycle type": [cycle_type(p) for p in perms]}


def _s5_task(name: str, equation: str, op, group_op: str) -> Task:
    return Task(name, equation, False, fn=_table_fn(op), symbols=lambda params: 120, symbol_name=_name,
                labels=_labels, group=lambda params: ("S5", group_op))


S5_MUL = _s5_task("s5_mul", "x . y in S5", lambda x, y: compose(x, y), "mul")
S5_CONJ = _s5_task("s5_conj", "x . y . x^-1 in S5", lambda x, y: compose(compose(x, y), invert(x)), "conj")
S5_ABA = _s5_task("s5_aba", "x . y . x in S5", lambda x, y: compose(compose(x, y), x), "aba")
