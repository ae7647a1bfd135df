"""Update rules by name (``RULES``): the base optimizers ``RunConfig.optimizer`` chooses.

A rule is an ``UpdateRule`` (``rules.spec``) in a module of this package or of a plugin package (entry points of
group ``groklab.update_rules``); its fields become RunConfig fields and flags, meaningful only for runs that use
it. The engine's optimizer (``groklab.optim``) applies it to a group's flat buffers with the interventions around
it.
"""

from __future__ import annotations

from ..registry import Registry
from .spec import UpdateRule, apply_decay, as_matrix

RULES: Registry[UpdateRule] = Registry("update rule", UpdateRule, __name__, "groklab.update_rules",
                                       selector="optimizer", first=("adam", "sgd", "muon"))

__all__ = ["RULES", "UpdateRule", "apply_decay", "as_matrix", "get_rule"]


def get_rule(name: str) -> UpdateRule:
    """The registered update rule of that name; an unknown name is refused in one line with a did-you-mean."""
    return RULES[name]
