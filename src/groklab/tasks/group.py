"""Composition in any small finite group: ``--task group --group D6 [--group-op conj]``, the answer ``x . y`` (or
``x . y . x^-1``) for every pair of elements (``groklab.groups``: symmetric, alternating, dihedral, cyclic groups
and their direct products; elements written readably).
"""

from __future__ import annotations

from ..errors import ConfigError
from ..fields import Field
from ..groups import GROUP_OPS, check_group, get_group, group_order
from .spec import Table, Task, pairs

GROUP = Field("group", "", "task group: S3-S6, A4-A6, D3-D30, Z<n>, or a product such as Z4xZ6")
GROUP_OP = Field("group_op", "mul", "task group: the answer x . y (mul) or x . y . x^-1 (conj)", choices=GROUP_OPS)


def _table(params: dict) -> Table:
    g = get_group(params["group"])
    x, y = pairs(g.order)
    return x, y, g.answers(x, y, params.get("group_op", "mul"))


def _check(params: dict) -> None:
    check_group(params.get("group", ""))
    if params.get("group_op", "mul") not in GROUP_OPS:
        raise ConfigError(f"group_op {params['group_op']!r} is not allowed; allowed: {', '.join(GROUP_OPS)}")


def _labels(params: dict) -> dict[str, list]:
    """How the pictures colour a group's elements: by conjugacy class (by element order in an abelian group,
    where every class is one element)."""
    g = get_group(params["group"])
    if g.abelian:
        return {"element order": [f"order {n}" for n in g.element_orders()]}
    return {"conjugacy class": [f"class of {g.name(c)}" for c in g.conjugacy_classes()]}


def _describe(params: dict) -> str:
    if not params.get("group"):
        return GROUP_TASK.equation
    op = "x . y . x^-1" if params.get("group_op") == "conj" else "x . y"
    return f"{op} in {params['group']}"


GROUP_TASK = Task("group", "x . y (or x . y . x^-1) in a finite group (--group, --group-op)", False,
                  fields=(GROUP, GROUP_OP), build=_table, symbols=lambda ps: group_order(ps["group"]),
                  symbol_name=lambda ps, s: get_group(ps["group"]).name(s), check=_check, describe=_describe,
                  labels=_labels,
                  group=lambda ps: (ps["group"], ps.get("group_op", "mul")) if ps.get("group") else None)
