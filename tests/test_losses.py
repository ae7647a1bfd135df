"""Losses by name, the same for training and evaluation."""

import torch
import torch.nn.functional as F

from groklab import RunConfig
from groklab.engine import Group
from groklab.losses import LOSSES, cross_entropy


def test_cross_entropy_is_per_example_and_matches_pytorch():
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(2, 5, 7, generator=g), torch.randint(0, 7, (2, 5), generator=g)
    per = cross_entropy(logits, target)
    assert per.shape == (2, 5)
    for e in range(2):
        torch.testing.assert_close(per[e], F.cross_entropy(logits[e], target[e], reduction="none"))


def test_the_engine_trains_and_evaluates_with_the_configured_loss():
    """A registered loss drives both the update and the logged loss: here one whose gradient is zero."""
    LOSSES["zero"] = lambda logits, target: 0.0 * logits.sum(-1) + 5.0
    try:
        cfg = RunConfig(task="add", modulus=7, d_model=16, n_heads=2, d_mlp=16, weight_decay=0.0, loss="zero")
        g = Group.build([cfg])
        before = g.params.flat.clone()
        g.step()
        assert torch.equal(g.params.flat, before)
        row = g.evaluate()[0]
        assert row["train_loss"] == row["val_loss"] == 5.0
    finally:
        del LOSSES["zero"]
