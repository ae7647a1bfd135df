"""Gradient transforms against the published formulas."""

import torch

from groklab.interventions import GRAD_TRANSFORMS, active_transforms
from groklab.optim import FlatParams, HyperParams, Optimizer


def lee_gradfilter_ema(grads, current, alpha, lamb):
    """Lee et al. 2024 (Grokfast), gradfilter_ema, transcribed for one tensor: the average starts at the
    first gradient (``grads is None``), then ``grads = grads * alpha + g * (1 - alpha)``, ``g += lamb * grads``."""
    if grads is None:
        grads = current.clone()
    grads = grads * alpha + current * (1 - alpha)
    return grads, current + grads * lamb


def test_grokfast_ema_follows_lee_et_al_per_run_in_a_group():
    gen = torch.Generator().manual_seed(0)
    t = GRAD_TRANSFORMS["grokfast_ema"]
    alphas, lambs = [0.98, 0.5, 0.9], [2.0, 5.0, 0.0]
    hp = {"grokfast_alpha": torch.tensor([[a] for a in alphas]), "grokfast_lamb": torch.tensor([[v] for v in lambs])}
    state = t.init(torch.zeros(3, 20))
    refs = [None] * 3
    for step in range(6):
        g = torch.randn(3, 20, generator=gen)
        out = t.apply(g.clone(), state, hp, [step] * 3)
        for e in range(3):
            refs[e], want = lee_gradfilter_ema(refs[e], g[e], alphas[e], lambs[e])
            torch.testing.assert_close(out[e], want, rtol=1e-6, atol=1e-6)
        assert torch.equal(out[2], g[2])  # lamb 0: the run's gradient is untouched


def test_grokfast_in_the_optimizer_first_update_is_one_plus_lamb_times_the_gradient():
    """SGD without momentum: the first update with Grokfast-EMA is (1 + lamb) times the plain one."""
    params = FlatParams({"w": torch.zeros(2, 5)})
    hp = HyperParams({"lr": [0.1, 0.1], "weight_decay": [0.0, 0.0], "beta1": [0.9] * 2, "beta2": [0.98] * 2,
                      "eps": [1e-8] * 2, "momentum": [0.0] * 2, "warmup_steps": [1.0] * 2,
                      "grokfast_lamb": [3.0, 0.0], "grokfast_alpha": [0.98, 0.98]})
    opt = Optimizer("sgd", params, hp, [False, False], [GRAD_TRANSFORMS["grokfast_ema"]])
    params.grad.fill_(1.0)
    opt.step()
    torch.testing.assert_close(params.flat[0], torch.full((5,), -0.4))
    torch.testing.assert_close(params.flat[1], torch.full((5,), -0.1))


def test_only_transforms_some_run_switches_on_are_active():
    from groklab import RunConfig

    assert active_transforms([RunConfig(modulus=7)]) == []
    assert [t.name for t in active_transforms([RunConfig(modulus=7), RunConfig(modulus=7, grokfast_lamb=2.0)])] == [
        "grokfast_ema"]


def test_transform_state_names_do_not_collide():
    names = [k for t in GRAD_TRANSFORMS.values() for k in t.init(torch.zeros(1, 2))]
    assert len(names) == len(set(names)) and not {"exp_avg", "exp_avg_sq", "decay_target", "step_count"} & set(names)
