"""The engine: what stacked runs share, and that each option acts (not only that the loss goes down)."""

import pytest
import torch

from groklab import RunConfig
from groklab.engine import Group, GroupSpec
from groklab.errors import ConfigError

SMALL = dict(task="add", modulus=11, train_fraction=0.8, d_model=32, n_heads=4, d_mlp=64, lr=3e-3, steps=100,
             early_stop=False)


def test_group_spec_refuses_runs_that_disagree_and_names_the_field():
    a = RunConfig(**SMALL)
    for change, field in [({"d_model": 64}, "d_model"), ({"task": "sub"}, "task"), ({"optimizer": "adam"}, "optimizer"),
                          ({"norm": "pre"}, "norm"), ({"dropout": 0.1}, "dropout"), ({"loss": "cross_entropy"}, None)]:
        b = a.replace(**change)
        if field is None:
            GroupSpec.of([a, b])
            continue
        with pytest.raises(ConfigError, match=f"must share {field}"):
            GroupSpec.of([a, b])
        assert GroupSpec.key(a) != GroupSpec.key(b)


def test_per_run_fields_may_differ_within_a_group():
    cfgs = [RunConfig(**SMALL, batch_size=16), RunConfig(**{**SMALL, "seed": 3, "lr": 1e-2, "weight_decay": 0.1,
                                                            "train_fraction": 0.5, "init_scale": 2.0, "batch_size": 16,
                                                            "decay_to_init": True, "grokfast_lamb": 2.0})]
    spec = GroupSpec.of(cfgs)
    assert dict(spec.arch) == {"n_layers": 2, "d_model": 32, "n_heads": 4, "d_mlp": 64, "act": "relu", "norm": "post"}


def _delta_after_one_update(cfg):
    g = Group.build([cfg])
    before = g.params.flat.clone()
    g.step()
    return g.params.flat - before


def test_grokfast_first_update_is_one_plus_lamb_times_the_plain_one():
    cfg = RunConfig(**{**SMALL, "optimizer": "sgd", "lr": 0.1, "weight_decay": 0.0, "warmup_steps": 0})
    plain = _delta_after_one_update(cfg)
    fast = _delta_after_one_update(cfg.replace(grokfast_lamb=3.0))
    torch.testing.assert_close(fast, 4.0 * plain, rtol=1e-4, atol=2e-6)  # deltas of weights ~1: float32 rounding


def test_decay_to_init_keeps_weights_near_their_initialization():
    cfg = RunConfig(**{**SMALL, "lr": 1e-2, "weight_decay": 2.0})
    ends = {}
    for to_init in (False, True):
        g = Group.build([cfg.replace(decay_to_init=to_init)])
        start = g.params.flat.clone()
        for _ in range(60):
            g.step()
        ends[to_init] = ((g.params.flat - start).norm().item(), g.params.flat.norm().item())
    assert ends[True][0] < 0.5 * ends[False][0]  # stays near the initialization
    assert ends[False][1] < ends[True][1]  # decay to zero shrinks the weights more


def test_dropout_acts_in_training_only_and_its_masks_are_per_run():
    cfg = RunConfig(**SMALL)
    with_dropout = cfg.replace(dropout=0.3)
    assert not torch.equal(_delta_after_one_update(cfg), _delta_after_one_update(with_dropout))
    g = Group.build([with_dropout])
    assert g.evaluate() == g.evaluate()  # evaluation sees no dropout
    # the same run alone and beside another: the same masks, so the same update, bit for bit
    pair = Group.build([with_dropout, with_dropout.replace(seed=5)])
    before = pair.params.flat[0].clone()
    pair.step()
    assert torch.equal(pair.params.flat[0] - before, _delta_after_one_update(with_dropout)[0])


def test_evaluation_columns_are_named():
    row = Group.build([RunConfig(**SMALL)]).evaluate()[0]
    assert list(row) == ["train_loss", "train_acc", "val_loss", "val_acc", "zero_loss_frac", "weight_norm", "lr"]
    assert 0 <= row["train_acc"] <= 1 and row["lr"] == pytest.approx(3e-4)
