"""The paper's decoder-only transformer, written once for one model or a stack of many.

Parameters live in a dict of tensors with TransformerLens names (``W_E``,
``blocks.0.attn.W_Q``, ...), each with a leading *ensemble* axis ``E``: one
run is ``E = 1``, a vectorized sweep stacks many runs. Two forwards compute
the same function:

- ``forward(params, tokens)``: the plain computation over all positions,
  returning logits ``(E, batch, seq, d_vocab_out)``; it supports dropout and an
  activation cache, and is the reference the fast path is tested against.
- ``forward_answer(params, x, y)``: logits at the answer position only
  ``(E, batch, d_vocab_out)``. With causal attention the positions ``x op``
  depend on x alone, so they are computed once per symbol and gathered; the
  last layer computes its query and MLP at the last position only. Same
  numbers, a fraction of the work.

``Transformer`` wraps one model's parameters as an ``nn.Module`` for analysis::

    model = Transformer.from_run("runs/my-run")
    logits, cache = model.run_with_cache(tokens)   # cache["blocks.0.attn.pattern"]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Params = dict[str, Tensor]


@dataclass(frozen=True)
class ModelConfig:
    n_symbols: int  # operands/answers; the vocabulary adds "op" and "="
    n_layers: int = 2
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    act: str = "relu"
    norm: str = "post"  # "post" (paper code), "pre", or "none"
    dropout: float = 0.0
    init_scale: float = 1.0
    n_ctx: int = 4

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def d_vocab(self) -> int:
        return self.n_symbols + 2

    @classmethod
    def from_run_config(cls, cfg, n_symbols: int) -> "ModelConfig":
        return cls(n_symbols, cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_mlp, cfg.act,
                   cfg.norm, cfg.dropout, cfg.init_scale)


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[tuple[int, ...], str, int]]:
    """name -> (shape of one model, init kind, fan_in)."""
    D, H, dh, M, V = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp, cfg.d_vocab
    s = {"W_E": ((V, D), "embed", 0), "W_pos": ((cfg.n_ctx, D), "embed", 0)}
    for l in range(cfg.n_layers):
        b = f"blocks.{l}."
        for n in "QKV":
            s[b + f"attn.W_{n}"] = ((H, D, dh), "linear", D)
            s[b + f"attn.b_{n}"] = ((H, dh), "linear", D)
        s[b + "attn.W_O"] = ((H, dh, D), "linear", D)
        s[b + "attn.b_O"] = ((D,), "linear", D)
        s[b + "mlp.W_in"] = ((D, M), "linear", D)
        s[b + "mlp.b_in"] = ((M,), "linear", D)
        s[b + "mlp.W_out"] = ((M, D), "linear", M)
        s[b + "mlp.b_out"] = ((D,), "linear", M)
        if cfg.norm != "none":
            for ln in ("ln1", "ln2"):
                s[b + f"{ln}.w"] = ((D,), "ones", 0)
                s[b + f"{ln}.b"] = ((D,), "zeros", 0)
    if cfg.norm == "pre":
        s["ln_final.w"] = ((D,), "ones", 0)
        s["ln_final.b"] = ((D,), "zeros", 0)
    s["W_U"] = ((D, cfg.n_symbols), "linear", D)
    s["b_U"] = ((cfg.n_symbols,), "linear", D)
    return s


def init_params(cfg: ModelConfig, seeds: list[int]) -> Params:
    """Stacked parameters ``(E, ...)``, member e drawn from its own generator seeded by ``seeds[e]``.

    As PyTorch's ``nn.Embedding`` (N(0, 1)) and ``nn.Linear`` (U(+-1/sqrt(fan_in))),
    times ``init_scale``.
    """
    members = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(seed)
        p = {}
        for name, (shape, kind, fan_in) in param_shapes(cfg).items():
            if kind == "embed":
                t = torch.randn(shape, generator=gen) * cfg.init_scale
            elif kind == "linear":
                bound = 1 / math.sqrt(fan_in)
                t = (torch.rand(shape, generator=gen) * 2 - 1) * bound * cfg.init_scale
            else:
                t = torch.ones(shape) if kind == "ones" else torch.zeros(shape)
            p[name] = t
        members.append(p)
    return {k: torch.stack([m[k] for m in members]) for k in members[0]}


def n_params(cfg: ModelConfig, embeddings: bool = False) -> int:
    """Parameter count of one model; without embeddings (W_E, W_pos, W_U, b_U) by default, as the paper counts."""
    skip = set() if embeddings else {"W_E", "W_pos", "W_U", "b_U"}
    return sum(math.prod(s) for n, (s, _, _) in param_shapes(cfg).items() if n not in skip)


# -- pieces ----------------------------------------------------------------------


def gather_rows(table: Tensor, index: Tensor) -> Tensor:
    """Per-member row lookup: table (E, R, *rest), index (E, *idx) -> (E, *idx, *rest)."""
    E, R = table.shape[:2]
    rest = table.shape[2:]
    flat = table.reshape(E * R, -1)
    if E > 1:
        index = index + (torch.arange(E, device=index.device) * R).view(E, *([1] * (index.dim() - 1)))
    return flat.index_select(0, index.reshape(-1)).view(*index.shape, *rest)


def _ln(h: Tensor, p: Params, name: str) -> Tensor:
    """LayerNorm with per-member affine: h (E, ..., D)."""
    w, b = p[name + ".w"], p[name + ".b"]
    if w.shape[0] == 1:  # one model: PyTorch's fused affine
        return F.layer_norm(h, h.shape[-1:], w.view(-1), b.view(-1))
    shape = (w.shape[0],) + (1,) * (h.dim() - 2) + (w.shape[-1],)
    return torch.addcmul(b.view(shape), F.layer_norm(h, h.shape[-1:]), w.view(shape))


def _linear(h: Tensor, W: Tensor, b: Tensor) -> Tensor:
    """h (E, ..., K) @ W (E, K, N) + b (E, N) -> (E, ..., N)."""
    E, K, N = W.shape
    if E == 1:  # one model: a plain matmul
        return torch.addmm(b.view(N), h.reshape(-1, K), W.view(K, N)).view(*h.shape[:-1], N)
    return torch.baddbmm(b.unsqueeze(1), h.reshape(E, -1, K), W).view(*h.shape[:-1], N)


def _qkv(p: Params, l: int, h: Tensor, H: int, parts: str = "QKV") -> tuple[Tensor, ...]:
    """h (E, N, S, D) -> the projections named in ``parts``, each (E, N, S, H, d_head)."""
    a = f"blocks.{l}.attn."
    E, D = h.shape[0], h.shape[-1]
    W = torch.cat([p[a + f"W_{n}"].permute(0, 2, 1, 3).reshape(E, D, -1) for n in parts], dim=-1)
    b = torch.cat([p[a + f"b_{n}"].reshape(E, -1) for n in parts], dim=-1)
    return _linear(h, W, b).view(*h.shape[:-1], len(parts), H, -1).unbind(-3)


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
    return _linear(z.flatten(-2), W.reshape(W.shape[0], -1, W.shape[-1]), p[a + "b_O"])


def _attn_in(p: Params, l: int, resid: Tensor, norm: str) -> Tensor:
    return _ln(resid, p, f"blocks.{l}.ln1") if norm == "pre" else resid


def _after_attn(p: Params, l: int, resid: Tensor, a: Tensor, norm: str) -> Tensor:
    return _ln(resid + a, p, f"blocks.{l}.ln1") if norm == "post" else resid + a


def _mlp_sublayer(p: Params, l: int, resid: Tensor, cfg: ModelConfig, drop=None, cache=None) -> Tensor:
    m = f"blocks.{l}.mlp."
    h = _ln(resid, p, f"blocks.{l}.ln2") if cfg.norm == "pre" else resid
    post = (F.relu if cfg.act == "relu" else F.gelu)(_linear(h, p[m + "W_in"], p[m + "b_in"]))
    if cache is not None:
        cache[m + "post"] = post
    out = _linear(post, p[m + "W_out"], p[m + "b_out"])
    if drop is not None:
        out = drop(out)
    return _ln(resid + out, p, f"blocks.{l}.ln2") if cfg.norm == "post" else resid + out


def _unembed(p: Params, h: Tensor, cfg: ModelConfig) -> Tensor:
    if cfg.norm == "pre":
        h = _ln(h, p, "ln_final")
    return _linear(h, p["W_U"], p["b_U"])


def _causal(n: int, device) -> Tensor:
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()


# -- the two forwards -------------------------------------------------------------


def forward(p: Params, tokens: Tensor, cfg: ModelConfig, train: bool = False,
            cache: dict | None = None) -> Tensor:
    """Plain forward over every position: tokens (E, N, S) -> logits (E, N, S, n_symbols).

    Residual dropout (after each attention and MLP sublayer) is applied when ``train``.
    """
    S = tokens.shape[-1]
    drop = (lambda t: F.dropout(t, cfg.dropout, True)) if train and cfg.dropout > 0 else None
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


def _table_attend(scores: Tensor, v_table: Tensor, q_rows: Tensor, k_rows: Tensor, mask: Tensor) -> Tensor:
    """Attention whose queries, keys and values are rows of a table (layer 0, one token each).

    scores (E, R * R, H): every (query row, key row) dot product, scaled; v_table (E, R, H, dh);
    q_rows (E, N, Sq) and k_rows (E, N, Sk) table rows; mask (Sq, Sk) -> z (E, N, Sq, H, dh).
    """
    R = v_table.shape[1]
    s = gather_rows(scores, q_rows.unsqueeze(-1) * R + k_rows.unsqueeze(-2))  # (E, N, Sq, Sk, H)
    pattern = s.masked_fill(~mask[:, :, None], float("-inf")).softmax(3)
    return (pattern.unsqueeze(-1) * gather_rows(v_table, k_rows).unsqueeze(2)).sum(3)


def _answer_attend(q: Tensor, ks: tuple[Tensor, ...], vs: tuple[Tensor, ...]) -> Tensor:
    """The last position's attention, keys and values given in parts along the key axis (no concatenated copies):
    q (E, N, 1, H, dh), parts (E, N, S_i, H, dh) -> z (E, N, 1, H, dh)."""
    q = q / math.sqrt(q.shape[-1])
    pattern = torch.cat([(q * k).sum(-1) for k in ks], dim=2).softmax(2)  # (E, N, Sk, H)
    parts = pattern.split([k.shape[2] for k in ks], dim=2)
    return sum((w.unsqueeze(-1) * v).sum(2) for w, v in zip(parts, vs)).unsqueeze(2)


def forward_answer(p: Params, x: Tensor, y: Tensor, cfg: ModelConfig) -> Tensor:
    """Logits at the answer position: x, y (E, N) symbol indices -> (E, N, n_symbols). No dropout.

    Equal to ``forward(p, tokens(x, y))[..., -1, :]`` up to float rounding. Causal attention
    lets positions 0, 1 (``x op``) be computed once per symbol ("prefix") and gathered by x.
    Layer 0 sees one token per position, and there are only ``2 ns + 2`` distinct (token,
    position) inputs: its queries, keys, values and every query-key score come from tables
    over those rows, gathered per example. The last layer needs its query and MLP at the
    answer position only.
    """
    E, N = x.shape
    ns, H = cfg.n_symbols, cfg.n_heads
    W_E, W_pos = p["W_E"], p["W_pos"]
    # every distinct layer-0 input, as table rows: x at position 0, "op", y at position 2, "=": (E, R, D)
    table = torch.cat([W_E[:, :ns] + W_pos[:, None, 0], (W_E[:, ns] + W_pos[:, 1])[:, None],
                       W_E[:, :ns] + W_pos[:, None, 2], (W_E[:, ns + 1] + W_pos[:, 3])[:, None]], dim=1)
    R, op_row, eq_row = 2 * ns + 2, ns, 2 * ns + 1
    q_t, k_t, v_t = _qkv(p, 0, _attn_in(p, 0, table, cfg.norm), H)  # each (E, R, H, dh)
    scores = torch.einsum("eqhd,ekhd->eqkh", q_t, k_t).reshape(E, R * R, H) / math.sqrt(q_t.shape[-1])
    sym = torch.arange(ns, device=x.device).expand(E, ns)
    pre_rows = torch.stack([sym, torch.full_like(sym, op_row)], dim=2)  # (E, ns, 2): x, op
    suf_rows = torch.stack([y + ns + 1, torch.full_like(y, eq_row)], dim=2)  # (E, N, 2): y, =
    pre, suf = gather_rows(table, pre_rows), gather_rows(table, suf_rows)  # (E, ns | N, 2, D)
    mask = _causal(4, x.device)
    for l in range(cfg.n_layers):
        last = l == cfg.n_layers - 1
        if l == 0:
            zp = _table_attend(scores, v_t, pre_rows, pre_rows, mask[:2, :2])
            keys = torch.stack([x, torch.full_like(x, op_row), suf_rows[..., 0], suf_rows[..., 1]], dim=2)
            z = _table_attend(scores, v_t, suf_rows, keys, mask[2:])
        else:
            h_pre, h_suf = _attn_in(p, l, pre, cfg.norm), _attn_in(p, l, suf, cfg.norm)
            if last:  # the query at the answer position only
                (kp, vp), (ks, vs) = _qkv(p, l, h_pre, H, "KV"), _qkv(p, l, h_suf, H, "KV")
                qs = _qkv(p, l, h_suf[:, :, 1:], H, "Q")[0]
            else:
                (qp, kp, vp), (qs, ks, vs) = _qkv(p, l, h_pre, H), _qkv(p, l, h_suf, H)
            kx, vx = gather_rows(kp, x), gather_rows(vp, x)  # the prefix's keys and values by x: (E, N, 2, H, dh)
            if last:
                z = _answer_attend(qs, (kx, ks), (vx, vs))
            else:
                z, _ = _attend(qs, torch.cat([kx, ks], dim=2), torch.cat([vx, vs], dim=2), mask[2:])
                zp, _ = _attend(qp, kp, vp, mask[:2, :2])
        if last:  # only the answer position is read out
            suf, z = suf[:, :, 1:], z[:, :, -1:]
        else:
            pre = _mlp_sublayer(p, l, _after_attn(p, l, pre, _out(p, l, zp), cfg.norm), cfg)
        suf = _mlp_sublayer(p, l, _after_attn(p, l, suf, _out(p, l, z), cfg.norm), cfg)
    return _unembed(p, suf[:, :, 0], cfg)


# -- one model as an nn.Module, for analysis -----------------------------------------


class Transformer(nn.Module):
    """One trained model. ``model["blocks.0.attn.W_Q"]`` is a parameter of shape (n_heads, d_model, d_head)."""

    def __init__(self, cfg: ModelConfig, params: Params | None = None):
        super().__init__()
        self.cfg = cfg
        params = params if params is not None else {k: v[0] for k, v in init_params(cfg, [0]).items()}
        self.params = nn.ParameterDict({k.replace(".", "__"): nn.Parameter(v.clone()) for k, v in params.items()})

    def __getitem__(self, name: str) -> Tensor:
        return self.params[name.replace(".", "__")]

    def state(self) -> Params:
        """Parameters by their TransformerLens-style names, shapes without the ensemble axis."""
        return {k.replace("__", "."): v for k, v in self.params.items()}

    def _stacked(self) -> Params:
        return {k: v.unsqueeze(0) for k, v in self.state().items()}

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens (batch, seq) -> logits (batch, seq, n_symbols)."""
        return forward(self._stacked(), tokens.unsqueeze(0), self.cfg, self.training)[0]

    def run_with_cache(self, tokens: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        cache: dict[str, Tensor] = {}
        logits = forward(self._stacked(), tokens.unsqueeze(0), self.cfg, False, cache)[0]
        return logits, {k: v[0] for k, v in cache.items()}

    @classmethod
    def from_run(cls, run_dir) -> "Transformer":
        from .rundir import load_model

        return load_model(run_dir)
