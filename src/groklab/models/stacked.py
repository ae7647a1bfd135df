"""Building blocks that carry the ensemble axis ``E``: one run is ``E = 1``, a stacked group many.

Every parameter tensor has a leading ``E`` axis, and so does every activation:
``h (E, ..., K) @ W (E, K, N)``. Each member is an independent model; nothing
mixes members. Every ``E``, one included, goes through the same batched kernels,
so that a run computes bit for bit the same alone or in any group.

    >>> W, b = torch.ones(2, 3, 4), torch.zeros(2, 4)
    >>> linear(torch.ones(2, 5, 3), W, b).shape
    torch.Size([2, 5, 4])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..lazy import lazy

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

Params = dict[str, "Tensor"]


@dataclass(frozen=True)
class ParamInit:
    """How one parameter tensor is shaped, drawn and seen.

    ``kind``: ``embed`` N(0, 1) as ``nn.Embedding``, ``linear`` U(+-1/sqrt(fan_in)) as ``nn.Linear``, ``ones`` or
    ``zeros``. ``embedding``: counted as an embedding (the paper's parameter count leaves embeddings out).
    ``matrix``: a hidden weight matrix, as (the axes of its input side, the axes of its output side), which an
    update rule that orthogonalizes matrices (Muon) reads it as: attention's ``W_Q`` (heads, d_model, d_head) is
    ``((1,), (0, 2))``, one (d_model, heads * d_head) matrix as a Linear layer holds it. None for vectors,
    embeddings and the unembedding.
    """

    shape: tuple[int, ...]
    kind: str
    fan_in: int = 0
    embedding: bool = False
    matrix: tuple[tuple[int, ...], tuple[int, ...]] | None = None


def count(shapes: dict[str, ParamInit], embeddings: bool = False) -> int:
    """Parameters of one model; without embeddings by default, as the paper counts."""
    return sum(math.prod(p.shape) for p in shapes.values() if embeddings or not p.embedding)


def init_member(shapes: dict[str, ParamInit], seed: int, scale: float = 1.0) -> Params:
    """One model's parameters (no ensemble axis), drawn in ``shapes`` order from a generator seeded by ``seed``;
    the random kinds are multiplied by ``scale`` (Omnigrok's initialization scale)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, p in shapes.items():
        if p.kind == "embed":
            t = torch.randn(p.shape, generator=gen) * scale
        elif p.kind == "linear":
            t = (torch.rand(p.shape, generator=gen) * 2 - 1) * (1 / math.sqrt(p.fan_in)) * scale
        elif p.kind in ("ones", "zeros"):
            t = torch.ones(p.shape) if p.kind == "ones" else torch.zeros(p.shape)
        else:
            raise ValueError(f"unknown init kind {p.kind!r} of {name}")
        out[name] = t
    return out


def stack(members: list[Params]) -> Params:
    """Stack one-model parameter dicts along a new leading ensemble axis."""
    return {k: torch.stack([m[k] for m in members]) for k in members[0]}


def gather_rows(table: Tensor, index: Tensor) -> Tensor:
    """Per-member row lookup: table (E, R, *rest), index (E, *idx) -> (E, *idx, *rest)."""
    E, R = table.shape[:2]
    rest = table.shape[2:]
    flat = table.reshape(E * R, -1)
    if E > 1:
        index = index + (torch.arange(E, device=index.device) * R).view(E, *([1] * (index.dim() - 1)))
    return flat.index_select(0, index.reshape(-1)).view(*index.shape, *rest)


def layer_norm(h: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """LayerNorm over the last axis with a per-member affine: h (E, ..., D), w and b (E, D)."""
    shape = (w.shape[0],) + (1,) * (h.dim() - 2) + (w.shape[-1],)
    return torch.addcmul(b.view(shape), torch.nn.functional.layer_norm(h, h.shape[-1:]), w.view(shape))


def activation(name: str):
    """The elementwise activation ``name`` (a RunConfig ``act`` choice; quadratic: Gromov 2023's MLP)."""
    if name == "quadratic":
        return torch.square
    return getattr(torch.nn.functional, name)  # relu, gelu


def linear(h: Tensor, W: Tensor, b: Tensor) -> Tensor:
    """h (E, ..., K) @ W (E, K, N) + b (E, N) -> (E, ..., N)."""
    E, K, N = W.shape
    return torch.baddbmm(b.unsqueeze(1), h.reshape(E, -1, K), W).view(*h.shape[:-1], N)


class Dropout:
    """Dropout whose masks are drawn per member, each from that run's own generator, so that a run's masks are
    the same alone and in any group (stacked runs share one batch size: ``engine.GroupSpec``). ``drop(h)``:
    h (E, N, ...)."""

    def __init__(self, p: float, generators: list[torch.Generator]):
        self.p, self.generators = p, generators

    def __call__(self, h: Tensor) -> Tensor:
        masks = [torch.empty(h.shape[1:], device=h.device, dtype=h.dtype).bernoulli_(1 - self.p, generator=gen)
                 for gen in self.generators]
        return h * torch.stack(masks) / (1 - self.p)
