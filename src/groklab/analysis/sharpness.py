"""Flatness of the training loss at a model's weights: the top Hessian eigenvalue (power iteration with
Hessian-vector products, no Hessian built) and the mean loss rise under random weight perturbations.

The paper (Power et al. 2022, appendix) finds sharpness measures the most predictive of generalization; a
network that groks moves to flatter minima as it does (`groklab analyze` draws these over its snapshots).

    >>> lam = top_hessian_eigenvalue(model, x, y, z)            # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..fields import Field
from ..lazy import lazy
from ..losses import get_loss, loss_dtype
from .spec import Analysis, Series, Snapshot

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

SHARPNESS_EXAMPLES = 512  # training examples the sharpness is measured on (groklab analyze and report alike)
SHARPNESS_ITERS = 50  # power iterations for the top Hessian eigenvalue
EXAMPLES = Field("sharpness_examples", SHARPNESS_EXAMPLES, "training examples the sharpness is measured on", min=1)
ITERS = Field("sharpness_iters", SHARPNESS_ITERS, "power iterations for the top Hessian eigenvalue", min=1)


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


def perturbation_sharpness(model, x: Tensor, y: Tensor, z: Tensor, relative: float = 0.05, samples: int = 8,
                           seed: int = 0, loss: str = "cross_entropy", precision: str = "auto") -> float:
    """Mean rise of the loss (``loss`` in ``precision``) when every parameter tensor W gets Gaussian noise of norm
    ``relative * |W|`` (so the measure does not change when a layer is rescaled), over ``samples`` seeded draws."""
    with torch.no_grad():
        return _perturbed(model, x, y, z, relative, samples, seed, loss, precision)


def _perturbed(model, x, y, z, relative: float, samples: int, seed: int, loss: str, precision: str) -> float:
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


# -- the analysis ------------------------------------------------------------------------------------------------


def _measure(snap: Snapshot, keys) -> dict:
    d = snap.data
    rows = d.sharpness_rows(snap.options["sharpness_examples"])
    xs = d.table.operands(rows)  # operand symbols, or a vector task's input vectors
    return {"sharpness": top_hessian_eigenvalue(snap.model, xs, d.y[rows], d.z[rows],
                                                iters=snap.options["sharpness_iters"], **snap.loss),
            "perturbed_loss_rise": perturbation_sharpness(snap.model, xs, d.y[rows], d.z[rows], **snap.loss)}


def _panel(ax, steps, snaps, result) -> None:
    ax.plot(steps, [max(r["sharpness"], 1e-12) for r in snaps], "o-", ms=3, color="tab:red", label="top Hessian eig.")
    twin = ax.twinx()
    twin.plot(steps, [r["perturbed_loss_rise"] for r in snaps], "s--", ms=3, color="tab:gray",
              label="loss rise, 5% weight noise")
    ax.set(yscale="log", ylabel="top Hessian eigenvalue",
           title=f"sharpness ({result['sharpness_examples']} training examples)")
    twin.set_yscale("symlog", linthresh=1e-4)
    twin.set_ylabel("loss rise")
    twin.legend(loc="upper right", fontsize=7)


SHARPNESS = Analysis(
    "sharpness", "flatness of the training loss: the top Hessian eigenvalue and the loss rise under 5% weight noise "
    "(the paper's appendix)",
    applies=lambda cfg: True, measure=_measure,
    summary=lambda rows, keys, snap: {"sharpness": rows[-1]["sharpness"], "sharpness_examples": int(min(
        snap.options["sharpness_examples"], int(snap.data.train.sum())))},
    lines=lambda r: [f"sharpness {r['sharpness']:.3g} (top Hessian eigenvalue, {r['sharpness_examples']} training "
                     "examples)"],
    series=(Series("sharpness", "top Hessian eigenvalue"), Series("perturbed_loss_rise", "loss rise, 5% weight noise")),
    panel=_panel, fields=(EXAMPLES, ITERS))
