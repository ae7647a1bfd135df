"""Multiplicative Fourier analysis (``analysis.multiplicative``): the discrete-log basis of Z_p^*, on a planted
frequency and on a run that grokked x * y."""

import math

import numpy as np
import pytest
import torch

from groklab import RunConfig, train
from groklab.analysis import analyze, fourier, multiplicative


def test_a_planted_multiplicative_frequency_is_found_exactly():
    p, k = 23, 4
    logs = multiplicative.discrete_log(np.arange(p), p)
    angle = 2 * math.pi * k * logs / (p - 1)
    W = torch.tensor(np.stack([np.cos(angle), np.sin(angle)], 1))
    W[0] = 0.0  # the zero residue has no logarithm
    norms = multiplicative.multiplicative_norms(W)
    assert fourier.key_frequencies(norms) == [k]
    assert float(norms[k] ** 2 / (norms ** 2).sum()) == pytest.approx(1.0)
    assert sorted(multiplicative.log_order(p).tolist()) == list(range(1, p))


def test_the_tasks_that_are_monomials_say_so():
    assert multiplicative.monomial("custom", {"expression": "3 * x^2 / y", "modulus": 7}) == (2, -1)
    assert multiplicative.monomial("custom", {"expression": "x + y", "modulus": 7}) is None
    assert multiplicative.monomial("mul", {"modulus": 12}) is None  # Z_12^* is not cyclic
    assert multiplicative.monomial("div", {"modulus": 13}) == (1, -1)
    assert multiplicative.monomial("s5_mul", {"modulus": 97}) is None


def test_a_grokked_multiplication_uses_a_few_multiplicative_frequencies(tmp_path):
    """x * y mod 23 (the quick setting, width 48): most of the embedding's norm ends in its key multiplicative
    frequencies, their Gini rises several-fold, and the additive basis explains far less."""
    cfg = RunConfig.from_dict({"task": "mul", "snapshots": 12, "d_model": 48, "d_mlp": 96}, preset="quick")
    assert train(cfg, out=tmp_path / "run").summary["status"] == "generalized"
    result = analyze(tmp_path / "run", sharpness_examples=16, sharpness_iters=2, llc_chains=0)
    first, last = result["snapshots"][0], result["snapshots"][-1]
    keys = result["multiplicative"]["key_frequencies"]
    share = lambda s: np.sum(np.array(s["mult_norms"])[keys] ** 2) / np.sum(np.array(s["mult_norms"])[1:] ** 2)  # noqa: E731
    assert 1 <= len(keys) <= 6 and share(last) > 0.6
    assert last["mult_gini"] > 3 * first["mult_gini"] and last["mult_gini"] > 5 * last["fourier_gini"]
    assert last["mult_restricted_loss"] < last["mult_excluded_loss"]
