"""The plain PyTorch training script a researcher starts from, as a whole process (the baseline of bench_whole.py).

    python benchmarks/plain_loop.py --steps 600 --eval epoch      # its own default: validation after every epoch
    python benchmarks/plain_loop.py --steps 600 --eval groklab    # groklab's evaluations: the full train and
                                                                 # validation sets at groklab's schedule

The shape of the public grokking reimplementations of Power et al. (a script of one file): build the x / y mod p
table, split it at random, train the paper's transformer (benchmarks/reference.py: ``nn.Embedding``,
``nn.MultiheadAttention``, ``nn.Linear``) with ``torch.optim.AdamW`` and a linear warm-up on minibatches of 512
drawn from a per-epoch permutation, read the training loss and accuracy off each batch, evaluate, and write the
metrics to a CSV file at the end. Nothing but PyTorch and the standard library is imported; no groklab code.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from reference import ReferenceTransformer  # noqa: E402


def division_table(p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every equation ``x / y = z (mod p)``, y != 0, as tokens ``x, op, y, =`` and its answer."""
    x, y = torch.meshgrid(torch.arange(p), torch.arange(1, p), indexing="ij")
    x, y = x.reshape(-1), y.reshape(-1)
    z = x * torch.tensor([pow(int(v), p - 2, p) for v in y]) % p
    op, eq = torch.full_like(x, p), torch.full_like(x, p + 1)
    return torch.stack([x, op, y, eq], 1), z


def groklab_schedule(step: int, steps: int, every: int = 10) -> bool:
    """groklab's default evaluation steps (every ``every`` early on, then a tenth of the power of ten)."""
    return step == 0 or step >= steps or step % max(every, 10 ** int(math.log10(max(step, 1))) // 10) == 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--eval", choices=["epoch", "groklab"], default="epoch")
    ap.add_argument("--modulus", type=int, default=97)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--out", type=Path, default=None, help="metrics CSV (default: none written)")
    a = ap.parse_args()

    torch.manual_seed(0)
    tokens, answers = division_table(a.modulus)
    perm = torch.randperm(len(tokens))
    n_train = len(tokens) // 2
    train_idx, val_idx = perm[:n_train], perm[n_train:]
    model = ReferenceTransformer(a.modulus + 2, a.modulus)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 10))

    def evaluate(idx: torch.Tensor) -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model(tokens[idx[i: i + 1024]])[:, -1] for i in range(0, len(idx), 1024)])
        model.train()
        return F.cross_entropy(logits, answers[idx]).item(), (logits.argmax(-1) == answers[idx]).float().mean().item()

    rows, step, epoch = [], 0, 0
    while step < a.steps:
        order = train_idx[torch.randperm(n_train)]
        for i in range(0, n_train, a.batch_size):  # one epoch (its last batch may be short)
            if a.eval == "groklab" and groklab_schedule(step, a.steps):
                rows.append((step, *evaluate(train_idx), *evaluate(val_idx)))
            idx = order[i: i + a.batch_size]
            logits = model(tokens[idx])[:, -1]
            loss = F.cross_entropy(logits, answers[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            train_loss, train_acc = loss.item(), (logits.argmax(-1) == answers[idx]).float().mean().item()
            if step >= a.steps:
                break
        epoch += 1
        if a.eval == "epoch":
            rows.append((step, train_loss, train_acc, *evaluate(val_idx)))
    if a.eval == "groklab":
        rows.append((step, *evaluate(train_idx), *evaluate(val_idx)))
    if a.out is not None:
        with open(a.out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["step", "train_loss", "train_acc", "val_loss", "val_acc"])
            w.writerows(rows)
    print(f"{step} updates, {len(rows)} evaluations, final validation accuracy {rows[-1][-1]:.3f}")


if __name__ == "__main__":
    main()
