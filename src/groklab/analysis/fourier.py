"""Fourier analysis of modular tasks (Nanda et al. 2023, "Progress measures for grokking via mechanistic
interpretability"): which frequencies of Z_p the embeddings and the neuron-logit map use, how concentrated
they are (Gini), and the restricted and excluded losses.

A frequency ``k`` of Z_p (0 <= k <= p // 2) is the pair of functions ``cos(2 pi k x / p)``,
``sin(2 pi k x / p)`` of a residue ``x`` (k = 0: the constant; for even p, k = p / 2 has its cosine only).
``fourier_basis(p)`` is the orthonormal basis of R^p they make. A matrix whose rows are indexed by the
residues (an embedding ``(p, d)``) has a norm in each frequency: the norm of its coefficients on that
frequency's basis vectors. A network that grokked modular addition puts most of it in a few *key frequencies*.

    >>> import torch
    >>> x = torch.arange(11.0)
    >>> W = torch.stack([torch.cos(2 * torch.pi * 3 * x / 11), torch.sin(2 * torch.pi * 3 * x / 11)], 1)
    >>> frequency_norms(W).argmax().item()
    3
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

from ..lazy import lazy
from ..losses import get_loss, loss_dtype
from ..tasks import get_task
from . import figures
from .spec import Analysis, Series, Snapshot
from .weights import neuron_logit_map, symbol_embeddings

if TYPE_CHECKING:
    from torch import Tensor

np = lazy("numpy")
torch = lazy("torch")


@lru_cache(maxsize=64)
def fourier_basis(p: int) -> tuple[Tensor, list[int]]:
    """(p, p) orthonormal rows (constant, cos 1, sin 1, cos 2, ...) and the frequency of each row (kept per p:
    read it, do not write into it)."""
    x = torch.arange(p, dtype=torch.float64)
    rows, freqs = [torch.ones(p, dtype=torch.float64)], [0]
    for k in range(1, p // 2 + 1):
        rows.append(torch.cos(2 * math.pi * k * x / p))
        freqs.append(k)
        if 2 * k != p:
            rows.append(torch.sin(2 * math.pi * k * x / p))
            freqs.append(k)
    basis = torch.stack(rows)
    return basis / basis.norm(dim=1, keepdim=True), freqs


def frequency_norms(W: Tensor) -> Tensor:
    """Norm of ``W`` (p, d), rows indexed by residues, in each frequency 0..p//2: (p // 2 + 1,)."""
    p = W.shape[0]
    basis, freqs = fourier_basis(p)
    coef = basis @ W.detach().double().cpu()
    sq = torch.zeros(p // 2 + 1, dtype=torch.float64).index_add_(0, torch.tensor(freqs), coef.pow(2).sum(1))
    return sq.sqrt()


def gini(values) -> float:
    """Gini coefficient of non-negative values: 0 when all are equal, towards 1 when one holds everything."""
    v = np.sort(np.abs(np.asarray(values, dtype=np.float64)))
    n = len(v)
    if n == 0 or v.sum() == 0:
        return 0.0
    return float((2 * np.arange(1, n + 1) - n - 1) @ v / (n * v.sum()))


def key_frequencies(norms, max_keys: int | None = None) -> list[int]:
    """The frequencies (k >= 1) that carry the embedding: sorted by squared norm, cut at the largest ratio
    between consecutive ones among the first half (at most ``max_keys``). Returned in increasing order."""
    sq = np.asarray(norms, dtype=np.float64)[1:] ** 2
    if len(sq) == 0:
        return []
    if len(sq) == 1:
        return [1]
    order = np.argsort(-sq, kind="stable")
    s = sq[order]
    limit = max(1, min(len(s) - 1, max_keys or len(s), (len(s) + 1) // 2))
    ratios = s[:limit] / np.maximum(s[1: limit + 1], 1e-300)
    n = int(np.argmax(ratios)) + 1
    return sorted(int(k) + 1 for k in order[:n])


RANDOM_DRAWS = 100  # random embeddings drawn for a baseline
RANDOM_QUANTILE = 0.99  # a structure stands out when its Gini is above this quantile of the random ones'
_BASELINES: dict[tuple, float] = {}


def random_gini(name: str, shape: tuple[int, ...], measure, draws: int = RANDOM_DRAWS,
                q: float = RANDOM_QUANTILE) -> float:
    """What a structureless embedding gives: the ``q`` quantile of ``measure(W)`` (a Gini) over ``draws`` Gaussian
    random ``W`` of ``shape`` (seeded; kept per ``name`` and shape). A Gini at or below it says no component of
    that basis stands out from what chance puts there."""
    key = (name, tuple(shape), draws, q)
    if key not in _BASELINES:
        g = torch.Generator().manual_seed(0)
        values = [measure(torch.randn(*shape, generator=g, dtype=torch.float64)) for _ in range(draws)]
        _BASELINES[key] = float(np.quantile(values, q))
    return _BASELINES[key]


def stands_out(gini_value: float, baseline: float) -> bool:
    """Whether a Gini stands out against its random baseline (``random_gini``)."""
    return gini_value > baseline


def accounted(restricted: float, full: float, chance: float) -> float | None:
    """How much of the loss the key components account for: the share of the fall from the chance loss (a uniform
    guess's) to the network's own loss that the logits restricted to the keys keep, ``(chance - restricted) /
    (chance - full)``, clipped to [0, 1]. Near 1: the keys carry what the network computes; low: the basis does
    not describe it. None when the network is no better than chance."""
    if not (chance - full > 1e-9):
        return None
    return float(min(1.0, max(0.0, (chance - restricted) / (chance - full))))


def full_loss(logits: Tensor, answers: Tensor, rows: Tensor | None = None, loss: str = "cross_entropy",
              precision: str = "auto") -> tuple[float, float]:
    """The run's loss over ``rows`` (default: every row) of the table's logits, and a uniform guess's (zero
    logits): what ``accounted`` compares the restricted loss with."""
    fn, dtype = get_loss(loss), loss_dtype(loss, precision)
    lg, z = (logits, answers) if rows is None else (logits[rows], answers[rows])
    own = fn(lg.to(dtype).unsqueeze(0), z.unsqueeze(0)).mean().item()
    chance = fn(torch.zeros_like(lg[:1]).to(dtype).unsqueeze(0), z[:1].unsqueeze(0)).mean().item()
    return own, chance


def honesty_lines(what: str, whats: str, basis: str, gini_value: float, baseline: float, keys,
                  share: float | None) -> list[str]:
    """What an analysis says of its keys: none where nothing stands out (and why), how much of the loss they
    account for where that was measured."""
    if not stands_out(gini_value, baseline):
        return [f"  no {what} stands out: Gini {gini_value:.2f} is within what a random embedding of this shape "
                f"gives in the {basis} ({RANDOM_QUANTILE:.0%} of them: <= {baseline:.2f}); this basis does not "
                "describe this network"]
    if share is None:
        return []
    say = f"  the key {whats} account for {share:.0%} of the loss (restricted to them against the full logits)"
    if share < 0.5:
        say += f": little, so the {basis} does not describe what this network computes"
    return [say]


def fourier_gini(W: Tensor) -> float:
    """Gini coefficient of the norms of ``W`` over the non-constant frequencies (Nanda et al.'s sparsity measure)."""
    return gini(frequency_norms(W)[1:].numpy())


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


# -- restricted and excluded losses over the whole table of a linear task (z = a x + b y mod p) -------------------


def _directions(s: Tensor, m: int, freqs: list[int]) -> Tensor:
    """(r, n) orthonormal directions spanning cos / sin(2 pi k s / m) over n rows of phases ``s`` (in Z_m)."""
    s = s.to(torch.float64)
    rows = []
    for k in freqs:
        rows.append(torch.cos(2 * math.pi * k * s / m))
        if 2 * k != m:
            rows.append(torch.sin(2 * math.pi * k * s / m))
    if not rows:
        return torch.zeros(0, len(s), dtype=torch.float64)
    q, r = torch.linalg.qr(torch.stack(rows).T)  # orthonormal even where the phases are not evenly spread
    return q[:, r.diagonal().abs() > 1e-9].T


def project_on_phases(logits: Tensor, s: Tensor, m: int, freqs: list[int]) -> tuple[Tensor, Tensor]:
    """Split logits (n, V), one row per pair, into the part on the key frequencies ``freqs`` of the pairs'
    phases ``s`` (n,) in Z_m (for each answer column: its cos / sin(2 pi k s / m) components; plus the mean over
    the rows) and the rest. Returns (restricted, excluded), restricted + excluded = logits + the mean (kept by
    both)."""
    L = logits.detach().double()
    mean = L.mean(0, keepdim=True)
    D = _directions(s, m, freqs)
    on_keys = D.T @ (D @ (L - mean))
    return (mean + on_keys).float(), (L - on_keys).float()


def _linear(task: str | tuple[int, int], params: dict | None = None) -> tuple[int, int]:
    """(a, b) of a linear task z = a x + b y mod p: given, or what the task declares (``Task.linear``)."""
    if not isinstance(task, str):
        return tuple(task)
    t = get_task(task)
    ab = t.linear(params or {}) if t.linear is not None else None
    if ab is None:
        raise ValueError(f"task {task!r} is not z = a x + b y mod p")
    return ab


def project_logits(logits: Tensor, task: str | tuple[int, int], freqs: list[int]) -> tuple[Tensor, Tensor]:
    """``project_on_phases`` for the full table of z = a x + b y mod p (``task``: its name, or (a, b)), (p * p, p)
    with rows in (x, y) order: the key frequencies of a x + b y (for each answer z, the cos / sin(k (x + y))
    components span cos(k (x + y - z)) for addition)."""
    p = logits.shape[1]
    a, b = _linear(task)
    x, y = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    return project_on_phases(logits, (a * x + b * y).flatten() % p, p, freqs)


def restricted_excluded_loss(logits: Tensor, answers: Tensor, train_mask: Tensor,
                             task: str | tuple[int, int], freqs: list[int], loss: str = "cross_entropy",
                             precision: str = "auto") -> tuple[float, float]:
    """Nanda et al.'s progress measures from the logits of the full table (p * p, p), in the run's loss
    (``loss`` in ``precision``: its ``RunConfig.loss`` and ``loss_precision``; Nanda et al.'s is cross-entropy):

    - restricted loss: the loss on every pair of the logits restricted to the key frequencies (the
      generalizing circuit alone; falls as the circuit forms, before the validation loss does);
    - excluded loss: the loss on the training pairs with the key frequencies removed (the memorization
      alone; rises as the circuit takes over the training set).
    """
    fn, dtype = get_loss(loss), loss_dtype(loss, precision)
    restricted, excluded = project_logits(logits, task, freqs)

    def mean_loss(lg: Tensor, z: Tensor) -> float:
        return fn(lg.to(dtype).unsqueeze(0), z.unsqueeze(0)).mean().item()

    return mean_loss(restricted, answers), mean_loss(excluded[train_mask], answers[train_mask])


# -- the analysis ------------------------------------------------------------------------------------------------


def _linear_of(cfg) -> tuple[int, int] | None:
    """(a, b) when the run's task is z = a x + b y mod p, else None."""
    task = get_task(cfg.task)
    return task.linear({"modulus": cfg.modulus, **cfg.task_params}) if task.linear is not None else None


def baseline(W: Tensor) -> float:
    """``random_gini`` of the Fourier Gini for an embedding of ``W``'s shape."""
    return random_gini("fourier", tuple(W.shape), fourier_gini)


def _keys(snap: Snapshot) -> list[int]:
    W = symbol_embeddings(snap.model)
    return key_frequencies(frequency_norms(W)) if stands_out(fourier_gini(W), baseline(W)) else []


def _measure(snap: Snapshot, keys: list[int]) -> dict:
    W = symbol_embeddings(snap.model)
    norms = frequency_norms(W)
    g = gini(norms[1:].numpy())
    out = {"embedding_norms": norms.tolist(), "fourier_gini": g,
           "neuron_logit_gini": gini(frequency_norms(neuron_logit_map(snap.model))[1:].numpy()),
           "key_frequencies": key_frequencies(norms) if stands_out(g, baseline(W)) else []}
    linear = _linear_of(snap.cfg)
    if linear and keys and len(snap.data.z) == snap.cfg.modulus ** 2:  # the whole table of a z = a x + b y task
        out["restricted_loss"], out["excluded_loss"] = restricted_excluded_loss(
            snap.logits, snap.data.z, snap.data.train, linear, keys, **snap.loss)
        own, chance = full_loss(snap.logits, snap.data.z, **snap.loss)
        out["keys_account"] = accounted(out["restricted_loss"], own, chance)
    return out


def _summary(rows, keys, snap) -> dict:
    last = rows[-1]
    return {"key_frequencies": keys, "fourier_gini": last["fourier_gini"],
            "fourier_gini_random": baseline(symbol_embeddings(snap.model)), "keys_account": last.get("keys_account")}


def _lines(r: dict) -> list[str]:
    keys = r["key_frequencies"]
    head = f"key frequencies {keys}, Fourier Gini {r['fourier_gini']:.2f}" if keys else \
        f"key frequencies: none, Fourier Gini {r['fourier_gini']:.2f}"
    return [head] + honesty_lines("frequency", "frequencies", "Fourier basis of Z_p", r["fourier_gini"],
                                  r["fourier_gini_random"], keys, r.get("keys_account"))


def _figures(d) -> dict:
    keys = d.result.get("key_frequencies", [])
    matrices = [("input embeddings", symbol_embeddings(d.final)), ("neuron-logit map", neuron_logit_map(d.final))]
    return {"fourier.png": figures.spectrum(matrices, keys, frequency_norms, "Z_p", d.title)}


FOURIER = Analysis(
    "fourier", "Fourier norms of the embedding over Z_p, key frequencies, Gini; restricted and excluded losses of "
    "z = a x + b y (Nanda et al. 2023)",
    applies=lambda cfg: get_task(cfg.task).modular, keys=_keys, measure=_measure,
    summary=_summary, lines=_lines,
    figures=_figures, captions={"fourier.png": "the embedding's Fourier spectrum"},
    series=(Series("fourier_gini", "Gini, embedding (Z_p)", "structure"),
            Series("neuron_logit_gini", "Gini, neuron-logit map (Z_p)", "structure"),
            Series("restricted_loss", "restricted loss (key frequencies)", "loss"),
            Series("excluded_loss", "excluded loss (key frequencies, train)", "loss")))
