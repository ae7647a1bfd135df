"""Small finite groups as tables (``--task group --group NAME``): symmetric, alternating, dihedral, cyclic groups
and their direct products (Chughtai et al. 2023 study composition in such groups).

Names: ``S3``-``S6`` (symmetric), ``A4``-``A6`` (alternating), ``D3``-``D30`` (dihedral, order 2n), ``Z<n>``
(cyclic, n >= 2) and direct products of those joined by ``x``: ``Z4xZ6``, ``S3xZ5``, ``D4xZ2xZ2``.

A group is its elements in a fixed order (element 0 is the identity) and its multiplication table; the task's
answer is ``x . y`` (``--group-op mul``) or ``x . y . x^-1`` (``conj``). Elements are written readably
(``name``): a permutation in one-line notation (``01234``: ``x[i]`` is the image of i, composed as
``(x . y)[i] = x[y[i]]`` like the S5 tasks), ``r^i`` and ``r^i s`` for the dihedral groups (``r`` a rotation by
2 pi / n, ``s`` a reflection, ``s r = r^-1 s``), ``i`` for ``Z<n>``, and tuples ``(a, b)`` for products.

    >>> g = get_group("D4")
    >>> g.order, g.name(g.mul[2, 5])
    (8, 'r^3 s')
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import lru_cache

from .errors import ConfigError
from .lazy import lazy

np = lazy("numpy")

MAX_ORDER = 1000  # its table has order^2 equations, every one scored at each evaluation: at most a million
GROUP_OPS = ("mul", "conj")


@dataclass(frozen=True)
class Group:
    """A finite group: ``mul[a, b]`` is the index of ``a . b``; element 0 is the identity; ``names[a]`` how
    element ``a`` is written."""

    id: str
    mul: np.ndarray  # (order, order) int64
    names: tuple[str, ...]

    @property
    def order(self) -> int:
        """The number of elements."""
        return len(self.names)

    def name(self, element: int) -> str:
        """How ``element`` is written (a permutation, ``r^i s``, an integer, a tuple)."""
        return self.names[int(element)]

    @property
    def inverse(self) -> np.ndarray:
        """(order,): the index of each element's inverse."""
        return np.argmax(self.mul == 0, axis=1)

    @property
    def abelian(self) -> bool:
        """Whether ``a . b == b . a`` for every pair."""
        return bool((self.mul == self.mul.T).all())

    def conjugacy_classes(self) -> list[int]:
        """(order,): for each element, the smallest index of its conjugacy class ``{g a g^-1}``."""
        inv = self.inverse
        conj = self.mul[self.mul[np.arange(self.order)[:, None], np.arange(self.order)[None, :]], inv[:, None]]
        return [int(conj[:, a].min()) for a in range(self.order)]  # conj[g, a] = g . a . g^-1

    def element_orders(self) -> list[int]:
        """(order,): the order of each element (the smallest n with a^n the identity)."""
        out = []
        for a in range(self.order):
            n, x = 1, a
            while x != 0:
                x, n = int(self.mul[x, a]), n + 1
            out.append(n)
        return out

    def answers(self, x: np.ndarray, y: np.ndarray, op: str = "mul") -> np.ndarray:
        """``x . y`` or, for ``conj``, ``x . y . x^-1``, elementwise."""
        if op == "mul":
            return self.mul[x, y]
        if op == "conj":
            return self.mul[self.mul[x, y], self.inverse[x]]
        raise ConfigError(f"group_op {op!r} is not allowed; allowed: {', '.join(GROUP_OPS)}")


def _perm_group(gid: str, perms: list[tuple[int, ...]]) -> Group:
    index = {p: i for i, p in enumerate(perms)}
    arr = np.array(perms, dtype=np.int64)
    composed = np.take_along_axis(arr[:, None, :].repeat(len(perms), 1), arr[None, :, :].repeat(len(perms), 0), 2)
    mul = np.array([[index[tuple(r)] for r in row] for row in composed.tolist()], dtype=np.int64)
    return Group(gid, mul, tuple("".join(str(v) for v in p) for p in perms))


def _parity(p: tuple[int, ...]) -> int:
    """0 for an even permutation, 1 for an odd one (by counting inversions)."""
    return sum(p[i] > p[j] for i in range(len(p)) for j in range(i + 1, len(p))) % 2


def symmetric(n: int) -> Group:
    """S_n: every permutation of 0..n-1 in lexicographic order (for n = 5, the S5 tasks' order)."""
    return _perm_group(f"S{n}", list(itertools.permutations(range(n))))


def alternating(n: int) -> Group:
    """A_n: the even permutations, in lexicographic order."""
    return _perm_group(f"A{n}", [p for p in itertools.permutations(range(n)) if _parity(p) == 0])


def dihedral(n: int) -> Group:
    """D_n, order 2n: element ``i + n j`` is ``r^i s^j``; ``(r^a s^b)(r^c s^d) = r^(a + (-1)^b c) s^(b + d)``."""
    i, j = np.divmod(np.arange(2 * n), n)[::-1]
    a, b, c, d = i[:, None], j[:, None], i[None, :], j[None, :]
    mul = (a + np.where(b == 1, -c, c)) % n + n * ((b + d) % 2)
    names = tuple(f"r^{k % n}" + (" s" if k >= n else "") for k in range(2 * n))
    return Group(f"D{n}", mul.astype(np.int64), names)


def cyclic(n: int) -> Group:
    """The cyclic group Z_n."""
    k = np.arange(n)
    return Group(f"Z{n}", ((k[:, None] + k[None, :]) % n).astype(np.int64), tuple(str(v) for v in range(n)))


def product(groups: list[Group]) -> Group:
    """The direct product, elements as tuples in lexicographic order of the factors' indices."""
    orders = [g.order for g in groups]
    elems = list(itertools.product(*(range(o) for o in orders)))
    index = {e: i for i, e in enumerate(elems)}
    arr = np.array(elems, dtype=np.int64)  # (N, k)
    parts = [g.mul[arr[:, f][:, None], arr[:, f][None, :]] for f, g in enumerate(groups)]  # each (N, N)
    strides = np.cumprod([1] + orders[::-1])[:-1][::-1]
    mul = sum(p * s for p, s in zip(parts, strides))
    assert all(index[e] == i for i, e in enumerate(elems))
    names = tuple("(" + ", ".join(g.name(v) for g, v in zip(groups, e)) + ")" for e in elems)
    return Group("x".join(g.id for g in groups), mul.astype(np.int64), names)


_FACTOR = re.compile(r"^(S|A|D|Z)(\d+)$")
_LIMITS = {"S": (3, 6), "A": (4, 6), "D": (3, 30), "Z": (2, MAX_ORDER)}
_ORDER = {"S": lambda n: int(np.prod(range(1, n + 1))), "A": lambda n: int(np.prod(range(1, n + 1))) // 2,
          "D": lambda n: 2 * n, "Z": lambda n: n}
_BUILD = {"S": symmetric, "A": alternating, "D": dihedral, "Z": cyclic}


def check_group(name: str) -> list[tuple[str, int]]:
    """The factors of a group name, refused in one line when unknown or too large."""
    if not isinstance(name, str) or not name:
        raise ConfigError("task 'group' needs a group: --group S4, A5, D6, Z12, Z4xZ6, ...")
    factors = []
    for part in name.split("x"):
        m = _FACTOR.match(part)
        if not m:
            hint = ""
            if _FACTOR.match(part.upper()) and name.upper().replace("X", "x") != name:
                hint = f"; did you mean {name.upper().replace('X', 'x')!r}?"  # d6 -> D6, z4XZ6 -> Z4xZ6
            raise ConfigError(f"group {name!r}: {part!r} is not a group; allowed: S3-S6, A4-A6, D3-D30, Z<n> "
                              f"(n >= 2) and products joined by x, e.g. Z4xZ6{hint}")
        kind, n = m.group(1), int(m.group(2))
        lo, hi = _LIMITS[kind]
        if not lo <= n <= hi:
            raise ConfigError(f"group {name!r}: {part} is not offered; {kind}n takes n from {lo} to {hi}")
        factors.append((kind, n))
    order = int(np.prod([_ORDER[k](n) for k, n in factors]))
    if order > MAX_ORDER:
        raise ConfigError(f"group {name!r} has order {order}; at most {MAX_ORDER}: its table holds every pair "
                          f"({order}^2 = {order * order:,} equations), each scored at every evaluation")
    return factors


@lru_cache(maxsize=32)
def get_group(name: str) -> Group:
    """The group called ``name`` (see the module doc)."""
    factors = check_group(name)
    groups = [_BUILD[k](n) for k, n in factors]
    return groups[0] if len(groups) == 1 else product(groups)


def group_order(name: str) -> int:
    """The order of the group a name describes, computed without building it."""
    return int(np.prod([_ORDER[k](n) for k, n in check_group(name)]))
