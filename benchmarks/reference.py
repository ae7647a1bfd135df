"""The straightforward training loop a user would write for the paper's setup (the baseline).

A plain ``nn.Module`` transformer (``nn.Embedding``, ``nn.MultiheadAttention``,
``nn.Linear``, post-LayerNorm as in the paper's code) run over all positions,
the answer read at the last one, ``torch.optim.AdamW`` (default foreach
implementation) with a linear warm-up, and minibatches drawn as index gathers
from tensors (no DataLoader). ``load_groklab_params`` copies a groklab model's
weights in, so tests can check that both compute the same function.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_mlp: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
        self.ln1 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_mlp), nn.ReLU(), nn.Linear(d_mlp, d_model))
        self.ln2 = nn.LayerNorm(d_model)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        a, _ = self.attn(h, h, h, attn_mask=mask, need_weights=False)
        h = self.ln1(h + a)
        return self.ln2(h + self.mlp(h))


class ReferenceTransformer(nn.Module):
    def __init__(self, d_vocab: int, n_out: int, n_layers=2, d_model=128, n_heads=4, d_mlp=512, n_ctx=4):
        super().__init__()
        self.embed = nn.Embedding(d_vocab, d_model)
        self.pos = nn.Parameter(torch.randn(n_ctx, d_model))
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_mlp) for _ in range(n_layers))
        self.unembed = nn.Linear(d_model, n_out)
        self.register_buffer("mask", torch.triu(torch.ones(n_ctx, n_ctx, dtype=torch.bool), 1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) + self.pos[: tokens.shape[1]]
        for block in self.blocks:
            h = block(h, self.mask)
        return self.unembed(h)


def reference_step(tokens, targets, train_idx, batch_size, seed=0, lr=1e-3, weight_decay=1.0, warmup=10,
                   n_symbols=97, device="cpu"):
    """The straightforward training loop's body: returns ``step()``, one AdamW update of a fresh reference
    model on the next minibatch (a permutation of ``train_idx`` per epoch, drawn on the device)."""
    torch.manual_seed(seed)
    model = ReferenceTransformer(n_symbols + 2, n_symbols).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(warmup, 1)))
    tokens, targets, train_idx = tokens.to(device), targets.to(device), train_idx.to(device)
    state = {"perm": torch.randperm(len(train_idx), device=device), "cursor": 0}

    def step():
        if state["cursor"] + batch_size > len(train_idx):
            state["perm"], state["cursor"] = torch.randperm(len(train_idx), device=device), 0
        idx = train_idx[state["perm"][state["cursor"]: state["cursor"] + batch_size]]
        state["cursor"] += batch_size
        loss = F.cross_entropy(model(tokens[idx])[:, -1], targets[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()

    return step


def load_groklab_params(model: ReferenceTransformer, params: dict[str, torch.Tensor]) -> None:
    """Copy one groklab model (names as ``groklab.models``, no ensemble axis) into the reference."""
    with torch.no_grad():
        model.embed.weight.copy_(params["W_E"])
        model.pos.copy_(params["W_pos"])
        for l, block in enumerate(model.blocks):
            b = f"blocks.{l}."
            W = torch.cat([params[b + f"attn.W_{n}"].permute(0, 2, 1).reshape(-1, params["W_E"].shape[1])
                           for n in "QKV"])
            block.attn.in_proj_weight.copy_(W)
            block.attn.in_proj_bias.copy_(torch.cat([params[b + f"attn.b_{n}"].reshape(-1) for n in "QKV"]))
            block.attn.out_proj.weight.copy_(params[b + "attn.W_O"].reshape(-1, W.shape[1]).T)
            block.attn.out_proj.bias.copy_(params[b + "attn.b_O"])
            block.ln1.weight.copy_(params[b + "ln1.w"])
            block.ln1.bias.copy_(params[b + "ln1.b"])
            block.ln2.weight.copy_(params[b + "ln2.w"])
            block.ln2.bias.copy_(params[b + "ln2.b"])
            block.mlp[0].weight.copy_(params[b + "mlp.W_in"].T)
            block.mlp[0].bias.copy_(params[b + "mlp.b_in"])
            block.mlp[2].weight.copy_(params[b + "mlp.W_out"].T)
            block.mlp[2].bias.copy_(params[b + "mlp.b_out"])
        model.unembed.weight.copy_(params["W_U"].T)
        model.unembed.bias.copy_(params["b_U"])
