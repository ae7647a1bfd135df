"""An MLP on the two operands (Gromov 2023, "Grokking modular arithmetic"), for one model or a stack of many.

The equation ``x op y =`` is read at once: the operands' embeddings, either
concatenated (one table for both, ``mlp_embed = "concat"``) or summed (a
table per operand, ``"sum"``: with a quadratic activation and one hidden
layer this is Gromov's ``W phi(U e_x + V e_y)``), then ``n_layers`` hidden
layers of width ``d_mlp`` with activation ``act`` (relu, gelu or quadratic),
then the unembedding to the ``n_symbols`` answers. Parameters carry a leading
ensemble axis ``E`` (see ``stacked``); dropout acts on the hidden activations.

On a vector task (``digits``, ``parity``) the input is the example's vector
instead of embeddings: the first hidden layer reads the 64 pixel values of a
digit (as Omnigrok's MLP reads MNIST), or the n bits of a parity string; the
engine hands the vectors over as ``x`` (``data.TaskTable.operands``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..data import TokenLayout
from ..fields import Field
from ..lazy import lazy
from .spec import ACT, D_MLP, D_MODEL, N_LAYERS, ModelSpec
from .stacked import ParamInit, Params, activation, gather_rows, linear

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")


@dataclass(frozen=True)
class MLPConfig:
    """The architecture; every field but ``n_symbols`` and ``n_inputs`` (the task's ``Shape``) is the
    ``RunConfig`` field of the same name."""

    n_symbols: int
    n_layers: int = 2  # hidden layers
    d_model: int = 128  # embedding width (per operand)
    d_mlp: int = 512  # hidden width
    act: str = "relu"
    mlp_embed: str = "concat"  # "concat" or "sum"
    n_inputs: int = 0  # a vector task's input length (0: two operand symbols, embedded)

    @property
    def vector(self) -> bool:
        return self.n_inputs > 0

    @property
    def d_in(self) -> int:
        if self.vector:
            return self.n_inputs
        return 2 * self.d_model if self.mlp_embed == "concat" else self.d_model


def param_shapes(cfg: MLPConfig) -> dict[str, ParamInit]:
    V, D, M = cfg.n_symbols, cfg.d_model, cfg.d_mlp
    s = {} if cfg.vector else {"W_E": ParamInit((V, D), "embed", embedding=True)}
    if cfg.mlp_embed == "sum" and not cfg.vector:
        s["W_E_y"] = ParamInit((V, D), "embed", embedding=True)
    fan_in = cfg.d_in
    for l in range(cfg.n_layers):
        s[f"layers.{l}.W"] = ParamInit((fan_in, M), "linear", fan_in, matrix=((0,), (1,)))
        s[f"layers.{l}.b"] = ParamInit((M,), "linear", fan_in)
        fan_in = M
    s["W_U"] = ParamInit((fan_in, V), "linear", fan_in)
    s["b_U"] = ParamInit((V,), "linear", fan_in)
    return s


def _embed(p: Params, x: Tensor, y: Tensor, cfg: MLPConfig) -> Tensor:
    if cfg.vector:  # x holds the input vectors
        return x
    ex = gather_rows(p["W_E"], x)
    if cfg.mlp_embed == "sum":
        return ex + gather_rows(p["W_E_y"], y)
    return torch.cat([ex, gather_rows(p["W_E"], y)], dim=-1)


def _mlp(p: Params, h: Tensor, cfg: MLPConfig, drop=None, cache: dict | None = None) -> Tensor:
    act = activation(cfg.act)
    if cache is not None:
        cache["embed"] = h
    for l in range(cfg.n_layers):
        h = act(linear(h, p[f"layers.{l}.W"], p[f"layers.{l}.b"]))
        if cache is not None:
            cache[f"layers.{l}.post"] = h
        if drop is not None:
            h = drop(h)
    return linear(h, p["W_U"], p["b_U"])


def answer_logits(p: Params, x: Tensor, y: Tensor, cfg: MLPConfig, drop=None, prepared=None) -> Tensor:
    """Operands x, y (E, N) (a vector task: x the input vectors, (E, N, n_inputs)) -> logits (E, N, n_symbols)."""
    return _mlp(p, _embed(p, x, y, cfg), cfg, drop)


def forward(p: Params, tokens: Tensor, cfg: MLPConfig, drop=None, cache: dict | None = None) -> Tensor:
    """Token sequences (E, N, 4) (a vector task: the input vectors, (E, N, n_inputs)) -> logits
    (E, N, 1, n_symbols): the MLP has one output, at the answer."""
    if cfg.vector:
        return _mlp(p, tokens, cfg, drop, cache).unsqueeze(2)
    x, y = tokens[..., TokenLayout.X], tokens[..., TokenLayout.Y]
    return _mlp(p, _embed(p, x, y, cfg), cfg, drop, cache).unsqueeze(2)


MLP_EMBED = Field("mlp_embed", "concat", "model mlp: the operands' embeddings concatenated (one table) or summed (a "
                  "table each)", choices=("concat", "sum"))

MLP = ModelSpec(
    "mlp", "an MLP on the two operands' embeddings (Gromov 2023): concatenated or summed, n_layers hidden layers",
    MLPConfig, param_shapes, answer_logits, forward, fields=(N_LAYERS, D_MODEL, D_MLP, ACT, MLP_EMBED),
    first_layer=lambda mcfg: "layers.0.W" if mcfg.vector else None,
    # the input, each hidden layer's pre-activation, activation and gradient, the logits: float32
    activations=lambda m: 4 * (m.d_in + 3 * m.n_layers * m.d_mlp + 3 * m.n_symbols))
