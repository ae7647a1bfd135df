"""Muon (Jordan et al. 2024; ``torch.optim.Muon``): the hidden weight matrices move along the orthogonalized
(Newton-Schulz) momentum of their gradients; everything else (embeddings, the unembedding, vectors) by AdamW.
Which parameters are matrices, and how each is read as one, the model declares (``ParamInit.matrix``)."""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

from ..fields import Field
from ..lazy import lazy
from .adam import ADAM_FIELDS, adam
from .spec import UpdateRule, apply_decay, as_matrix, from_matrix_index

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

LR = Field("muon_lr", 0.02, "optimizer muon: learning rate of the matrices (Muon); the rest use lr (AdamW)", gt=0.0)
MOMENTUM = Field("muon_momentum", 0.95, "optimizer muon: Muon's (Nesterov) momentum, in [0, 1)", min=0.0, lt=1.0)
NS = (3.4445, -4.7750, 2.0315)  # Newton-Schulz coefficients (a, b, c), as torch.optim.Muon
NS_STEPS, EPS = 5, 1e-7


def newton_schulz(G: Tensor, steps: int = NS_STEPS, eps: float = EPS) -> Tensor:
    """The approximately orthogonal factor of each matrix of ``G`` (..., A, B), as torch.optim.Muon computes it
    (``X = G / max(||G||_F, eps)``, then ``steps`` times ``X <- a X + (b X X^T + c (X X^T)^2) X`` on the wide
    side), batched over the leading axes and in float32 (PyTorch's runs in bfloat16)."""
    a, b, c = NS
    X = G / G.flatten(-2).norm(dim=-1).clamp(min=eps)[..., None, None]
    tall = G.shape[-2] > G.shape[-1]
    if tall:
        X = X.transpose(-2, -1)
    for _ in range(steps):
        A = X @ X.transpose(-2, -1)
        X = a * X + (b * A + c * A @ A) @ X
    return X.transpose(-2, -1) if tall else X


@functools.cache
def _index(shape: tuple[int, ...], matrix, device: str):
    return from_matrix_index(shape, matrix, device)


def matrices_apart(p: Tensor, g: Tensor, state: dict[str, Tensor], hp, lr: Tensor, step: Tensor, params,
                   target: Tensor | None, lr_m: Tensor, direction) -> None:
    """The shape of Muon-like rules, vectorized over runs: every parameter its model declares a matrix moves by
    ``lr_m`` (E, 1) times ``direction(batch, gradients, buffers)`` with decoupled weight decay ``lr_m * wd``, and
    every other parameter (embeddings, the unembedding, vectors) by AdamW at ``lr``. ``direction`` receives the
    (inputs, outputs) of the matrices of one shape and their views ``(name, a, b, shape, matrix)``, with the
    gradients and the state, and returns their step directions stacked, (k, E, in, out), and a number they are
    multiplied by (with ``lr_m``); matrices of one shape share one call."""
    wd = hp["weight_decay"]
    matrices: dict[tuple[int, int], list] = {}
    for name, (a, b) in zip(params.names, params.segments):
        tgt = None if target is None else target[:, a:b]
        matrix = params.matrix[name]
        if matrix is None:
            seg = {k: state[k][:, a:b] for k in ("exp_avg", "exp_avg_sq")}
            apply_decay(p[:, a:b], g[:, a:b], lr, wd, tgt, True)
            adam(p[:, a:b], g[:, a:b], seg, hp, lr, step)
            continue
        apply_decay(p[:, a:b], g[:, a:b], lr_m, wd, tgt, True)
        shape = params.shapes[name]
        side = tuple(math.prod(shape[i] for i in axes) for axes in matrix)  # (inputs, outputs)
        matrices.setdefault(side, []).append((name, a, b))
    for side, items in matrices.items():
        views = [(name, a, b, params.shapes[name], params.matrix[name]) for name, a, b in items]
        O, factor = direction(side, views, g, state)  # (k, E, in, out), a number
        scale = lr_m[:, :, None] * factor
        for (name, a, b), o in zip(items, O):
            step_m = (scale * o).reshape(p.shape[0], -1)
            index = _index(params.shapes[name], params.matrix[name], str(p.device))
            if index is not None:  # back to the parameter's layout
                step_m = torch.empty_like(step_m).index_copy_(1, index, step_m)
            p[:, a:b].sub_(step_m)


def warmed(hp, lr: Tensor, name: str) -> Tensor:
    """A matrices' learning rate setting ``name`` with this update's warm-up, (E, 1)."""
    return hp[name] * (lr / hp["lr"])


def muon(p: Tensor, g: Tensor, state: dict[str, Tensor], hp, lr: Tensor, step: Tensor,
         params, target: Tensor | None) -> None:
    """Muon for the matrices, as torch.optim.Muon's code (momentum ``B <- lerp(B, g, 1 - mu)``, Nesterov
    ``lerp(g, B, mu)``, Newton-Schulz, decoupled decay ``lr_m * wd``, step ``lr_m * sqrt(max(1, out / in))``;
    ``lr_m`` = ``muon_lr`` with the warm-up), and AdamW (``lr``) for everything else, vectorized over runs."""
    mu = hp["muon_momentum"]

    def direction(shape, views, g, state):
        updates = []
        for name, a, b, pshape, matrix in views:
            gs, bs = g[:, a:b], state["exp_avg"][:, a:b]
            bs.lerp_(gs, 1 - mu)
            updates.append(as_matrix(gs.lerp(bs, mu.expand_as(bs)).view(g.shape[0], *pshape), matrix))
        n_in, n_out = shape
        return newton_schulz(torch.stack(updates)), max(1.0, n_out / n_in) ** 0.5

    matrices_apart(p, g, state, hp, lr, step, params, target, warmed(hp, lr, "muon_lr"), direction)


MUON = UpdateRule("muon", "Muon for the hidden matrices, AdamW for the rest", True, ("exp_avg", "exp_avg_sq"), muon,
                  (*ADAM_FIELDS, LR, MOMENTUM), layout=True)
