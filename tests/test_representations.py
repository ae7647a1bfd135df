"""Group representations (``analysis.representations``): character tables computed for every offered group, norm
shares per irrep, key irreps, and a run that grokked a group composition."""

import numpy as np
import pytest
import torch

from groklab import RunConfig, train
from groklab.analysis import analyze
from groklab.analysis.representations import (
    character_table,
    conjugacy_classes,
    irrep_shares,
    isotypic,
    kernel_of,
    key_irreps,
)
from groklab.groups import get_group

GROUPS = ["S3", "S4", "S5", "S6", "A4", "A5", "A6", *[f"D{n}" for n in range(3, 31)], "Z2", "Z7", "Z12", "Z97",
          "Z4xZ6", "S3xZ5", "D4xZ2xZ2", "A4xZ3", "Z10xZ100"]


@pytest.mark.parametrize("name", GROUPS)
def test_characters_of_every_offered_group_are_orthogonal(name):
    g = get_group(name)
    t = character_table(g)
    n = g.order
    gram = t.chars @ t.chars.conj().T
    assert np.allclose(gram, n * np.eye(len(t.chars)), atol=1e-6 * n)  # first orthogonality
    assert sum(d * d for d in t.degrees) == n and all(np.allclose(c[0], d) for c, d in zip(t.chars, t.degrees))
    if n <= 200:
        assert len(t.chars) == len(conjugacy_classes(g))
        same_class = np.isclose(t.chars.conj().T @ t.chars, 0, atol=1e-6)  # second orthogonality: 0 across classes
        cls = np.empty(n, int)
        for i, c in enumerate(conjugacy_classes(g)):
            cls[c] = i
        assert np.array_equal(~same_class, cls[:, None] == cls[None, :])
    iso = isotypic(name)
    assert sum(iso.dims) == n and iso.names[0] in ("1a", "k0") or iso.names[0].startswith(("1a", "k0"))


def test_an_embedding_that_lives_in_one_irrep_is_found_in_it():
    iso = isotypic("S4")
    target = iso.names.index("3a")
    W = iso.projector([target]) @ torch.randn(24, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    shares = irrep_shares(W, iso).numpy()
    assert shares[target] == pytest.approx(1.0) and key_irreps(shares, iso) == [target]
    P = iso.projector([1, 2, 3])
    assert torch.allclose(P @ P, P, atol=1e-10) and torch.allclose(P, P.T, atol=1e-12)


def test_key_irreps_are_completed_until_they_tell_every_element_apart():
    """S4's 2-dimensional irrep factors through S3 (its kernel is the Klein four-group): a key set of it alone is
    completed with the next irrep by share per dimension, a faithful one."""
    iso = isotypic("S4")
    names = list(iso.names)
    assert [int(kernel_of(iso, c).sum()) for c in range(len(names))] == [24, 12, 4, 1, 1]
    shares = dict(zip(names, [0.002, 0.003, 0.331, 0.245, 0.419]))  # a grokked S4 MLP's embedding
    assert [names[k] for k in key_irreps([shares[n] for n in names], iso)] == ["2a", "3b"]


def test_a_grokked_group_composition_uses_a_few_irreps(tmp_path):
    """D12 (the symmetries of a 12-gon, order 24): its embedding ends in a few irreps, whose restricted loss is
    far below the excluded one."""
    cfg = RunConfig(task="group", group="D12", model="mlp", train_fraction=0.8, d_model=64, d_mlp=128, lr=1e-2,
                    steps=5000, stop_patience=100, snapshots=12)
    assert train(cfg, out=tmp_path / "run").summary["status"] == "generalized"
    result = analyze(tmp_path / "run", sharpness_examples=16, sharpness_iters=2, llc_chains=0)
    first, last = result["snapshots"][0], result["snapshots"][-1]
    keys = [result["irreps"]["names"].index(k) for k in result["irreps"]["key_irreps"]]
    assert keys and sum(last["irrep_shares"][k] for k in keys) > 0.6
    assert last["irrep_gini"] > 3 * first["irrep_gini"]
    assert last["irrep_restricted_loss"] < last["irrep_excluded_loss"]
