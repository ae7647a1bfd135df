"""An affine task with settings of its own: ``--task affine --affine-a 3 --affine-b 1``, z = a x + b y mod p. It
says it is linear, so groklab's Fourier analysis measures its restricted and excluded losses."""

from __future__ import annotations

from groklab.errors import ConfigError
from groklab.fields import Field
from groklab.tasks.spec import Table, Task, pairs

A = Field("affine_a", 2, "task affine: the coefficient of x, in z = a x + b y mod p", min=1)
B = Field("affine_b", 1, "task affine: the coefficient of y", min=1)


def table(params: dict) -> Table:
    """Every pair of residues and its answer: ``params`` holds the modulus and the task's two fields."""
    p = params["modulus"]
    x, y = pairs(p)
    return x, y, (params["affine_a"] * x + params["affine_b"] * y) % p


def check(params: dict) -> None:
    p, a, b = params["modulus"], params["affine_a"], params["affine_b"]
    if p < 2:
        raise ConfigError(f"modulus {p} is too small; task 'affine' needs a modulus >= 2")
    if a % p == 0 or b % p == 0:
        raise ConfigError(f"affine_a {a} and affine_b {b} must not be 0 mod {p}: the answer would not depend on "
                          "both operands")


AFFINE = Task("affine", "a x + b y mod p (--affine-a, --affine-b)", modular=True, fields=(A, B), build=table,
              symbols=lambda ps: ps["modulus"], check=check,
              describe=lambda ps: f"{ps.get('affine_a', A.default)} x + {ps.get('affine_b', B.default)} y mod p",
              linear=lambda ps: (ps["affine_a"], ps["affine_b"]))
