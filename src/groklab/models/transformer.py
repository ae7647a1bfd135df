"""The paper's decoder-only transformer, written once for one model or a stack of many.

Parameters carry TransformerLens names (``W_E``, ``blocks.0.attn.W_Q``, ...)
and a leading ensemble axis ``E`` (see ``stacked``). Two forwards compute the
same function:

- ``forward(params, tokens, cfg)``: the plain computation over all positions,
  logits ``(E, batch, seq, n_symbols)``, with residual dropout and an
  activation cache; the reference the fast path is tested against.
- ``forward_answer(params, x, y, cfg)``: logits at the answer position only,
  ``(E, batch, n_symbols)``. With causal attention the positions ``x op``
  depend on x alone, so they are computed once per symbol (the *prefix per
  symbol*) and gathered by x; layer 0 sees one token per position, so its
  queries, keys, values and query-key scores come from tables over the
  distinct (token, position) inputs (the *layer-0 tables*); the last layer
  computes its query and MLP at the answer position only (the *answer row*).
  ``prepare`` computes the parameter-only part (tables, prefix) once: an
  evaluation shares it across all its chunks of examples.
  Same numbers up to float rounding, a fraction of the work.

The token layout (positions, the ``op`` and ``=`` tokens) comes from ``groklab.data.TokenLayout``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, NamedTuple

from ..data import TokenLayout
from ..errors import ConfigError
from ..fields import Field
from ..lazy import lazy
from ..tasks import get_task
from .spec import ACT, D_MLP, D_MODEL, N_LAYERS, ModelSpec
from .stacked import ParamInit, Params, activation, gather_rows, layer_norm, linear

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")


@dataclass(frozen=True)
class TransformerConfig:
    """The architecture; every field but ``n_symbols`` is the ``RunConfig`` field of the same name."""

    n_symbols: int  # operands and answers; the vocabulary adds "op" and "="
    n_layers: int = 2
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    act: str = "relu"
    norm: str = "post"  # "post" (the paper's code), "pre", or "none"
    n_inputs: int = 0  # a sequence task: its tokens per example (parity's bits), read before "="

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def n_ctx(self) -> int:
        """Positions: ``x op y =``, or a sequence task's tokens and ``=``."""
        return self.n_inputs + 1 if self.n_inputs else TokenLayout.SEQ_LEN

    @property
    def layout(self) -> TokenLayout:
        return TokenLayout(self.n_symbols)


def check(cfg) -> None:
    """The constraints a RunConfig must meet for this model."""
    task = get_task(cfg.task)
    if task.vector and not task.sequence:
        raise ConfigError(f"task {cfg.task!r} reads images, which the transformer does not; use model 'mlp'")
    if cfg.d_model % cfg.n_heads:
        raise ConfigError(f"d_model {cfg.d_model} does not divide by n_heads {cfg.n_heads}")


def param_shapes(cfg: TransformerConfig) -> dict[str, ParamInit]:
    D, H, dh, M, V = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp, cfg.layout.d_vocab
    s = {"W_E": ParamInit((V, D), "embed", embedding=True),
         "W_pos": ParamInit((cfg.n_ctx, D), "embed", embedding=True)}
    for l in range(cfg.n_layers):
        b = f"blocks.{l}."
        for n in "QKV":  # a Linear layer's (d_model, heads * d_head) matrix, to an update rule that reads matrices
            s[b + f"attn.W_{n}"] = ParamInit((H, D, dh), "linear", D, matrix=((1,), (0, 2)))
            s[b + f"attn.b_{n}"] = ParamInit((H, dh), "linear", D)
        s[b + "attn.W_O"] = ParamInit((H, dh, D), "linear", D, matrix=((0, 1), (2,)))
        s[b + "attn.b_O"] = ParamInit((D,), "linear", D)
        s[b + "mlp.W_in"] = ParamInit((D, M), "linear", D, matrix=((0,), (1,)))
        s[b + "mlp.b_in"] = ParamInit((M,), "linear", D)
        s[b + "mlp.W_out"] = ParamInit((M, D), "linear", M, matrix=((0,), (1,)))
        s[b + "mlp.b_out"] = ParamInit((D,), "linear", M)
        if cfg.norm != "none":
            for ln in ("ln1", "ln2"):
                s[b + f"{ln}.w"] = ParamInit((D,), "ones")
                s[b + f"{ln}.b"] = ParamInit((D,), "zeros")
    if cfg.norm == "pre":
        s["ln_final.w"] = ParamInit((D,), "ones")
        s["ln_final.b"] = ParamInit((D,), "zeros")
    s["W_U"] = ParamInit((D, cfg.n_symbols), "linear", D, embedding=True)
    s["b_U"] = ParamInit((cfg.n_symbols,), "linear", D, embedding=True)
    return s


# -- sublayers ------------------------------------------------------------------------------


def _ln(h: Tensor, p: Params, name: str) -> Tensor:
    return layer_norm(h, p[name + ".w"], p[name + ".b"])


def _qkv(p: Params, l: int, h: Tensor, H: int, parts: str = "QKV") -> tuple[Tensor, ...]:
    """h (E, N, S, D) -> the projections named in ``parts``, each (E, N, S, H, d_head), in one matmul."""
    a = f"blocks.{l}.attn."
    E, D = h.shape[0], h.shape[-1]
    W = torch.cat([p[a + f"W_{n}"].permute(0, 2, 1, 3).reshape(E, D, -1) for n in parts], dim=-1)
    b = torch.cat([p[a + f"b_{n}"].reshape(E, -1) for n in parts], dim=-1)
    return linear(h, W, b).view(*h.shape[:-1], len(parts), H, -1).unbind(-3)


def _attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """q (E, N, Sq, H, dh), k/v (E, N, Sk, H, dh), mask (Sq, Sk) True = may attend -> z (E, N, Sq, H, dh), pattern."""
    # Sq, Sk <= 4: broadcast products beat batched matmuls of 4 x 4 tiles.
    scores = (q.unsqueeze(3) * k.unsqueeze(2)).sum(-1) / math.sqrt(q.shape[-1])  # (E, N, Sq, Sk, H)
    scores = scores.masked_fill(~mask[:, :, None], float("-inf"))
    pattern = scores.softmax(3)
    z = (pattern.unsqueeze(-1) * v.unsqueeze(2)).sum(3)
    return z, pattern.permute(0, 1, 4, 2, 3)


def _out(p: Params, l: int, z: Tensor) -> Tensor:
    """z (E, N, S, H, dh) -> (E, N, S, D)."""
    a = f"blocks.{l}.attn."
    W = p[a + "W_O"]
    return linear(z.flatten(-2), W.reshape(W.shape[0], -1, W.shape[-1]), p[a + "b_O"])


def _attn_in(p: Params, l: int, resid: Tensor, norm: str) -> Tensor:
    return _ln(resid, p, f"blocks.{l}.ln1") if norm == "pre" else resid


def _after_attn(p: Params, l: int, resid: Tensor, a: Tensor, norm: str) -> Tensor:
    return _ln(resid + a, p, f"blocks.{l}.ln1") if norm == "post" else resid + a


def _mlp_sublayer(p: Params, l: int, resid: Tensor, cfg: TransformerConfig, drop=None, cache=None) -> Tensor:
    m = f"blocks.{l}.mlp."
    h = _ln(resid, p, f"blocks.{l}.ln2") if cfg.norm == "pre" else resid
    post = activation(cfg.act)(linear(h, p[m + "W_in"], p[m + "b_in"]))
    if cache is not None:
        cache[m + "post"] = post
    out = linear(post, p[m + "W_out"], p[m + "b_out"])
    if drop is not None:
        out = drop(out)
    return _ln(resid + out, p, f"blocks.{l}.ln2") if cfg.norm == "post" else resid + out


def _rest_of_block(p: Params, l: int, cfg: TransformerConfig, resid: Tensor, z: Tensor) -> Tensor:
    """What follows the attention mixing in block ``l``: output projection, residual, MLP."""
    return _mlp_sublayer(p, l, _after_attn(p, l, resid, _out(p, l, z), cfg.norm), cfg)


def _unembed(p: Params, h: Tensor, cfg: TransformerConfig) -> Tensor:
    if cfg.norm == "pre":
        h = _ln(h, p, "ln_final")
    return linear(h, p["W_U"], p["b_U"])


def _causal(n: int, device) -> Tensor:
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()


# -- the plain forward ------------------------------------------------------------------------


def forward(p: Params, tokens: Tensor, cfg: TransformerConfig, drop: Callable[[Tensor], Tensor] | None = None,
            cache: dict | None = None) -> Tensor:
    """Every position: tokens (E, N, S) -> logits (E, N, S, n_symbols).

    ``drop`` (e.g. ``stacked.Dropout``) is applied to each attention and MLP sublayer's output
    (residual dropout); ``cache`` receives ``blocks.{l}.resid_pre``, ``blocks.{l}.attn.pattern``
    (E, N, H, Sq, Sk), ``blocks.{l}.mlp.post`` and ``resid_final``.
    """
    S = tokens.shape[-1]
    resid = gather_rows(p["W_E"], tokens) + p["W_pos"][:, None, :S]
    mask = _causal(S, tokens.device)
    for l in range(cfg.n_layers):
        if cache is not None:
            cache[f"blocks.{l}.resid_pre"] = resid
        q, k, v = _qkv(p, l, _attn_in(p, l, resid, cfg.norm), cfg.n_heads)
        z, pattern = _attend(q, k, v, mask)
        if cache is not None:
            cache[f"blocks.{l}.attn.pattern"] = pattern
        a = _out(p, l, z)
        resid = _after_attn(p, l, resid, drop(a) if drop else a, cfg.norm)
        resid = _mlp_sublayer(p, l, resid, cfg, drop, cache)
    if cache is not None:
        cache["resid_final"] = resid
    return _unembed(p, resid, cfg)


# -- the fast answer-only forward -------------------------------------------------------------


class Layer0Tables(NamedTuple):
    """Layer 0's inputs are one token at one position: each distinct (token, position) pair is a row.

    Rows, for n symbols: ``x`` at position 0 (rows 0..n-1), ``op`` (row n), ``y`` at position 2
    (rows n+1..2n), ``=`` (row 2n+1).
    """

    resid: Tensor  # (E, R, D): token plus position embedding of each row
    v: Tensor  # (E, R, H, dh): layer 0's values
    scores: Tensor  # (E, R * R, H): every (query row, key row) score, scaled


def _prefix_rows(lay: TokenLayout, x: Tensor) -> Tensor:
    """Table rows of ``x op``: x (E, N) -> (E, N, 2)."""
    return torch.stack([x, torch.full_like(x, lay.n_symbols)], dim=-1)


def _suffix_rows(lay: TokenLayout, y: Tensor) -> Tensor:
    """Table rows of ``y =``: y (E, N) -> (E, N, 2)."""
    return torch.stack([y + lay.n_symbols + 1, torch.full_like(y, 2 * lay.n_symbols + 1)], dim=-1)


def _layer0_tables(p: Params, cfg: TransformerConfig) -> Layer0Tables:
    lay, W_E, W_pos = cfg.layout, p["W_E"], p["W_pos"]
    n = lay.n_symbols
    resid = torch.cat([W_E[:, :n] + W_pos[:, None, lay.X], (W_E[:, lay.op_token] + W_pos[:, lay.OP])[:, None],
                       W_E[:, :n] + W_pos[:, None, lay.Y], (W_E[:, lay.eq_token] + W_pos[:, lay.EQ])[:, None]], dim=1)
    q, k, v = _qkv(p, 0, _attn_in(p, 0, resid, cfg.norm), cfg.n_heads)  # each (E, R, H, dh)
    E, R = resid.shape[:2]
    scores = torch.einsum("eqhd,ekhd->eqkh", q, k).reshape(E, R * R, cfg.n_heads) / math.sqrt(q.shape[-1])
    return Layer0Tables(resid, v, scores)


def _table_attend(t: Layer0Tables, q_rows: Tensor, k_rows: Tensor, mask: Tensor) -> Tensor:
    """Layer 0's attention with queries and keys given as table rows: q_rows (E, N, Sq), k_rows (E, N, Sk),
    mask (Sq, Sk) -> z (E, N, Sq, H, dh)."""
    R = t.v.shape[1]
    s = gather_rows(t.scores, q_rows.unsqueeze(-1) * R + k_rows.unsqueeze(-2))  # (E, N, Sq, Sk, H)
    pattern = s.masked_fill(~mask[:, :, None], float("-inf")).softmax(3)
    return (pattern.unsqueeze(-1) * gather_rows(t.v, k_rows).unsqueeze(2)).sum(3)


def _answer_attend(q: Tensor, ks: tuple[Tensor, ...], vs: tuple[Tensor, ...]) -> Tensor:
    """The answer position's attention, keys and values given in parts along the key axis (no concatenated
    copies): q (E, N, 1, H, dh), parts (E, N, S_i, H, dh) -> z (E, N, 1, H, dh)."""
    q = q / math.sqrt(q.shape[-1])
    pattern = torch.cat([(q * k).sum(-1) for k in ks], dim=2).softmax(2)  # (E, N, Sk, H)
    parts = pattern.split([k.shape[2] for k in ks], dim=2)
    return sum((w.unsqueeze(-1) * v).sum(2) for w, v in zip(parts, vs)).unsqueeze(2)


class Prefix(NamedTuple):
    """What the answer needs that depends on the parameters only, computed once per forward (or per
    evaluation, shared by all its chunks of examples)."""

    tables: Layer0Tables
    kv: list[tuple[Tensor, Tensor]]  # layers 1..L-1: keys and values of ``x op`` for every symbol x, (E, n, 2, H, dh)


def prepare(p: Params, cfg: TransformerConfig) -> Prefix | None:
    """The layer-0 tables, and the prefix per symbol (positions ``x op``, which causal attention keeps
    independent of y) carried through the layers, keeping each later layer's keys and values. None for a
    sequence task, which takes the plain forward."""
    if cfg.n_inputs:
        return None
    lay, H, last = cfg.layout, cfg.n_heads, cfg.n_layers - 1
    t = _layer0_tables(p, cfg)
    sym_rows = _prefix_rows(lay, torch.arange(lay.n_symbols, device=t.resid.device).expand(t.resid.shape[0], -1))
    mask = _causal(2, t.resid.device)
    pre, kv = gather_rows(t.resid, sym_rows), []  # (E, n, 2, D)
    zp = _table_attend(t, sym_rows, sym_rows, mask) if last else None
    for l in range(1, last + 1):
        pre = _rest_of_block(p, l - 1, cfg, pre, zp)
        h = _attn_in(p, l, pre, cfg.norm)
        if l < last:
            qp, kp, vp = _qkv(p, l, h, H)
            zp, _ = _attend(qp, kp, vp, mask)
        else:  # the last layer reads the prefix's keys and values only
            kp, vp = _qkv(p, l, h, H, "KV")
        kv.append((kp, vp))
    return Prefix(t, kv)


def _suffix_layer(p: Params, l: int, cfg: TransformerConfig, suf: Tensor, kx: Tensor, vx: Tensor,
                  mask: Tensor) -> Tensor:
    """A middle layer at positions ``y =``: attend to x's prefix keys and values (gathered) and to itself."""
    qs, ks, vs = _qkv(p, l, _attn_in(p, l, suf, cfg.norm), cfg.n_heads)
    z, _ = _attend(qs, torch.cat([kx, ks], dim=2), torch.cat([vx, vs], dim=2), mask[2:])
    return _rest_of_block(p, l, cfg, suf, z)


def _answer_row(p: Params, l: int, cfg: TransformerConfig, suf: Tensor, kx: Tensor, vx: Tensor) -> Tensor:
    """The last layer (not layer 0) at the answer position only: keys and values at every position, the query
    and the MLP at the answer row -> residual (E, N, D)."""
    H = cfg.n_heads
    h = _attn_in(p, l, suf, cfg.norm)
    ks, vs = _qkv(p, l, h, H, "KV")
    qs = _qkv(p, l, h[:, :, 1:], H, "Q")[0]
    z = _answer_attend(qs, (kx, ks), (vx, vs))
    return _rest_of_block(p, l, cfg, suf[:, :, 1:], z)[:, :, 0]


def forward_answer(p: Params, x: Tensor, y: Tensor, cfg: TransformerConfig, prefix: Prefix | None = None) -> Tensor:
    """Logits at the answer position: x, y (E, N) symbol indices -> (E, N, n_symbols). No dropout.

    Equal to ``forward(p, layout.tokens(x, y))[..., -1, :]`` up to float rounding (see the module doc).
    ``prefix``: ``prepare(p, cfg)`` when the caller reuses it across batches of the same parameters.
    """
    lay = cfg.layout
    prefix = prefix if prefix is not None else prepare(p, cfg)
    t = prefix.tables
    x_rows, y_rows = _prefix_rows(lay, x), _suffix_rows(lay, y)
    keys0 = torch.cat([x_rows, y_rows], dim=-1)  # layer 0's keys of each example: x, op, y, =
    suf = gather_rows(t.resid, y_rows)  # (E, N, 2, D)
    mask = _causal(lay.SEQ_LEN, x.device)
    if cfg.n_layers == 1:
        z = _table_attend(t, y_rows[..., 1:], keys0, mask[3:])
        return _unembed(p, _rest_of_block(p, 0, cfg, suf[:, :, 1:], z)[:, :, 0], cfg)
    suf = _rest_of_block(p, 0, cfg, suf, _table_attend(t, y_rows, keys0, mask[2:]))
    for l, (kp, vp) in enumerate(prefix.kv, start=1):
        kx, vx = gather_rows(kp, x), gather_rows(vp, x)  # x's prefix keys and values: (E, N, 2, H, dh)
        if l < cfg.n_layers - 1:
            suf = _suffix_layer(p, l, cfg, suf, kx, vx, mask)
        else:
            return _unembed(p, _answer_row(p, l, cfg, suf, kx, vx), cfg)


def sequence_tokens(x: Tensor, cfg: TransformerConfig) -> Tensor:
    """A sequence task's examples as tokens: input vectors (E, N, n_inputs) of symbols (parity's 0 / 1 bits)
    -> (E, N, n_inputs + 1), ending with ``=``."""
    eq = torch.full((*x.shape[:-1], 1), cfg.layout.eq_token, dtype=torch.long, device=x.device)
    return torch.cat([x.long(), eq], dim=-1)


def answer_logits(p: Params, x: Tensor, y: Tensor, cfg: TransformerConfig,
                  drop: Callable[[Tensor], Tensor] | None = None, prepared: Prefix | None = None) -> Tensor:
    """Logits at the answer: x, y (E, N) -> (E, N, n_symbols). The fast path (``prepared``: ``prepare(p, cfg)``
    reused); with dropout the plain forward (dropout touches every position). A sequence task's x are its
    input vectors (E, N, n_inputs): the plain forward over their tokens and ``=``."""
    if cfg.n_inputs:
        return forward(p, sequence_tokens(x, cfg), cfg, drop)[:, :, -1]
    if drop is None:
        return forward_answer(p, x, y, cfg, prepared)
    return forward(p, cfg.layout.tokens(x, y), cfg, drop)[:, :, -1]


N_HEADS = Field("n_heads", 4, "attention heads (d_model must divide by it)", min=1)
NORM = Field("norm", "post", "LayerNorm placement", choices=("post", "pre", "none"))

TRANSFORMER = ModelSpec(
    "transformer", "the paper's decoder-only transformer (causal attention, post-LayerNorm by default)",
    TransformerConfig, param_shapes, answer_logits, forward, fields=(N_LAYERS, D_MODEL, N_HEADS, D_MLP, ACT, NORM),
    check=check, prepare=prepare, neurons=lambda mcfg: f"blocks.{mcfg.n_layers - 1}.mlp.W_out",
    # per position and layer: the residual stream, q, k, v, the attention output and norms (~10 d_model), the MLP's
    # input and activation (~3 d_mlp), the attention pattern (2 heads x positions); the answer's logits, float32
    activations=lambda m: 4 * (m.n_ctx * m.n_layers * (10 * m.d_model + 3 * m.d_mlp + 2 * m.n_heads * m.n_ctx)
                               + 3 * m.n_symbols))
