"""Group representations: the structure networks use to compose group elements (Chughtai et al. 2023, "A toy
model of universality").

A function on a finite group G (an embedding's column, indexed by the elements) splits into isotypic
components, one per irreducible representation rho: the functions spanned by rho's matrix coefficients, of
dimension ``dim(rho)^2``. Their projectors need only the characters: ``P_rho[g, h] = dim(rho) / |G| *
chi_rho(h g^-1)``. A network that composes elements through a few key irreps puts its embedding's norm in their
components; its logits for ``x . y`` are then a function of ``x . y`` in those components, which gives the
restricted and excluded losses as for modular addition (Z_p's irreps are its frequencies).

The characters are computed, not typed in (``character_table``): for S_n, A_n and D_n by Burnside's method
(the common eigenvectors of the class multiplication coefficients of the group's table), for Z_n as
``exp(2 pi i k j / n)``, for a direct product as the products of its factors' characters; the tests check the
orthogonality relations for every group offered. Complex-conjugate irreps are merged into one real component
(a real embedding cannot tell them apart).

    >>> from groklab.groups import get_group
    >>> sorted(character_table(get_group("S3")).degrees)
    [1, 1, 2]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from ..groups import Group, check_group, get_group
from ..lazy import lazy
from ..losses import get_loss, loss_dtype
from ..plots import VAL, new_figure, steps_xaxis
from ..tasks import get_task, params_of
from .figures import finish
from .fourier import accounted, full_loss, gini, honesty_lines, random_gini, stands_out
from .spec import Analysis, Series, Snapshot
from .weights import symbol_embeddings, unembedding_rows

if TYPE_CHECKING:
    from matplotlib.figure import Figure

if TYPE_CHECKING:
    from torch import Tensor

np = lazy("numpy")
torch = lazy("torch")


def conjugacy_classes(g: Group) -> list[np.ndarray]:
    """The conjugacy classes (arrays of element indices), the identity's first, each sorted."""
    inv = g.inverse
    n, seen, out = g.order, np.zeros(g.order, dtype=bool), []
    for e in range(n):
        if not seen[e]:
            cls = np.unique(g.mul[g.mul[np.arange(n), e], inv])  # h e h^-1 for every h
            seen[cls] = True
            out.append(cls)
    return out


@dataclass(frozen=True)
class CharacterTable:
    """The irreducible characters of a group: ``chars`` (r, |G|) complex, each at every element; ``degrees``
    (r,); ``names`` (``1a`` the trivial one, ``2a``, ``3b``; ``k3`` for Z_n's frequency 3; ``1bx2a`` in a
    product)."""

    chars: np.ndarray
    degrees: tuple[int, ...]
    names: tuple[str, ...]


def _burnside(g: Group) -> CharacterTable:
    classes = conjugacy_classes(g)
    r, n = len(classes), g.order
    cls_of = np.empty(n, dtype=np.int64)
    for i, c in enumerate(classes):
        cls_of[c] = i
    sizes = np.array([len(c) for c in classes], dtype=np.float64)
    # coef[j, i, k] = #{(a, b) : a in C_j, b in C_i, a b = t_k} for a fixed t_k in C_k
    owner = cls_of[np.arange(n)]
    coef = np.zeros((r, r, r))
    for j, cj in enumerate(classes):
        prods = cls_of[g.mul[cj]]  # (|C_j|, n): the class of a b, b over every element
        np.add.at(coef[j], (np.broadcast_to(owner, prods.shape).ravel(), prods.ravel()), 1.0)
    coef /= sizes[None, None, :]
    # the central characters w (w_k = omega(K_k)) are the common eigenvectors of A_j[i, k] = coef[j, i, k]
    A = np.tensordot(np.random.default_rng(0).normal(size=r), coef, axes=1)
    _, vecs = np.linalg.eig(A)
    chars = []
    for v in vecs.T:
        w = v / v[0]  # omega(identity class) = 1
        d = np.sqrt(n / np.sum(np.abs(w) ** 2 / sizes))
        chars.append((d * w / sizes)[cls_of])
    chars = np.array(chars)
    degrees = [int(round(c[0].real)) for c in chars]
    order = sorted(range(r), key=lambda i: (degrees[i], -round(float(np.sum(chars[i].real)), 6), i))
    chars, degrees = chars[order], [degrees[i] for i in order]
    names, count = [], {}
    for d in degrees:
        count[d] = count.get(d, 0) + 1
        names.append(f"{d}{chr(ord('a') + count[d] - 1)}" if count[d] <= 26 else f"{d}_{count[d]}")
    return CharacterTable(chars, tuple(degrees), tuple(names))


def _cyclic(n: int) -> CharacterTable:
    k = np.arange(n)
    return CharacterTable(np.exp(2j * np.pi * np.outer(k, k) / n), (1,) * n, tuple(f"k{v}" for v in k))


@lru_cache(maxsize=32)
def _table(group_id: str) -> CharacterTable:
    factors = check_group(group_id)
    if len(factors) > 1:  # a direct product: the products of its factors' characters (Kronecker order)
        tables = [_table(f"{kind}{n}") for kind, n in factors]
        chars, degrees, names = tables[0].chars, list(tables[0].degrees), list(tables[0].names)
        for t in tables[1:]:
            chars = np.kron(chars, t.chars)
            degrees = [a * b for a in degrees for b in t.degrees]
            names = [f"{a}x{b}" for a in names for b in t.names]
        return CharacterTable(chars, tuple(degrees), tuple(names))
    kind, n = factors[0]
    return _cyclic(n) if kind == "Z" else _burnside(get_group(group_id))


def character_table(g: Group) -> CharacterTable:
    """The group's irreducible characters, computed (and cached) by its id."""
    return _table(g.id)


@dataclass(frozen=True)
class Isotypic:
    """The real isotypic components of functions on a group: one per irrep, or per pair of complex-conjugate
    irreps, with its ``names`` (``2a``, ``3b+3c`` for a pair), ``dims`` (dim(rho)^2, summed over a pair) and
    ``kernels`` (m, |G|) real: ``sum dim(rho) chi_rho`` over the component, so that its projector is
    ``P[g, h] = kernel[h g^-1] / |G|``. The trivial component is the first."""

    group: str
    kernels: np.ndarray
    names: tuple[str, ...]
    dims: tuple[int, ...]

    def projector(self, components: list[int]) -> Tensor:
        """(|G|, |G|): the projector on the sum of ``components``."""
        g = get_group(self.group)
        hg = g.mul[np.arange(g.order)[None, :], g.inverse[:, None]]  # [g, h] -> h g^-1
        kernel = self.kernels[components].sum(0) if components else np.zeros(g.order)
        return torch.as_tensor(kernel[hg] / g.order)


@lru_cache(maxsize=32)
def isotypic(group_id: str) -> Isotypic:
    """The projections on each irrep's real isotypic component, for the group of that id."""
    t = _table(group_id)
    probe = np.random.default_rng(1).integers(0, t.chars.shape[1], size=min(8, t.chars.shape[1]))
    index = {tuple(np.round(c[probe], 6)): i for i, c in enumerate(t.chars)}
    done, kernels, names, dims = set(), [], [], []
    for i, chi in enumerate(t.chars):
        if i in done:
            continue
        members = [i]
        if np.abs(chi.imag).max() > 1e-6:  # a complex irrep: merged with its conjugate
            j = index[tuple(np.round(chi.conj()[probe], 6))]
            members.append(j)
        done.update(members)
        kernels.append(np.real(sum(t.degrees[k] * t.chars[k] for k in members)))
        names.append("+".join(t.names[k] for k in members))
        dims.append(sum(t.degrees[k] ** 2 for k in members))
    return Isotypic(group_id, np.array(kernels), tuple(names), tuple(dims))


def irrep_shares(W: Tensor, iso: Isotypic) -> Tensor:
    """The share of ``W``'s squared norm (rows indexed by the group's elements) in each isotypic component:
    (m,), summing to 1. ``||P W||^2 = sum_t kernel[t] S[t] / |G|`` with ``S[t] = sum_g (W W^T)[g, t g]``."""
    g = get_group(iso.group)
    W = W.detach().double().cpu().numpy()
    gram = W @ W.T
    S = gram[np.arange(g.order)[None, :], g.mul].sum(1)  # S[t] = sum_g gram[g, t g]
    parts = iso.kernels @ S / g.order
    return torch.as_tensor(parts / max(parts.sum(), 1e-300))


def kernel_of(iso: Isotypic, c: int) -> np.ndarray:
    """The group elements a component's representations send to the identity (a boolean mask over the group):
    where ``sum dim(rho) chi_rho(g)`` reaches its value at the identity, ``dims[c]``."""
    return np.abs(iso.kernels[c] - iso.dims[c]) < 1e-6 * max(1, iso.dims[c])


def key_irreps(shares, iso: Isotypic, max_keys: int | None = None) -> list[int]:
    """The components (not the trivial one) that carry an embedding: by share per dimension (a random
    embedding's share of a component is its dimension over |G|), cut at the largest ratio between consecutive
    ones among the first half, then completed, in the same order, until together they are faithful (no element
    but the identity acts trivially in all of them): a set that is not (S4's 2-dimensional irrep alone, which
    factors through S3) cannot tell the group's elements apart, so it cannot be how the network composes them
    (Chughtai et al. 2023). Indices into ``iso.names``, increasing."""
    per_dim = np.asarray(shares, dtype=np.float64)[1:] / np.asarray(iso.dims[1:], dtype=np.float64)
    if len(per_dim) <= 1:
        return [1] if len(per_dim) else []
    order = np.argsort(-per_dim, kind="stable")
    s = per_dim[order]
    limit = max(1, min(len(s) - 1, max_keys or len(s), (len(s) + 1) // 2))
    n = int(np.argmax(s[:limit] / np.maximum(s[1: limit + 1], 1e-300))) + 1
    chosen = [int(k) + 1 for k in order[:n]]
    trivial = np.logical_and.reduce([kernel_of(iso, c) for c in chosen])
    for k in order[n:]:
        if trivial.sum() <= 1:
            break
        chosen.append(int(k) + 1)
        trivial &= kernel_of(iso, int(k) + 1)
    return sorted(chosen)


def irrep_gini(shares, iso: Isotypic) -> float:
    """Gini of the shares per dimension over the non-trivial components: about 0 for a random embedding,
    towards 1 when a few irreps hold it."""
    return gini(np.asarray(shares, dtype=np.float64)[1:] / np.asarray(iso.dims[1:], dtype=np.float64))


def restricted_excluded_loss(logits: Tensor, x: Tensor, y: Tensor, answers: Tensor, train_mask: Tensor,
                             group_id: str, keys: list[int], loss: str = "cross_entropy",
                             precision: str = "auto") -> tuple[float, float]:
    """The restricted and excluded losses of a composition task (z = x . y) on the key irreps: each answer's
    logits over the pairs projected on the functions of ``x . y`` in the key components (and the mean, kept by
    both), as Nanda et al.'s for modular addition."""
    g = get_group(group_id)
    s = torch.as_tensor(g.mul[x.numpy(), y.numpy()])  # (n_pairs,): the element x . y of each pair
    L = logits.detach().double()
    mean = L.mean(0, keepdim=True)
    summed = torch.zeros(g.order, L.shape[1], dtype=torch.float64).index_add_(0, s, L - mean)
    counts = torch.bincount(s, minlength=g.order).double().clamp_min(1.0)[:, None]
    on_keys = (isotypic(group_id).projector(keys) @ (summed / counts))[s]  # the best function of x . y in them
    restricted, excluded = (mean + on_keys).float(), (L - on_keys).float()
    fn, dtype = get_loss(loss), loss_dtype(loss, precision)

    def mean_loss(lg: Tensor, z: Tensor) -> float:
        return fn(lg.to(dtype).unsqueeze(0), z.unsqueeze(0)).mean().item()

    return mean_loss(restricted, answers), mean_loss(excluded[train_mask], answers[train_mask])


def draw_irreps(result: Mapping, history: Sequence[Mapping] = (), title: str | None = None) -> Figure:
    """The embedding's and unembedding's norm share in each irrep's component at the last snapshot (a random
    embedding's share is the component's dimension over |G|, the grey ticks), and the key irreps' shares and the
    Gini over irreps across the snapshots beside validation accuracy."""
    info, snaps = result["irreps"], result["snapshots"]
    names, dims = info["names"], np.array(info["dims"], dtype=float)
    fig = new_figure(figsize=(13, 4))
    ax, ax_t = fig.subplots(1, 2)
    k = np.arange(len(names))
    ax.bar(k - 0.2, snaps[-1]["irrep_shares"], width=0.4, label="input embeddings",
           color=["tab:red" if n in info["key_irreps"] else "tab:blue" for n in names])
    ax.bar(k + 0.2, snaps[-1]["irrep_shares_unembed"], width=0.4, color="0.6", label="unembedding rows")
    ax.scatter(k, dims / dims.sum(), marker="_", s=200, color="k", label="a random embedding", zorder=3)
    ax.set_xticks(k, names, rotation=45 if len(names) > 8 else 0, fontsize=8)
    ax.set(ylabel="share of the squared norm", title=f"{info['group']}: share per irrep (key in red)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    steps = np.array([max(r["step"], 1) for r in snaps])
    for name in info["key_irreps"]:
        i = names.index(name)
        ax_t.plot(steps, [r["irrep_shares"][i] for r in snaps], "o-", ms=3, label=f"share of {name}")
    ax_t.plot(steps, [r["irrep_gini"] for r in snaps], "s--", ms=3, color="k", label="Gini over irreps")
    if len(history):
        ax_t.plot([max(r["step"], 1) for r in history], [r["val_acc"] for r in history], color=VAL, alpha=0.6,
                  label="validation accuracy")
    steps_xaxis(ax_t, "optimization steps")
    ax_t.set(ylim=(-0.02, 1.02), title="over training")
    ax_t.legend(fontsize=7)
    ax_t.grid(alpha=0.3)
    return finish(fig, title)


# -- the analysis ------------------------------------------------------------------------------------------------


def group_of(cfg) -> tuple[str, str] | None:
    """(group id, operation) of a run whose symbols are a group's elements (``Task.group``: the S5 tasks, group)."""
    task = get_task(cfg.task)
    return task.group(params_of(cfg)) if task.group is not None else None


def baseline(W: Tensor, grp: str) -> float:
    """``fourier.random_gini`` of the Gini over irreps for an embedding of ``W``'s shape."""
    iso = isotypic(grp)
    return random_gini(f"irreps {grp}", tuple(W.shape), lambda R: irrep_gini(irrep_shares(R, iso).numpy(), iso))


def _keys(snap: Snapshot) -> list[int]:
    grp = group_of(snap.cfg)[0]
    iso = isotypic(grp)
    W = symbol_embeddings(snap.model)
    shares = irrep_shares(W, iso).numpy()
    return key_irreps(shares, iso) if stands_out(irrep_gini(shares, iso), baseline(W, grp)) else []


def _measure(snap: Snapshot, keys: list[int]) -> dict:
    grp, op = group_of(snap.cfg)
    iso = isotypic(grp)
    W = symbol_embeddings(snap.model)
    shares = irrep_shares(W, iso).numpy()
    g = irrep_gini(shares, iso)
    out = {"irrep_shares": shares.tolist(),
           "irrep_shares_unembed": irrep_shares(unembedding_rows(snap.model), iso).tolist(),
           "irrep_gini": g,
           "key_irreps": [iso.names[k] for k in key_irreps(shares, iso)] if stands_out(g, baseline(W, grp)) else []}
    if op == "mul" and keys:  # compositions x . y: the logits are a function of x . y
        d = snap.data
        out["irrep_restricted_loss"], out["irrep_excluded_loss"] = restricted_excluded_loss(
            snap.logits, d.x, d.y, d.z, d.train, grp, keys, **snap.loss)
        own, chance = full_loss(snap.logits, d.z, **snap.loss)
        out["irrep_keys_account"] = accounted(out["irrep_restricted_loss"], own, chance)
    return out


def _summary(rows: list, keys: list[int], snap: Snapshot) -> dict:
    grp = group_of(snap.cfg)[0]
    iso = isotypic(grp)
    return {"irreps": {"group": grp, "names": list(iso.names), "dims": list(iso.dims),
                       "key_irreps": [iso.names[k] for k in keys], "gini": rows[-1]["irrep_gini"],
                       "gini_random": baseline(symbol_embeddings(snap.model), grp),
                       "keys_account": rows[-1].get("irrep_keys_account")}}


def _lines(r: dict) -> list[str]:
    i = r["irreps"]
    keys = ", ".join(i["key_irreps"]) or "none"
    return [f"irreps of {i['group']}: key {keys}, Gini {i['gini']:.2f}"] + honesty_lines(
        "irrep", "irreps", f"irreducible representations of {i['group']}", i["gini"], i["gini_random"], i["key_irreps"],
        i.get("keys_account"))


IRREPS = Analysis(
    "irreps", "norm shares of the embedding over a group's irreducible representations, key irreps, their "
    "restricted and excluded losses (Chughtai et al. 2023)",
    applies=lambda cfg: group_of(cfg) is not None, keys=_keys, measure=_measure, summary=_summary,
    lines=_lines,
    figures=lambda d: {"irreps.png": draw_irreps(d.result, d.history, d.title)},
    captions={"irreps.png": "the norm share per irreducible representation"},
    series=(Series("irrep_gini", "Gini over irreps, embedding", "structure"),
            Series("irrep_restricted_loss", "restricted loss (key irreps)", "loss"),
            Series("irrep_excluded_loss", "excluded loss (key irreps, train)", "loss")))
