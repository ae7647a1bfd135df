"""Flatness of the training loss at a model's weights: the top Hessian eigenvalue (power iteration with
Hessian-vector products, no Hessian built) and the mean loss rise under random weight perturbations.

The paper (Power et al. 2022, appendix) finds sharpness measures the most predictive of generalization; a
network that groks moves to flatter minima as it does (`groklab analyze` draws these over its snapshots).

>>> lam = top_hessian_eigenvalue(model, x, y, z)            # doctest: +SKIP
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..losses import get_loss, loss_dtype

SHARPNESS_EXAMPLES = 512  # training examples the sharpness is measured on (groklab analyze and report alike)
SHARPNESS_ITERS = 50  # power iterations for the top Hessian eigenvalue


def _loss(model, x: Tensor, y: Tensor, z: Tensor, loss: str, precision: str) -> Tensor:
    """The run's mean training loss on (x, y) -> z: its loss function (``losses.get_loss``) in its precision."""
    logits = model.answer_logits(x, y).to(loss_dtype(loss, precision))
    return get_loss(loss)(logits.unsqueeze(0), z.unsqueeze(0)).mean()


def top_hessian_eigenvalue(model, x: Tensor, y: Tensor, z: Tensor, iters: int = 50, tol: float = 1e-4,
                           seed: int = 0, loss: str = "cross_entropy", precision: str = "auto") -> float:
    """The largest-magnitude eigenvalue of the Hessian of the mean loss (``loss`` in ``precision``: the run's
    ``RunConfig.loss`` and ``loss_precision``) on (x, y) -> z with respect to every parameter of ``model`` (a
    ``groklab.models.Model``), by power iteration: ``v <- Hv / |Hv|`` from a seeded random start, stopping when
    the Rayleigh quotient changes by less than ``tol`` (relative). At a minimum the Hessian is (nearly) positive
    semi-definite and this is its top eigenvalue, the usual sharpness."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(_loss(model, x, y, z, loss, precision), params, create_graph=True)
    g = torch.Generator().manual_seed(seed)
    v = [torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device) for p in params]
    norm = torch.sqrt(sum((t * t).sum() for t in v))
    v = [t / norm for t in v]
    value = 0.0
    for i in range(iters):
        hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)
        new = float(sum((a * b).sum() for a, b in zip(hv, v)))
        norm = torch.sqrt(sum((t * t).sum() for t in hv))
        if norm == 0:
            return 0.0
        v = [t / norm for t in hv]
        if i > 0 and abs(new - value) <= tol * max(abs(new), 1e-12):
            return new
        value = new
    return value


@torch.no_grad()
def perturbation_sharpness(model, x: Tensor, y: Tensor, z: Tensor, relative: float = 0.05, samples: int = 8,
                           seed: int = 0, loss: str = "cross_entropy", precision: str = "auto") -> float:
    """Mean rise of the loss (``loss`` in ``precision``) when every parameter tensor W gets Gaussian noise of norm
    ``relative * |W|`` (so the measure does not change when a layer is rescaled), over ``samples`` seeded draws."""
    params = [p for p in model.parameters()]
    base = _loss(model, x, y, z, loss, precision).item()
    saved = [p.detach().clone() for p in params]
    g = torch.Generator().manual_seed(seed)
    rises = []
    try:
        for _ in range(samples):
            for p, w in zip(params, saved):
                n = torch.randn(w.shape, generator=g, dtype=w.dtype).to(w.device)
                p.copy_(w + n * (relative * w.norm() / n.norm().clamp_min(1e-12)))
            rises.append(_loss(model, x, y, z, loss, precision).item() - base)
    finally:
        for p, w in zip(params, saved):
            p.copy_(w)
    return float(sum(rises) / len(rises))
