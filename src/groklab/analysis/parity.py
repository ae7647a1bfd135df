"""Sparse parity's hidden progress (Barak et al. 2022): long before test accuracy moves, the network's first layer
concentrates its weight on the k relevant bits, and its output's Fourier-Walsh coefficient on their parity
grows.

- ``relevant_share``: the share of the first layer's squared weight (an MLP's ``layers.0.W``, one row per input
  bit) on the relevant bits' rows; k / n for weights that ignore which bits matter.
- ``walsh_coefficient``: the Fourier-Walsh coefficient of the network's output on the parity of the relevant
  bits, ``E_x[f(x) chi_S(x)]`` over uniformly random strings, where ``f(x) = P(1 | x) - P(0 | x)`` and
  ``chi_S(x) = +1`` when the relevant bits hold an odd number of ones (the answer 1), else -1: 1 for a network
  that computes the parity, about 0 for one that has not found it (a memorizer included).
"""

from __future__ import annotations

import numpy as np
import torch


def relevant_share(model, relevant) -> float | None:
    """The first layer's squared weight on the relevant bits' rows over its total (an MLP's; None for a model
    whose first layer does not read the bits as inputs)."""
    names = model.state()
    if "layers.0.W" not in names:
        return None
    W = names["layers.0.W"].detach().double()
    total = W.pow(2).sum()
    return float(W[torch.as_tensor(np.asarray(relevant))].pow(2).sum() / total) if total > 0 else 0.0


@torch.no_grad()
def walsh_coefficient(model, relevant, n_bits: int, samples: int = 4096, seed: int = 0) -> float:
    """The Fourier-Walsh coefficient of the network's output on the relevant bits' parity (see the module doc),
    estimated on ``samples`` uniformly random strings (a seeded generator)."""
    rng = np.random.default_rng([seed, 0x5A17])
    bits = rng.integers(0, 2, size=(samples, n_bits)).astype(np.float32)
    chi = np.where(bits[:, np.asarray(relevant)].sum(1) % 2 == 1, 1.0, -1.0)
    probs = model.answer_logits(torch.from_numpy(bits), torch.zeros(samples, dtype=torch.long)).double().softmax(-1)
    f = (probs[:, 1] - probs[:, 0]).numpy()
    return float(np.mean(f * chi))
