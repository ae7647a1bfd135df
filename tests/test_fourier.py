"""Additive Fourier analysis (``analysis.fourier``): norms per frequency, key frequencies and Gini, the
restricted and excluded losses, the frequency planes; on planted cases whose answer is known."""

import math

import numpy as np
import pytest
import torch

from groklab.analysis import fourier


def _wave(p, k, phase=0.0):
    x = torch.arange(p, dtype=torch.float64)
    return torch.cos(2 * math.pi * k * x / p + phase)


def test_fourier_norms_of_a_planted_embedding_find_exactly_its_frequencies():
    p, g = 23, torch.Generator().manual_seed(0)
    waves = torch.stack([_wave(p, 3), _wave(p, 3, math.pi / 2), _wave(p, 7, 0.4), _wave(p, 7, 0.4 + math.pi / 2)], 1)
    W = waves @ torch.randn(4, 16, generator=g, dtype=torch.float64) + 0.05 * torch.randn(p, 16, generator=g,
                                                                                          dtype=torch.float64)
    norms = fourier.frequency_norms(W)
    assert norms.shape == (p // 2 + 1,)
    assert fourier.key_frequencies(norms) == [3, 7]
    random = torch.randn(p, 16, generator=g, dtype=torch.float64)
    assert fourier.fourier_gini(W) > 0.7 > 0.3 > fourier.fourier_gini(random)
    # Parseval: the basis is orthonormal, so the norms add up to the matrix's
    assert torch.isclose((norms ** 2).sum(), W.pow(2).sum())


def test_gini_of_known_vectors():
    assert fourier.gini([1, 1, 1, 1]) == 0.0
    assert fourier.gini([0, 0, 0, 1]) == pytest.approx(0.75)
    assert fourier.gini([0, 0]) == 0.0


@pytest.mark.parametrize("task, sign", [("add", 1), ((1, -1), -1)])
def test_restricted_and_excluded_logits_split_a_planted_fourier_circuit(task, sign):
    """Logits cos(2 pi k (x +/- y - z) / p) on key k, plus noise: restricting to k keeps the circuit (loss as low
    as the circuit's), excluding k leaves the noise (loss near chance). The task is named, or given as (a, b)."""
    p, k = 13, 4
    x, y = (t.flatten() for t in torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij"))
    z = (x + sign * y) % p
    circuit = 40 * torch.cos(2 * math.pi * k * ((x + sign * y)[:, None] - torch.arange(p)[None, :]) / p)
    noise = 0.3 * torch.randn(p * p, p, generator=torch.Generator().manual_seed(0))
    logits = (circuit + noise).float()
    restricted, excluded = fourier.project_logits(logits, task, [k])
    torch.testing.assert_close(restricted - restricted.mean(1, keepdim=True),
                               (circuit - circuit.mean(1, keepdim=True)).float(), atol=0.15, rtol=0)
    train = torch.rand(p * p, generator=torch.Generator().manual_seed(1)) < 0.5
    r, e = fourier.restricted_excluded_loss(logits, z, train, task, [k])
    assert r < 0.05 and e > 0.8 * math.log(p)


def test_frequency_plane_puts_residues_on_a_circle():
    p, k = 17, 5
    g = torch.Generator().manual_seed(0)
    W = torch.stack([_wave(p, k), _wave(p, k, math.pi / 2)], 1) @ torch.randn(2, 12, generator=g, dtype=torch.float64)
    xy = fourier.frequency_plane(W, k)
    radius = np.linalg.norm(xy, axis=1)
    assert radius.std() / radius.mean() < 0.3
    steps = np.abs(np.diff(np.arctan2(xy[:, 1], xy[:, 0])))  # consecutive residues: 2 pi k / p apart
    assert np.allclose(np.minimum(steps, 2 * np.pi - steps), 2 * np.pi * k / p, atol=0.3)


def test_fourier_applies_to_the_tasks_on_residues_and_its_restricted_loss_to_the_linear_ones():
    from groklab import RunConfig
    from groklab.tasks import get_task

    assert fourier.FOURIER.applies(RunConfig(task="x2_y2", modulus=7))
    assert not fourier.FOURIER.applies(RunConfig(task="s5_mul"))
    assert get_task("add").linear({}) == (1, 1) and get_task("sub").linear({}) == (1, -1) and get_task("mul").linear is None


def test_no_key_frequency_stands_out_of_a_random_embedding_and_a_planted_one_does():
    from groklab.analysis.fourier import random_gini, stands_out

    p, d = 23, 64
    base = random_gini("fourier", (p, d), fourier.fourier_gini)
    g = torch.Generator().manual_seed(123)  # not the baseline's draws
    false = sum(stands_out(fourier.fourier_gini(torch.randn(p, d, generator=g, dtype=torch.float64)), base)
                for _ in range(50))
    assert false <= 3  # the 99% quantile: about one random embedding in a hundred passes
    x = torch.arange(p, dtype=torch.float64)
    planted = torch.stack([torch.cos(2 * math.pi * 4 * x / p), torch.sin(2 * math.pi * 4 * x / p)], 1) @ torch.randn(
        2, d, generator=g, dtype=torch.float64) + 0.3 * torch.randn(p, d, generator=g, dtype=torch.float64)
    assert stands_out(fourier.fourier_gini(planted), base)
    assert fourier.key_frequencies(fourier.frequency_norms(planted)) == [4]


def test_the_keys_share_of_the_loss_is_the_share_of_the_fall_from_chance_they_keep():
    from groklab.analysis.fourier import accounted

    assert accounted(restricted=0.1, full=0.1, chance=3.0) == 1.0
    assert accounted(restricted=3.0, full=0.1, chance=3.0) == 0.0
    assert accounted(restricted=1.55, full=0.1, chance=3.0) == pytest.approx(0.5)
    assert accounted(restricted=5.0, full=0.1, chance=3.0) == 0.0  # worse than chance: nothing accounted for
    assert accounted(restricted=1.0, full=3.0, chance=3.0) is None  # a network no better than chance
