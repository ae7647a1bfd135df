"""Flatness (``analysis.sharpness``): the top Hessian eigenvalue against a Hessian built directly, and the
loss rise under weight noise."""

import pytest
import torch
import torch.nn.functional as F

from groklab import RunConfig
from groklab.analysis import sharpness
from groklab.models import Model, get_model


def _tiny_model(seed=0):
    cfg = RunConfig(task="add", modulus=5, d_model=8, n_heads=2, d_mlp=8, n_layers=1)
    spec = get_model("transformer")
    params = spec.init(spec.config(cfg, 5), [seed])
    return Model(spec, spec.config(cfg, 5), {k: v[0] for k, v in params.items()}), cfg


def test_top_hessian_eigenvalue_matches_a_direct_hessian_on_a_tiny_model():
    model, _ = _tiny_model()
    x, y = (t.flatten() for t in torch.meshgrid(torch.arange(5), torch.arange(5), indexing="ij"))
    z = (x + y) % 5
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat0 = torch.cat([p.detach().flatten() for p in model.parameters()]).double()

    def loss_of(flat):
        params, i = {}, 0
        for n, s in zip(names, shapes):
            params[n.split(".", 1)[1].replace("__", ".")] = flat[i: i + s.numel()].view(s).unsqueeze(0)
            i += s.numel()
        logits = model.spec.answer_logits(params, x[None], y[None], model.cfg)[0]
        return F.cross_entropy(logits, z)

    H = torch.autograd.functional.hessian(loss_of, flat0)
    eig = torch.linalg.eigvalsh(H)
    want = eig[eig.abs().argmax()].item()
    model.double()
    got = sharpness.top_hessian_eigenvalue(model, x, y, z, iters=500, tol=1e-10)
    assert got == pytest.approx(want, rel=1e-4)


def test_perturbation_sharpness_restores_the_weights_and_is_zero_without_noise():
    model, _ = _tiny_model()
    x, y = torch.arange(5), torch.arange(5)
    before = [p.detach().clone() for p in model.parameters()]
    assert sharpness.perturbation_sharpness(model, x, y, (x + y) % 5, relative=0.0) == 0.0
    assert sharpness.perturbation_sharpness(model, x, y, (x + y) % 5, relative=0.5) != 0.0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
