"""The learned symbol embeddings as pictures (the paper's Figure 3): PCA and t-SNE of the input embeddings and of
the unembedding rows, the plane of each key frequency (a circle for modular addition), and the labels that colour
them (residues; for S5 a subgroup's cosets and the cycle type).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..tasks import get_task, is_s5, permutations
from .fourier import fourier_basis


def symbol_embeddings(model) -> Tensor:
    """(n_symbols, d): the input embedding of each symbol (the operand tokens' rows of W_E)."""
    return model["W_E"][: model.cfg.n_symbols].detach().cpu()


def unembedding_rows(model) -> Tensor:
    """(n_symbols, d): the row of the unembedding that reads out each answer symbol."""
    return model["W_U"].detach().cpu().T


def neuron_logit_map(model) -> Tensor:
    """(n_symbols, n_neurons): how much each neuron of the last hidden layer adds to each answer's logit
    (transformer: the last block's W_out @ W_U; MLP: W_U)."""
    names = [k for k in model.state() if k.endswith("mlp.W_out")]
    W_U = model["W_U"].detach().cpu()
    if names:
        return (model[sorted(names)[-1]].detach().cpu() @ W_U).T
    return W_U.T


def pca(W: Tensor, k: int = 2) -> np.ndarray:
    from sklearn.decomposition import PCA

    X = W.double().numpy()
    return PCA(n_components=min(k, *X.shape), random_state=0).fit_transform(X)


def tsne(W: Tensor, seed: int = 0) -> np.ndarray:
    from sklearn.manifold import TSNE

    X = W.double().numpy()
    return TSNE(2, perplexity=min(30.0, (len(X) - 1) / 3), init="pca", random_state=seed).fit_transform(X)


def frequency_plane(W: Tensor, k: int) -> np.ndarray:
    """(p, 2): the rows of W (indexed by residues) in the coordinates of their frequency-k components: W's
    cos-k and sin-k directions ``c, s`` (d,) and, for each row, the least-squares ``(a, b)`` with ``a c + b s``
    closest to it. For a network that uses frequency k, residue x lands near angle 2 pi k x / p: a circle
    (exactly, for an embedding made of that frequency only)."""
    p = W.shape[0]
    basis, freqs = fourier_basis(p)
    Wd = W.double()
    rows = [i for i, f in enumerate(freqs) if f == k]
    comps = basis[rows] @ Wd  # (1 or 2, d): the directions of the cos and sin components
    coords = torch.linalg.lstsq(comps.T, (Wd - Wd.mean(0)).T).solution.T  # (p, 1 or 2)
    if coords.shape[1] == 1:  # k = p / 2 has no sine
        coords = torch.cat([coords, torch.zeros_like(coords)], 1)
    return coords.numpy()


def cycle_type(perm) -> str:
    """A permutation's cycle type as a partition of 5, e.g. ``3+1+1``."""
    seen, lengths = set(), []
    for i in range(len(perm)):
        if i not in seen:
            n, j = 0, i
            while j not in seen:
                seen.add(j)
                j = int(perm[j])
                n += 1
            lengths.append(n)
    return "+".join(str(n) for n in sorted(lengths, reverse=True))


def labels(task: str, n_symbols: int) -> dict[str, list]:
    """How to colour the symbols: ``residue`` for modular tasks; for S5 the left coset of the subgroup fixing 4
    (an S4; sigma H is read off sigma(4)) and the cycle type; for other groups the element's index."""
    if get_task(task).modular:
        return {"residue": list(range(n_symbols))}
    if not is_s5(task):
        return {"element": list(range(n_symbols))}
    perms = permutations()
    return {"coset of S4 (sigma(4))": [int(p[4]) for p in perms], "cycle type": [cycle_type(p) for p in perms]}
