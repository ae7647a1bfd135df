"""Your own operation: ``--task custom --expression "x^3 + x*y^2 + y"``, a formula in x and y mod p (parsed and
checked by ``groklab.expressions``: ``+ - * / ^``, parentheses, integers; ``/`` multiplies by the inverse, so a
formula that divides needs a prime modulus and its table holds the pairs where every divisor is nonzero).
"""

from __future__ import annotations

from functools import lru_cache

from ..errors import ConfigError
from ..expressions import parse
from ..fields import Field
from .spec import Table, Task, is_prime, pairs

EXPRESSION = Field("expression", "", "task custom: the operation, a formula in x and y mod p, e.g. "
                   "\"x^3 + x*y^2 + y\" (+ - * / ^, parentheses, integers; / multiplies by the inverse)")


@lru_cache(maxsize=16)
def _table(expression: str, p: int) -> Table:
    x, y = pairs(p)
    z, ok = parse(expression).evaluate(x, y, p)
    return x[ok], y[ok], z[ok]


def _check(params: dict) -> None:
    e = parse(params.get("expression", ""))
    p = params["modulus"]
    if p < 2:
        raise ConfigError(f"modulus {p} is too small; task 'custom' needs a modulus >= 2")
    if e.divides and not is_prime(p):
        raise ConfigError(f"modulus {p} is not prime; expression {e.text!r} divides, which needs a prime modulus")
    if len(_table(e.text, p)[0]) < 2:
        raise ConfigError(f"expression {e.text!r} is defined at fewer than 2 pairs mod {p}")


def canonical_expression(text: str) -> str:
    """An expression's canonical spelling (what a run's config keeps and its identity hashes)."""
    return parse(text).text


def _describe(params: dict) -> str:
    return f"{canonical_expression(params['expression'])} mod p" if params.get("expression") else CUSTOM.equation


CUSTOM = Task("custom", "your formula in x and y mod p (--expression)", True, fields=(EXPRESSION,),
              build=lambda ps: _table(canonical_expression(ps["expression"]), ps["modulus"]),
              symbols=lambda ps: ps["modulus"], check=_check, describe=_describe,
              canonical=lambda ps: {"expression": canonical_expression(ps["expression"])},
              monomial=lambda ps: parse(ps["expression"]).monomial() if ps.get("expression") else None)
