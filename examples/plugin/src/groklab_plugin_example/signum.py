"""Signum (Bernstein et al. 2018, "signSGD: Compressed Optimisation for Non-Convex Problems"): each weight moves by
the learning rate times the sign of its gradient's momentum; weight decay is decoupled, as AdamW's.

``--optimizer signum --signum-beta 0.9``. One object, ``SIGNUM``: its state (the momentum), its update over a
group's flat buffers (every run a row, its settings (E, 1) columns), its one setting.
"""

from __future__ import annotations

from groklab.fields import Field
from groklab.lazy import lazy
from groklab.rules.spec import UpdateRule

torch = lazy("torch")  # imported at the first update, not when groklab lists its flags

BETA = Field("signum_beta", 0.9, "optimizer signum: momentum of the gradient whose sign is the step, in [0, 1)",
             min=0.0, lt=1.0)


def signum(p: torch.Tensor, g: torch.Tensor, state: dict, hp, lr: torch.Tensor, step: torch.Tensor) -> None:
    """m <- beta m + (1 - beta) g; p <- p - lr sign(m). ``p``, ``g``, ``state["exp_avg"]``: (E, P); ``lr``,
    ``hp["signum_beta"]``: (E, 1)."""
    m = state["exp_avg"]
    m.lerp_(g, 1 - hp["signum_beta"])
    p.sub_(lr * torch.sign(m))


SIGNUM = UpdateRule("signum", "the sign of the gradient's momentum (Bernstein et al. 2018)", decoupled=True,
                    state=("exp_avg",), update=signum, fields=(BETA,))
