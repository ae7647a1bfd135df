"""Muon (Jordan et al. 2024; ``torch.optim.Muon``): the hidden weight matrices move along the orthogonalized
(Newton-Schulz) momentum of their gradients; everything else (embeddings, the unembedding, vectors) by AdamW.
Which parameters are matrices, and how each is read as one, the model declares (``ParamInit.matrix``)."""

from __future__ import annotations

import functools
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


def muon(p: Tensor, g: Tensor, state: dict[str, Tensor], hp, lr: Tensor, step: Tensor,
         params, target: Tensor | None) -> None:
    """Muon for the matrices, as torch.optim.Muon's code (momentum ``B <- lerp(B, g, 1 - mu)``, Nesterov
    ``lerp(g, B, mu)``, Newton-Schulz, decoupled decay ``lr_m * wd``, step ``lr_m * sqrt(max(1, out / in))``;
    ``lr_m`` = ``muon_lr`` with the warm-up), and AdamW (``lr``) for everything else, vectorized over runs."""
    warm = lr / hp["lr"]  # the warm-up factor of this update, (E, 1)
    lr_m, wd, mu = (hp["muon_lr"] * warm)[:, :, None], hp["weight_decay"], hp["muon_momentum"]
    buf = state["exp_avg"]
    matrices: dict[tuple[int, int], list] = {}  # matrices of one shape share one batched Newton-Schulz call
    for name, (a, b) in zip(params.names, params.segments):
        tgt = None if target is None else target[:, a:b]
        matrix = params.matrix[name]
        if matrix is None:
            seg = {k: state[k][:, a:b] for k in ("exp_avg", "exp_avg_sq")}
            apply_decay(p[:, a:b], g[:, a:b], lr, wd, tgt, True)
            adam(p[:, a:b], g[:, a:b], seg, hp, lr, step)
            continue
        gs, bs = g[:, a:b], buf[:, a:b]
        bs.lerp_(gs, 1 - mu)
        update = as_matrix(gs.lerp(bs, mu.expand_as(bs)).view(p.shape[0], *params.shapes[name]), matrix)
        apply_decay(p[:, a:b], gs, lr_m[:, :, 0], wd, tgt, True)
        matrices.setdefault(tuple(update.shape[1:]), []).append((name, a, b, update))
    for (n_in, n_out), items in matrices.items():
        O = newton_schulz(torch.stack([u for *_, u in items]))  # (k, E, in, out)
        scale = lr_m * max(1.0, n_out / n_in) ** 0.5
        for (name, a, b, _), o in zip(items, O):
            step_m = (scale * o).reshape(p.shape[0], -1)
            index = _index(params.shapes[name], params.matrix[name], str(p.device))
            if index is not None:  # back to the parameter's layout
                step_m = torch.empty_like(step_m).index_copy_(1, index, step_m)
            p[:, a:b].sub_(step_m)


MUON = UpdateRule("muon", "Muon for the hidden matrices, AdamW for the rest", True, ("exp_avg", "exp_avg_sq"), muon,
                  (*ADAM_FIELDS, LR, MOMENTUM), layout=True)
