"""The flat-buffer optimizers against torch.optim, one run and an ensemble with different hyper-parameters."""

import pytest
import torch

from groklab.optim import FlatParams, HyperParams, Optimizer


def _hp(E, lr, wd, beta2, warmup):
    col = lambda vals: torch.tensor([[float(v)] for v in vals])  # noqa: E731
    return HyperParams(col(lr), col(wd), col([0.9] * E), col(beta2), col([1e-8] * E), col([0.0] * E),
                       col(warmup), col([0.0] * E), col([0.98] * E))


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


def test_fused_and_elementwise_updates_agree_with_grokfast_and_decay_to_init():
    torch.manual_seed(1)
    init = {"w": torch.randn(2, 50)}
    runs = []
    for fused in (True, False):
        params = FlatParams({"w": init["w"].clone()})
        hp = _hp(2, [1e-2, 1e-3], [1.0, 0.5], [0.98, 0.98], [0, 3])
        hp.grokfast_lamb = torch.tensor([[2.0], [0.0]])
        runs.append((params, Optimizer("adamw", params, hp, [True, False]), fused))
    gen = torch.Generator().manual_seed(2)
    for _ in range(10):
        g = torch.randn(2, 50, generator=gen)
        for params, opt, fused in runs:
            params.grad.copy_(g)
            opt.step(fused=fused)
    torch.testing.assert_close(runs[0][0].flat, runs[1][0].flat, rtol=1e-5, atol=1e-6)
