"""Losses by name, the same for training and evaluation."""

import torch
import torch.nn.functional as F

from groklab import RunConfig
from groklab.engine import Group
from groklab.losses import LOSSES, Loss
from groklab.losses.cross_entropy import cross_entropy


def test_cross_entropy_is_per_example_and_matches_pytorch():
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(2, 5, 7, generator=g), torch.randint(0, 7, (2, 5), generator=g)
    per = cross_entropy(logits, target)
    assert per.shape == (2, 5)
    for e in range(2):
        torch.testing.assert_close(per[e], F.cross_entropy(logits[e], target[e], reduction="none"))


def test_the_engine_trains_and_evaluates_with_the_configured_loss():
    """A registered loss drives both the update and the logged loss: here one whose gradient is zero."""
    LOSSES.register(Loss("zero", "a constant", lambda logits, target: 0.0 * logits.sum(-1) + 5.0))
    try:
        cfg = RunConfig(task="add", modulus=7, d_model=16, n_heads=2, d_mlp=16, weight_decay=0.0, loss="zero")
        g = Group.build([cfg])
        before = g.params.flat.clone()
        g.step()
        assert torch.equal(g.params.flat, before)
        row = g.evaluate()[0]
        assert row["train_loss"] == row["val_loss"] == 5.0
    finally:
        LOSSES.unregister("zero")


def prieto_log_stablemax(x, epsilon=1e-30):
    """Prieto et al. 2025's code, transcribed: s(x) = 1 / (1 - x + eps) below 0, x + 1 above; log of s / sum s."""
    s_x = torch.where(x < 0, 1 / (1 - x + epsilon), x + 1)
    return torch.log(s_x / torch.sum(s_x, dim=-1, keepdim=True))


def test_stablemax_values_and_gradient_follow_prieto_et_al():
    from groklab.losses.stablemax import stablemax

    g = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(2, 6, 9, generator=g, dtype=torch.float64)).requires_grad_(True)
    target = torch.randint(0, 9, (2, 6), generator=g)
    per = stablemax(logits, target)  # float64: the engine's default precision for stablemax ("auto")
    want = -prieto_log_stablemax(logits.detach()).gather(-1, target.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(per, want)
    per.sum().backward()
    # d loss / d x_i = s'(x_i) / sum_j s(x_j) - [i = target] s'(x_t) / s(x_t), with s' = 1 above 0, 1 / (1 - x)^2 below
    x = logits.detach().double()
    s = torch.where(x >= 0, x + 1, 1 / (1 - x))
    ds = torch.where(x >= 0, torch.ones_like(x), 1 / (1 - x) ** 2)
    grad = ds / s.sum(-1, keepdim=True)
    onehot = F.one_hot(target, 9).bool()
    grad = torch.where(onehot, grad - ds / s, grad)
    torch.testing.assert_close(logits.grad, grad)
    # linear, not exponential: a huge logit does not make the loss exactly zero in float32 (no softmax collapse)
    big = torch.tensor([[[200.0, 0.0, 0.0]]])
    assert stablemax(big, torch.tensor([[0]])).item() > 0 and cross_entropy(big, torch.tensor([[0]])).item() == 0


def test_mse_on_one_hot_targets():
    from groklab.losses.mse import mse

    logits, target = torch.randn(2, 4, 5), torch.randint(0, 5, (2, 4))
    want = F.mse_loss(logits, F.one_hot(target, 5).float(), reduction="none").mean(-1)
    torch.testing.assert_close(mse(logits, target), want)


def test_every_loss_trains_a_run():
    for name in LOSSES:
        cfg = RunConfig(task="add", modulus=7, d_model=16, n_heads=2, d_mlp=16, lr=1e-2, loss=name)
        g = Group.build([cfg])
        first = g.evaluate()[0]["train_loss"]
        for _ in range(30):
            g.step()
        assert g.evaluate()[0]["train_loss"] < first


def test_loss_precision_auto_is_fp64_for_stablemax_only():
    from groklab.losses import loss_dtype

    assert loss_dtype("stablemax", "auto") == torch.float64
    assert loss_dtype("cross_entropy", "auto") == loss_dtype("mse", "auto") == torch.float32
    assert loss_dtype("cross_entropy", "fp64") == torch.float64 and loss_dtype("stablemax", "fp32") == torch.float32


def test_softmax_collapse_without_weight_decay_in_fp32_and_not_in_fp64():
    """Prieto et al. 2025: trained past memorization without weight decay, the logits grow until the fp32 softmax of
    most training examples is exactly 1 at the answer (loss exactly 0: no gradient). The same weights in fp64 still
    have a small nonzero loss on every example."""
    cfg = RunConfig(task="add", modulus=7, train_fraction=0.5, d_model=16, n_heads=2, d_mlp=32, lr=3e-2,
                    weight_decay=0.0, batch_size="full", loss_precision="fp32")
    g = Group.build([cfg])
    assert g.evaluate()[0]["zero_loss_frac"] == 0.0
    for _ in range(900):
        g.step()
    row = g.evaluate()[0]
    assert row["train_acc"] == 1.0 and row["zero_loss_frac"] > 0.5
    g64 = Group.build([cfg.replace(loss_precision="fp64")])
    g64.params.flat.copy_(g.params.flat)
    row64 = g64.evaluate()[0]
    assert row64["zero_loss_frac"] == 0.0 and row64["train_loss"] > 0
    assert row64["train_acc"] == 1.0
