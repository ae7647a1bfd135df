"""How complex the weights are (``analysis.complexity``): effective rank, the matrices a model declares, the norm
per layer, the compressed size; and their course over a run that grokked."""

import math

import pytest
import torch

from groklab import RunConfig, rundir
from groklab.analysis import complexity
from groklab.analysis.progress import Data, measure
from groklab.models import Model, get_model


def test_effective_rank_counts_equal_directions():
    assert complexity.effective_rank(torch.eye(5)) == pytest.approx(5.0)
    u, v = torch.randn(6, 1), torch.randn(1, 4)
    assert complexity.effective_rank(u @ v) == pytest.approx(1.0, abs=1e-6)
    assert complexity.effective_rank(torch.diag(torch.tensor([1.0, 1.0, 0.0]))) == pytest.approx(2.0)
    assert complexity.effective_rank(torch.zeros(3, 3)) == 0.0
    # exp of the entropy of s / sum(s): singular values 3 and 1 -> p = (3/4, 1/4)
    p = torch.tensor([0.75, 0.25])
    assert complexity.effective_rank(torch.diag(torch.tensor([3.0, 1.0]))) == pytest.approx(
        math.exp(-(p * p.log()).sum().item()))


def test_a_matrix_is_read_as_its_model_declares_it():
    cfg = RunConfig(task="add", modulus=7, d_model=8, n_heads=2, d_mlp=16, n_layers=1)
    spec = get_model("transformer")
    mcfg = spec.config(cfg, 7)
    model = Model(spec, mcfg, {k: v[0] for k, v in spec.init(mcfg, [0]).items()})
    mats = complexity.weight_matrices(model)
    # W_Q (heads, d_model, d_head) is one (d_model, heads * d_head) matrix, as a Linear layer holds it
    W_Q = model["blocks.0.attn.W_Q"]
    assert mats["blocks.0.attn.W_Q"].shape == (8, 8)
    assert torch.equal(mats["blocks.0.attn.W_Q"][:, :4], W_Q[0])
    assert {"W_E", "W_U", "blocks.0.mlp.W_in", "blocks.0.mlp.W_out"} <= set(mats)
    assert not any(".b_" in n or n.startswith("b_") for n in mats)  # no biases
    norms = complexity.layer_norms(model.state())
    assert set(norms) == {"W_E", "W_pos", "blocks.0", "W_U", "b_U"}
    total = math.sqrt(sum(float(w.detach().double().pow(2).sum()) for w in model.state().values()))
    assert math.sqrt(sum(v * v for v in norms.values())) == pytest.approx(total)


def test_compressed_size_falls_with_structure_and_grid():
    g = torch.Generator().manual_seed(0)
    noise = {"w": torch.randn(64, 64, generator=g) * 0.5}
    zeros = {"w": torch.zeros(64, 64)}
    assert complexity.compressed_size(zeros) < complexity.compressed_size(noise) / 10
    assert complexity.compressed_size(noise, step=0.1) < complexity.compressed_size(noise, step=0.01)


def test_a_grokked_run_ends_smaller_lower_rank_and_lighter_than_it_memorized(quick_run):
    run = quick_run[0]
    cfg = rundir.load_config(run)
    data = Data.of(cfg)
    files = rundir.snapshot_files(run)
    opts = {"llc_chains": 0}
    rows = [measure(rundir.load_snapshot(f, run), cfg, data, opts=opts, step=s) for s, f in files]
    memorized = next(r for r in rows if r["train_acc"] >= 0.99)
    last = rows[-1]
    assert last["compressed_bytes"] < memorized["compressed_bytes"] and last["compressed_bytes"] < rows[0][
        "compressed_bytes"]
    assert last["mean_effective_rank"] < 0.7 * memorized["mean_effective_rank"]
    assert sum(v * v for v in last["layer_norms"].values()) == pytest.approx(last["weight_norm"] ** 2, rel=1e-4)
