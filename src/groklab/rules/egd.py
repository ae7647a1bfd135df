"""Egalitarian Gradient Descent (Saheb Pasand and Dohmatob, "Egalitarian Gradient Descent: A Simple Approach to
Accelerated Grokking", arXiv 2510.04930, ICLR 2026): each weight matrix's gradient ``G`` is replaced by
``(G G^T)^(-1/2) G = U V^T`` (from its singular value decomposition ``G = U S V^T``: every principal direction
moves at the same speed), with the Moore-Penrose inverse where ``G`` is rank-deficient (directions whose singular
value is at most ``egd_rtol`` times the largest are left out). It is Muon (``rules/muon.py``) without momentum and
with the exact orthogonal factor instead of Newton-Schulz's approximation.

Which parameters are weight matrices, and how each is read as one, the model declares (``ParamInit.matrix``: the
hidden matrices); the embeddings, the unembedding and the vectors move by AdamW at ``lr``, as Muon's do. The
matrices move by ``egd_lr`` (with the warm-up) and their weight decay is decoupled (``egd_lr * weight_decay``).
Every run of a stacked group is decomposed on its own: the SVD is batched over runs and matrices of one shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..fields import Field
from ..lazy import lazy
from .adam import ADAM_FIELDS
from .muon import matrices_apart, warmed
from .spec import UpdateRule, as_matrix

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

LR = Field("egd_lr", 0.01, "optimizer egd: learning rate of the weight matrices (their gradients' U V^T); the rest "
           "use lr (AdamW)", gt=0.0)
RTOL = Field("egd_rtol", 1e-6, "optimizer egd: singular values at most this times the largest count as zero (the "
             "Moore-Penrose inverse of a rank-deficient gradient)", min=0.0, lt=1.0)


def orthogonal_factor(G: Tensor, rtol: Tensor | float) -> Tensor:
    """``U V^T`` of each matrix of ``G`` (..., A, B), the directions of singular values at most ``rtol`` times the
    matrix's largest left out (a zero matrix stays zero). ``rtol``: a number, or a tensor broadcasting against
    ``G``'s leading axes with two trailing ones of size 1.

    Computed as the paper writes it, ``(G G^T)^(-1/2) G`` on the smaller side, from the eigendecomposition of the
    Gram matrix in float64 (its eigenvalues are the squared singular values, so float64 keeps directions down to
    about 1e-7 of the largest); an SVD of the gradient gives the same factor and took 3-10x longer on the CPU."""
    wide = G.shape[-2] <= G.shape[-1]
    X = (G if wide else G.transpose(-2, -1)).double()
    lam, Q = torch.linalg.eigh(X @ X.transpose(-2, -1))  # ascending eigenvalues: squared singular values
    tol = (rtol if isinstance(rtol, float) else rtol[..., 0].double()) ** 2 * lam[..., -1:]
    inv_sqrt = torch.where((lam > tol) & (lam > 0), lam.clamp(min=1e-300).rsqrt(), torch.zeros_like(lam))
    out = (Q * inv_sqrt[..., None, :]) @ (Q.transpose(-2, -1) @ X)
    out = out if wide else out.transpose(-2, -1)
    return out.to(G.dtype)


def egd(p: Tensor, g: Tensor, state: dict[str, Tensor], hp, lr: Tensor, step: Tensor,
        params, target: Tensor | None) -> None:
    """EGD for the weight matrices (``p <- p - egd_lr * U V^T`` of each run's gradient, decoupled decay), AdamW
    (``lr``) for everything else, vectorized over runs."""
    rtol = hp["egd_rtol"][None, :, :, None]  # (1, E, 1, 1): each run's own

    def direction(side, views, g, state):
        G = torch.stack([as_matrix(g[:, a:b].view(g.shape[0], *shape), matrix) for _, a, b, shape, matrix in views])
        return orthogonal_factor(G, rtol), 1.0

    matrices_apart(p, g, state, hp, lr, step, params, target, warmed(hp, lr, "egd_lr"), direction)


EGD = UpdateRule("egd", "Egalitarian Gradient Descent for the weight matrices (U V^T of each gradient), AdamW for the "
                 "rest", True, ("exp_avg", "exp_avg_sq"), egd, (*ADAM_FIELDS, LR, RTOL), layout=True)
