"""What the analyses read of a model's weights, through what its model declares (``models.spec.ModelSpec``:
its embedding, unembedding and neurons), and the projections its pictures use (PCA, t-SNE).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy

if TYPE_CHECKING:
    from torch import Tensor

np = lazy("numpy")
torch = lazy("torch")
sk_decomposition = lazy("sklearn.decomposition")
sk_manifold = lazy("sklearn.manifold")


def symbol_embeddings(model) -> Tensor:
    """(n_symbols, d): the input embedding of each symbol (the symbol tokens' rows of the model's embedding)."""
    return model[model.spec.embedding][: model.cfg.n_symbols].detach().cpu()


def unembedding_rows(model) -> Tensor:
    """(n_symbols, d): the row of the unembedding that reads out each answer symbol."""
    return model[model.spec.unembedding].detach().cpu().T


def neuron_logit_map(model) -> Tensor:
    """(n_symbols, n_neurons): how much each neuron of the last hidden layer adds to each answer's logit (the
    model's ``neurons`` matrix times its unembedding: the transformer's last W_out @ W_U; an MLP's W_U)."""
    W_U = model[model.spec.unembedding].detach().cpu()
    neurons = model.spec.neurons(model.cfg)
    return (model[neurons].detach().cpu() @ W_U).T if neurons else W_U.T


def pca(W: Tensor, k: int = 2) -> np.ndarray:
    X = W.double().numpy()
    return sk_decomposition.PCA(n_components=min(k, *X.shape), random_state=0).fit_transform(X)


def tsne(W: Tensor, seed: int = 0) -> np.ndarray:
    X = W.double().numpy()
    return sk_manifold.TSNE(2, perplexity=min(30.0, (len(X) - 1) / 3), init="pca",
                            random_state=seed).fit_transform(X)
