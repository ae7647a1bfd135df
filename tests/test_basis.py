"""Which basis describes a modular network (``analysis.basis``): Fourier over Z_p, or discrete logarithms after a
shift, chosen against what random embeddings give."""

import math

import torch

from groklab.analysis import basis
from groklab.analysis.multiplicative import discrete_log, primitive_root


def _circle(phase, d, g):
    return torch.stack([torch.cos(phase), torch.sin(phase)], 1) @ torch.randn(2, d, generator=g, dtype=torch.float64)


def test_an_embedding_multiplicative_in_x_plus_1_is_named_so_and_an_additive_one_additive():
    p, d = 23, 48
    g = torch.Generator().manual_seed(5)
    x = torch.arange(p)
    u = (x + 1) % p  # (x + 1)(y + 1) - 1: multiplicative in x + 1; the residue with u = 0 gets noise only
    logs = torch.zeros(p, dtype=torch.float64)
    nz = u != 0
    logs[nz] = torch.as_tensor(discrete_log(u[nz].numpy(), p), dtype=torch.float64)
    W = _circle(2 * math.pi * 3 * logs / (p - 1), d, g) * nz[:, None] + 0.2 * torch.randn(p, d, generator=g,
                                                                                        dtype=torch.float64)
    best = basis.fits(W)[0]
    assert best["basis"] == "multiplicative" and best["shift"] == 1 and best["gini"] > best["random"]
    assert "x + 1" in basis.describe_fit(best)
    additive = _circle(2 * math.pi * 5 * x.double() / p, d, g) + 0.2 * torch.randn(p, d, generator=g,
                                                                                 dtype=torch.float64)
    assert basis.fits(additive)[0]["basis"] == "additive"
    assert primitive_root(p) > 1


def test_a_random_embedding_has_no_best_basis():
    g = torch.Generator().manual_seed(9)
    W = torch.randn(23, 48, generator=g, dtype=torch.float64)
    fits = basis.fits(W)
    assert all(f["gini"] <= f["random"] for f in fits)  # neither basis nor any shift beats random embeddings
    assert "none stands out" in basis._lines({"basis_fits": fits})[0]
