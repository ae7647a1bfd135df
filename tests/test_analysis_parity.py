"""Sparse parity's hidden progress (``analysis.parity``): the relevant bits' first-layer weight share and the
output's Walsh coefficient on their parity, on a run that learns it."""

import pytest

from groklab import RunConfig
from groklab.analysis import analyze
from groklab.train import train


def test_parity_weight_moves_to_the_relevant_bits_before_test_accuracy_does(tmp_path):
    """Barak et al.'s hidden progress: 3 relevant bits among 30, 500 strings to train on; while test accuracy is
    still at chance, the first layer's weight share on the relevant bits has already grown well past its 3 / 30,
    and the output's Walsh coefficient on their parity has left 0."""
    cfg = RunConfig(task="parity", model="mlp", n_bits=30, parity_k=3, n_examples=1000, d_mlp=256, steps=1500,
                    early_stop=False, snapshots=16)
    train(cfg, out=tmp_path / "run")
    result = analyze(tmp_path / "run", sharpness_examples=16, sharpness_iters=2, llc_chains=0)
    snaps = result["snapshots"]
    chance = 3 / 30
    assert snaps[0]["relevant_share"] == pytest.approx(chance, rel=0.1) and abs(snaps[0]["walsh_parity"]) < 0.02
    hidden = [s for s in snaps if s["val_acc"] < 0.6 and s["train_acc"] == 1.0]
    assert hidden and max(s["relevant_share"] for s in hidden) > 1.3 * chance
    assert max(s["walsh_parity"] for s in hidden) > 0.05
    assert snaps[-1]["relevant_share"] > max(s["relevant_share"] for s in hidden)
    assert result["parity"]["relevant_bits"] == sorted(result["parity"]["relevant_bits"])
