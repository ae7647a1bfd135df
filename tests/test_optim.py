"""The engine's optimizer (``groklab.optim``) and the update rules (``groklab.rules``) against torch.optim, one run
and an ensemble with different hyper-parameters."""

import pytest
import torch

from groklab.interventions import INTERVENTIONS
from groklab.models.stacked import ParamInit
from groklab.optim import FlatParams, HyperParams, Optimizer
from groklab.rules import apply_decay


def _hp(E, lr, wd, beta2, warmup, **extra):
    values = {"lr": lr, "weight_decay": wd, "beta1": [0.9] * E, "beta2": beta2, "eps": [1e-8] * E,
              "momentum": [0.0] * E, "warmup_steps": warmup, **extra}
    return HyperParams({k: [float(x) for x in v] for k, v in values.items()})


@pytest.mark.parametrize("kind", ["adamw", "adam"])
@pytest.mark.parametrize("fused", [True, False])
def test_ensemble_optimizer_equals_torch_optim_per_run(kind, fused):
    torch.manual_seed(0)
    E, lrs, wds, beta2s, warmups = 3, [1e-2, 3e-3, 1e-2], [1.0, 0.1, 0.0], [0.98, 0.999, 0.98], [5, 1, 0]
    init = {"w": torch.randn(E, 4, 3), "b": torch.randn(E, 3)}
    params = FlatParams(init)
    opt = Optimizer(kind, params, _hp(E, lrs, wds, beta2s, warmups), [False] * E)
    refs = []
    for e in range(E):
        ps = [torch.nn.Parameter(init[k][e].clone()) for k in ("w", "b")]
        cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
        o = cls(ps, lr=lrs[e], betas=(0.9, beta2s[e]), weight_decay=wds[e], foreach=False)
        sched = torch.optim.lr_scheduler.LambdaLR(o, lambda s, w=warmups[e]: min((s + 1) / max(w, 1), 1.0))
        refs.append((ps, o, sched))
    for _ in range(12):
        grads = {k: torch.randn_like(v) for k, v in init.items()}
        params.grad.zero_()
        for k in grads:
            params.views[k].grad.copy_(grads[k])
        opt.step(fused=fused)
        for e, (ps, o, sched) in enumerate(refs):
            for p, k in zip(ps, ("w", "b")):
                p.grad = grads[k][e].clone()
            o.step()
            sched.step()
    for e, (ps, _, _) in enumerate(refs):
        for p, k in zip(ps, ("w", "b")):
            torch.testing.assert_close(params.views[k][e].detach(), p.detach(), rtol=1e-5, atol=1e-6)


def test_sgd_with_momentum_and_l2_equals_torch_optim():
    torch.manual_seed(3)
    init = torch.randn(2, 30)
    params = FlatParams({"w": init.clone()})
    hp = _hp(2, [0.1, 0.05], [0.01, 0.0], [0.98] * 2, [1, 1])
    hp = HyperParams({**hp.host, "momentum": [0.9, 0.5]})
    opt = Optimizer("sgd", params, hp, [False, False])
    refs = [torch.nn.Parameter(init[e].clone()) for e in range(2)]
    ref_opts = [torch.optim.SGD([refs[e]], lr=[0.1, 0.05][e], momentum=[0.9, 0.5][e], weight_decay=[0.01, 0.0][e])
                for e in range(2)]
    for _ in range(8):
        g = torch.randn(2, 30)
        params.grad.copy_(g)
        opt.step()
        for e in range(2):
            refs[e].grad = g[e].clone()
            ref_opts[e].step()
    for e in range(2):
        torch.testing.assert_close(params.flat[e], refs[e].detach(), rtol=1e-5, atol=1e-6)


def test_fused_and_elementwise_updates_agree_with_grokfast_and_decay_to_init():
    torch.manual_seed(1)
    init = {"w": torch.randn(2, 50)}
    runs = []
    for fused in (True, False):
        params = FlatParams({"w": init["w"].clone()})
        hp = _hp(2, [1e-2, 1e-3], [1.0, 0.5], [0.98, 0.98], [0, 3], grokfast_lamb=[2.0, 0.0], grokfast_alpha=[0.9, 0.98])
        runs.append((params, Optimizer("adamw", params, hp, [True, False], [INTERVENTIONS["grokfast_ema"]]), fused))
    gen = torch.Generator().manual_seed(2)
    for _ in range(10):
        g = torch.randn(2, 50, generator=gen)
        for params, opt, fused in runs:
            params.grad.copy_(g)
            opt.step(fused=fused)
    torch.testing.assert_close(runs[0][0].flat, runs[1][0].flat, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["adamw", "adam", "sgd"])
def test_weight_decay_pulls_towards_the_initialization_or_zero(kind):
    """With zero gradients only the decay acts: to-init rows move towards where they started, the others towards 0."""
    start = torch.full((2, 10), 2.0)
    params = FlatParams({"w": start.clone()})
    opt = Optimizer(kind, params, _hp(2, [0.1, 0.1], [0.5, 0.5], [0.98, 0.98], [1, 1]), [True, False])
    params.flat.fill_(3.0)  # both rows moved away from their initialization (2.0)
    for _ in range(3):
        params.grad.zero_()
        opt.step()
    to_init, to_zero = params.flat[0], params.flat[1]
    assert torch.all((to_init < 3.0) & (to_init > 2.0))  # towards 2, not past it
    assert torch.all(to_zero < to_init)  # towards 0: further down
    if kind == "adamw":  # decoupled: exactly (1 - lr wd) of the distance per update
        torch.testing.assert_close(to_init, torch.full((10,), 2.0 + 0.95**3))
        torch.testing.assert_close(to_zero, torch.full((10,), 3.0 * 0.95**3))


def test_apply_decay_decoupled_and_l2_forms():
    p, g, t = torch.full((1, 3), 4.0), torch.zeros(1, 3), torch.full((1, 3), 1.0)
    apply_decay(p, g, 0.1, 0.5, t, decoupled=True)
    torch.testing.assert_close(p, torch.full((1, 3), 4.0 - 0.05 * 3.0))
    apply_decay(p, g, 0.1, 0.5, None, decoupled=False)
    torch.testing.assert_close(g, 0.5 * p)


def _muon_against_torch(monkeypatch, float32_ns: bool):
    """Our vectorized Muon on a (in, out) matrix per run vs torch.optim.Muon on each run's (out, in) weight."""
    import torch.optim._muon as tm

    if float32_ns:  # torch's Newton-Schulz runs in bfloat16; the same iteration in float32 (their code, no cast)
        def ns32(grad, coeffs, steps, eps):
            a, b, c = coeffs
            x = grad.T if grad.size(0) > grad.size(1) else grad
            x = x / x.norm().clamp(min=eps)
            for _ in range(steps):
                gram = x @ x.T
                x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
            return x.T if grad.size(0) > grad.size(1) else x

        monkeypatch.setattr(tm, "_zeropower_via_newtonschulz", ns32)
    torch.manual_seed(0)
    E, lrs, wds, mus = 2, [0.02, 0.05], [0.1, 0.0], [0.95, 0.9]
    W0 = torch.randn(E, 6, 10)
    params = FlatParams({"blocks.0.mlp.W_in": W0.clone()},
                        inits={"blocks.0.mlp.W_in": ParamInit((6, 10), "linear", 6, matrix=((0,), (1,)))})
    hp = HyperParams({"lr": [1e-3] * E, "weight_decay": wds, "beta1": [0.9] * E, "beta2": [0.98] * E,
                      "eps": [1e-8] * E, "momentum": [0.0] * E, "warmup_steps": [0.0] * E, "muon_lr": lrs,
                      "muon_momentum": mus})
    opt = Optimizer("muon", params, hp, [False] * E)
    refs = []
    for e in range(E):
        w = torch.nn.Parameter(W0[e].T.clone())
        refs.append((w, torch.optim.Muon([w], lr=lrs[e], weight_decay=wds[e], momentum=mus[e])))
    worst = 0.0
    for _ in range(4):
        G = torch.randn(E, 6, 10)
        params.grad.copy_(G.reshape(E, -1))
        opt.step()
        for e, (w, o) in enumerate(refs):
            w.grad = G[e].T.clone()
            o.step()
            worst = max(worst, (params.views["blocks.0.mlp.W_in"][e].detach() - w.detach().T).abs().max().item())
    return worst


def test_muon_matches_torch_optim_muon(monkeypatch):
    assert _muon_against_torch(monkeypatch, float32_ns=True) < 1e-5  # the same algorithm
    # stock torch.optim.Muon orthogonalizes in bfloat16: within its rounding (steps here are ~0.02-0.07)
    monkeypatch.undo()
    assert _muon_against_torch(monkeypatch, float32_ns=False) < 3e-3


def test_muon_reads_the_matrices_the_model_declares_attention_as_linear_layers_embeddings_left_to_adamw():
    from groklab.models import get_model
    from groklab.models.transformer import TransformerConfig
    from groklab.rules import as_matrix
    from groklab.rules.muon import newton_schulz
    from groklab.rules.spec import from_matrix_index

    shapes = get_model("transformer").param_shapes(TransformerConfig(7, n_layers=1, d_model=32, n_heads=4))
    t = torch.randn(2, 4, 32, 8)  # (E, heads, d_model, d_head)
    m = as_matrix(t, shapes["blocks.0.attn.W_Q"].matrix)
    assert m.shape == (2, 32, 32) and torch.equal(m[1, :, 8:16], t[1, 1])  # head 1's columns
    index = from_matrix_index((4, 32, 8), shapes["blocks.0.attn.W_Q"].matrix, "cpu")
    back = torch.empty(2, 4 * 32 * 8).index_copy_(1, index, m.reshape(2, -1))
    assert torch.equal(back.view_as(t), t)  # a step taken on the matrix goes back to the parameter's layout
    assert as_matrix(torch.randn(2, 4, 8, 32), shapes["blocks.0.attn.W_O"].matrix).shape == (2, 32, 32)
    assert all(shapes[n].matrix is None for n in ("W_E", "W_pos", "W_U", "blocks.0.mlp.b_in", "blocks.0.ln1.w"))
    O = newton_schulz(torch.randn(3, 16, 40))  # nearly orthogonal rows: singular values in about (0.5, 1.5)
    s = torch.linalg.svdvals(O)
    assert s.min() > 0.3 and s.max() < 1.6


def test_muon_trains_a_group_with_per_run_settings():
    from groklab import RunConfig
    from groklab.engine import Group

    cfgs = [RunConfig(task="add", modulus=11, d_model=32, n_heads=4, d_mlp=64, optimizer="muon", muon_lr=m)
            for m in (0.02, 0.05)]
    g = Group.build(cfgs)
    first = [r["train_loss"] for r in g.evaluate()]
    for _ in range(40):
        g.step()
    assert all(r["train_loss"] < f for r, f in zip(g.evaluate(), first))


def _egd_setup(E: int):
    torch.manual_seed(1)
    W0, b0 = torch.randn(E, 6, 10), torch.randn(E, 10)
    inits = {"blocks.0.mlp.W_in": ParamInit((6, 10), "linear", 6, matrix=((0,), (1,))),
             "blocks.0.mlp.b_in": ParamInit((10,), "zeros", 6)}
    params = FlatParams({"blocks.0.mlp.W_in": W0.clone(), "blocks.0.mlp.b_in": b0.clone()}, inits=inits)
    return params, W0, b0


def test_egd_moves_each_runs_matrices_by_the_orthogonal_factor_of_its_own_gradient():
    """EGD (arXiv 2510.04930): W <- W (1 - lr_m wd) - lr_m U V^T with G = U S V^T, each run of a stacked group
    by its own gradient and settings; vectors by AdamW at lr; rank-deficient gradients by the pseudo-inverse."""
    E = 3
    params, W0, b0 = _egd_setup(E)
    lrs, wds = [0.01, 0.05, 0.02], [0.0, 0.5, 1.0]
    hp = HyperParams({"lr": [1e-3] * E, "weight_decay": wds, "beta1": [0.9] * E, "beta2": [0.98] * E,
                      "eps": [1e-8] * E, "momentum": [0.0] * E, "warmup_steps": [0.0] * E, "egd_lr": lrs,
                      "egd_rtol": [1e-6] * E})
    opt = Optimizer("egd", params, hp, [False] * E)
    G = torch.randn(E, 6, 10)
    G[2] = torch.randn(6, 2) @ torch.randn(2, 10)  # run 2: a rank-2 gradient
    gb = torch.randn(E, 10)
    params.grad.copy_(torch.cat([G.reshape(E, -1), gb], 1))
    opt.step()
    for e in range(E):
        U, S, Vh = torch.linalg.svd(G[e], full_matrices=False)
        r = int((S > 1e-6 * S[0]).sum())
        want = W0[e] * (1 - lrs[e] * wds[e]) - lrs[e] * U[:, :r] @ Vh[:r]
        torch.testing.assert_close(params.views["blocks.0.mlp.W_in"][e], want, rtol=0, atol=1e-6)
        ref = torch.nn.Parameter(b0[e].clone())
        adamw = torch.optim.AdamW([ref], lr=1e-3, betas=(0.9, 0.98), eps=1e-8, weight_decay=wds[e])
        ref.grad = gb[e].clone()
        adamw.step()
        torch.testing.assert_close(params.views["blocks.0.mlp.b_in"][e], ref.detach(), rtol=0, atol=1e-6)
    step = W0[2] * (1 - lrs[2] * wds[2]) - params.views["blocks.0.mlp.W_in"][2]
    assert torch.allclose(torch.linalg.svdvals(step / lrs[2])[:3], torch.tensor([1.0, 1.0, 0.0]), atol=1e-5)


def test_egd_trains_stacked_runs_each_as_alone():
    """A stacked group of EGD runs with different settings: every run's curve is the one it has alone, bit for
    bit (each run's matrices decomposed on their own), and the training loss falls."""
    from groklab import RunConfig
    from groklab.engine import Group

    cfgs = [RunConfig(task="add", modulus=11, d_model=32, n_heads=4, d_mlp=64, optimizer="egd", egd_lr=m, seed=s)
            for m, s in ((0.01, 0), (0.03, 1))]
    together = Group.build(cfgs)
    first = together.evaluate()
    for _ in range(30):
        together.step()
    last = together.evaluate()
    assert all(r["train_loss"] < f["train_loss"] for r, f in zip(last, first))
    for e, cfg in enumerate(cfgs):
        alone = Group.build([cfg])
        for _ in range(30):
            alone.step()
        assert alone.evaluate()[0] == last[e]
