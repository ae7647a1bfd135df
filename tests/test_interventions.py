"""Interventions against their definitions: Grokfast-EMA, update (gradient) noise, weight noise, label noise, L2."""

import pytest
import torch

from groklab import RunConfig
from groklab.engine import Group
from groklab.interventions import INTERVENTIONS, StepContext, active_transforms
from groklab.losses import l2_penalty
from groklab.optim import FlatParams, HyperParams, Optimizer

SMALL = dict(task="add", modulus=11, train_fraction=0.8, d_model=32, n_heads=4, d_mlp=64, lr=3e-3, steps=100,
             early_stop=False)


def lee_gradfilter_ema(grads, current, alpha, lamb):
    """Lee et al. 2024 (Grokfast), gradfilter_ema, transcribed for one tensor: the average starts at the
    first gradient (``grads is None``), then ``grads = grads * alpha + g * (1 - alpha)``, ``g += lamb * grads``."""
    if grads is None:
        grads = current.clone()
    grads = grads * alpha + current * (1 - alpha)
    return grads, current + grads * lamb


def test_grokfast_ema_follows_lee_et_al_per_run_in_a_group():
    gen = torch.Generator().manual_seed(0)
    t = INTERVENTIONS["grokfast_ema"]
    alphas, lambs = [0.98, 0.5, 0.9], [2.0, 5.0, 0.0]
    hp = {"grokfast_alpha": torch.tensor([[a] for a in alphas]), "grokfast_lamb": torch.tensor([[v] for v in lambs])}
    state = t.init(torch.zeros(3, 20), None)
    refs = [None] * 3
    for step in range(6):
        g = torch.randn(3, 20, generator=gen)
        out = t.apply(g.clone(), state, hp, StepContext([step] * 3))
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
    opt = Optimizer("sgd", params, hp, [False, False], [INTERVENTIONS["grokfast_ema"]])
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
    hp = HyperParams({"grokfast_ma_window": [3.0]})
    names = [k for t in INTERVENTIONS.values() for k in t.init(torch.zeros(1, 2), hp)]
    assert len(names) == len(set(names)) and not {"exp_avg", "exp_avg_sq", "decay_target", "step_count"} & set(names)


# -- gradient (update) noise ------------------------------------------------------------------------


def _hp(n, **over):
    base = {"lr": 0.01, "weight_decay": 0.0, "beta1": 0.9, "beta2": 0.98, "eps": 1e-8, "momentum": 0.0,
            "warmup_steps": 10.0, "grad_noise": 0.0}
    return HyperParams({k: [float(over.get(k, v))] * n if not isinstance(over.get(k), list) else over[k]
                        for k, v in base.items()})


def _after_steps(kind, grad_noise, n_steps, P=40_000):
    torch.manual_seed(0)
    grads = [torch.randn(2, P) for _ in range(n_steps)]
    params = FlatParams({"w": torch.zeros(2, P)})
    gens = [torch.Generator().manual_seed(s) for s in (11, 12)]
    opt = Optimizer(kind, params, _hp(2, grad_noise=grad_noise), [False, False],
                    active_transforms([RunConfig(modulus=7, grad_noise=max(grad_noise))]), generators=gens)
    for g in grads:
        params.grad.copy_(g)
        before = params.flat.clone()
        opt.step()
    return before, params.flat.clone()


@pytest.mark.parametrize("kind", ["adamw", "sgd"])
def test_update_noise_moves_the_weights_by_step_size_times_the_stated_std(kind):
    sigma = [0.0, 0.5]
    for n_steps in (1, 3):
        before_plain, plain = _after_steps(kind, [0.0, 0.0], n_steps)
        before_noisy, noisy = _after_steps(kind, sigma, n_steps)
        # the run without noise is bit for bit the plain run, beside a run with noise
        assert torch.equal(noisy[0], plain[0])
        lr_t = 0.01 * min(n_steps / 10, 1.0)  # warm-up over 10 updates
        step_size = lr_t / (1 - 0.9 ** n_steps) if kind == "adamw" else lr_t
        # the gradients are given, so both runs' base updates agree: the last update differs by
        # -step_size * N(0, 0.5^2)
        extra = (noisy[1] - before_noisy[1]) - (plain[1] - before_plain[1])
        assert abs(extra.std().item() / step_size - 0.5) < 0.01
        assert abs(extra.mean().item() / step_size) < 0.01


def test_zero_gradient_noise_is_bitwise_the_plain_run_in_a_group():
    a = RunConfig(**SMALL)
    plain = Group.build([a, a.replace(seed=1)])
    noisy = Group.build([a, a.replace(seed=1, grad_noise=0.1)])
    for _ in range(4):
        plain.step()
        noisy.step()
    assert torch.equal(plain.params.flat[0], noisy.params.flat[0])
    assert not torch.equal(plain.params.flat[1], noisy.params.flat[1])


def test_noise_of_a_run_is_its_own_alone_or_in_a_group():
    """A run with gradient and weight noise makes the same updates alone and beside another run."""
    a = RunConfig(**SMALL, grad_noise=1.0, weight_noise=0.05)
    groups = [Group.build([a]), Group.build([a, a.replace(seed=4, weight_noise=0.0, grad_noise=0.2)]),
              Group.build([a.replace(grad_noise=0.0, weight_noise=0.0)])]
    for _ in range(3):
        for g in groups:
            g.step()
    alone, pair, quiet = (g.params.flat[0] for g in groups)
    effect = (alone - quiet).abs().max()
    assert effect > 1e-3
    # only batched-matmul rounding (amplified where Adam divides by a tiny second moment) tells them apart
    assert (pair - alone).abs().max() < 0.05 * effect and (pair - alone).abs().mean() < 1e-3 * effect


# -- weight noise --------------------------------------------------------------------------------


def test_weight_noise_acts_in_the_update_only_and_leaves_stored_weights_and_evaluation_clean():
    cfg = RunConfig(**SMALL)
    g_plain, g_noisy = Group.build([cfg]), Group.build([cfg.replace(weight_noise=0.05)])
    stored = g_noisy.params.flat.clone()
    # the weights the update sees: stored + N(0, 0.05^2), drawn afresh each update
    t = INTERVENTIONS["weight_noise"]
    ctx = StepContext([0], [torch.Generator().manual_seed(0)], segments=g_noisy.params.segments)
    seen = t.apply(g_noisy.params.views, {}, g_noisy.opt.hp, ctx)
    diff = torch.cat([(seen[k] - v).flatten() for k, v in g_noisy.params.views.items()])
    assert abs(diff.std().item() - 0.05) < 0.003
    assert torch.equal(g_noisy.params.flat, stored)  # drawing noisy weights never touches the stored ones
    # evaluation uses the clean weights: the same numbers as the run without weight noise
    assert g_noisy.evaluate() == g_plain.evaluate()
    g_plain.step()
    g_noisy.step()
    assert not torch.equal(g_plain.params.flat, g_noisy.params.flat)  # the gradient was taken at noisy weights
    assert g_noisy.evaluate() == g_noisy.evaluate()  # no noise at evaluation


# -- label noise ---------------------------------------------------------------------------------


# -- L2 ------------------------------------------------------------------------------------------


def test_l2_penalty_is_half_l2_times_the_squared_norm_and_its_gradient_l2_w():
    w = {"a": torch.randn(2, 3, 4, requires_grad=True), "b": torch.randn(2, 5, requires_grad=True)}
    l2 = torch.tensor([0.5, 0.0])
    pen = l2_penalty(w, l2)
    sq0 = w["a"][0].pow(2).sum() + w["b"][0].pow(2).sum()
    torch.testing.assert_close(pen, 0.25 * sq0)
    pen.backward()
    torch.testing.assert_close(w["a"].grad[0], 0.5 * w["a"][0].detach())
    assert torch.equal(w["b"].grad[1], torch.zeros(5))


def test_l2_in_the_loss_adds_l2_w_to_the_gradient_of_that_run_only():
    cfg = RunConfig(**{**SMALL, "optimizer": "sgd", "lr": 0.1, "weight_decay": 0.0, "warmup_steps": 0})
    plain = Group.build([cfg, cfg.replace(seed=1)])
    pen = Group.build([cfg.replace(l2=0.3), cfg.replace(seed=1)])
    w0 = pen.params.flat.clone()
    plain.step()
    pen.step()
    # SGD: delta = -lr * (grad + l2 * w)
    torch.testing.assert_close(pen.params.flat[0] - plain.params.flat[0], -0.1 * 0.3 * w0[0], rtol=1e-4, atol=1e-6)
    assert torch.equal(pen.params.flat[1], plain.params.flat[1])


# -- Grokfast-MA and the orthogonal gradient -------------------------------------------------------


def lee_gradfilter_ma(queue, current, window, lamb):
    """Lee et al. 2024, gradfilter_ma (filter_type "mean", warmup True), transcribed for one tensor."""
    queue.append(current.clone())
    queue[:] = queue[-window:]
    if len(queue) == window:
        return current + sum(queue) / len(queue) * lamb
    return current


def test_grokfast_ma_follows_lee_et_al_per_run_with_its_own_window():
    gen = torch.Generator().manual_seed(1)
    t = INTERVENTIONS["grokfast_ma"]
    lambs, windows = [5.0, 2.0, 0.0], [3.0, 5.0, 4.0]
    hp = HyperParams({"grokfast_ma_lamb": lambs, "grokfast_ma_window": windows})
    state = t.init(torch.zeros(3, 10), hp)
    queues = [[], [], []]
    for step in range(9):
        g = torch.randn(3, 10, generator=gen)
        out = t.apply(g.clone(), state, hp, StepContext([step] * 3))
        for e in range(2):
            torch.testing.assert_close(out[e], lee_gradfilter_ma(queues[e], g[e], int(windows[e]), lambs[e]),
                                       rtol=1e-5, atol=1e-5)
        assert torch.equal(out[2], g[2])
    # on a constant gradient, once the window is full: (1 + lamb) times it
    state = t.init(torch.zeros(3, 10), hp)
    for step in range(6):
        out = t.apply(torch.ones(3, 10), state, hp, StepContext([step] * 3))
    torch.testing.assert_close(out[0], torch.full((10,), 6.0))


def test_orthograd_removes_the_component_along_each_tensor_and_keeps_the_norm():
    t = INTERVENTIONS["orthograd"]
    gen = torch.Generator().manual_seed(2)
    p, g = torch.randn(2, 12, generator=gen), torch.randn(2, 12, generator=gen)
    segments = [(0, 4), (4, 12)]
    hp = HyperParams({"orthograd": [1.0, 0.0]})
    out = t.apply(g.clone(), {}, hp, StepContext([0, 0], params=p, segments=segments))
    for a, b in segments:
        w, gs, o = p[0, a:b], g[0, a:b], out[0, a:b]
        assert abs(torch.dot(o, w).item()) < 1e-5  # orthogonal to its own tensor
        torch.testing.assert_close(o.norm(), gs.norm())
        perp = gs - torch.dot(w, gs) / torch.dot(w, w) * w  # Prieto et al.'s orthograd.py
        torch.testing.assert_close(o, perp * gs.norm() / perp.norm())
    assert torch.equal(out[1], g[1])  # off for that run


def test_orthograd_and_grokfast_ma_act_in_a_run_and_resume_bitwise(tmp_path):
    from helpers import train_interrupted

    from groklab import rundir
    from groklab.train import train

    cfg = RunConfig(**{**SMALL, "steps": 60, "checkpoint_every": 20}, orthograd=True, grokfast_ma_lamb=2.0,
                    grokfast_ma_window=10)
    whole = train(cfg, tmp_path / "whole")
    plain = train(cfg.replace(orthograd=False, grokfast_ma_lamb=0.0))
    assert whole.history[-1]["train_loss"] != plain.history[-1]["train_loss"]
    train_interrupted(cfg, tmp_path / "cut", after=35)
    train(cfg, tmp_path / "cut", resume=True)
    a, b = (rundir.load_checkpoint(tmp_path / d)["params"] for d in ("whole", "cut"))
    assert all(torch.equal(a[k], b[k]) for k in a)
