"""Updates per second: the straightforward reference loop vs groklab's engine, one run and ensembles.

    python benchmarks/bench_engine.py                    # CPU, paper model, div mod 97, 50%, batch 512
    python benchmarks/bench_engine.py --device cuda --ensembles 8,32,64

Measured in one process on one machine:
  (a) reference: a plain nn.Module transformer over all positions, torch.optim.AdamW,
      minibatches as index gathers (benchmarks/reference.py);
  (b) groklab, one run (answer-only forward, flat-buffer AdamW);
  (c) groklab ensembles of E runs trained as one stacked model.
(a') is the reference again after the process-wide malloc setting that groklab's engine makes
on the CPU (keep_freed_memory), to show what that setting alone is worth.
Printed: updates/s, the ratios b/a and c/a (per run), and FLOP/s against the machine's
matmul peak measured here. "model FLOP" counts the reference computation (what an update
means); "executed" counts what groklab's engine actually multiplies.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from reference import ReferenceTransformer  # noqa: E402

from groklab import RunConfig  # noqa: E402
from groklab.tasks import make_table, split, tokens  # noqa: E402
from groklab.train import Group, keep_freed_memory  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device, n=2048, reps=10) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t)


def flops_per_update(cfg: RunConfig, B: int, answer_only: bool) -> float:
    """Matmul FLOPs of forward + backward (3x forward) for one update of one run."""
    D, M, L, V = cfg.d_model, cfg.d_mlp, cfg.n_layers, cfg.modulus
    per_token_layer = 4 * D * D + 2 * D * M  # qkv + out, mlp
    if not answer_only:
        macs = 4 * (L * per_token_layer + D * V)
    else:  # positions 2, 3 in all but the last layer (qkv of layer 0 from a table); K, V at 2 and 3 and the
        # rest at 3 only in the last
        macs = 2 * (per_token_layer - 3 * D * D) + (L - 2) * 2 * per_token_layer + 5 * D * D + D * D + 2 * D * M
        macs += D * V
    return 3 * 2 * macs * B


def time_it(fn, steps, device, warmup=3) -> float:
    for _ in range(warmup):
        fn()
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return steps / (time.perf_counter() - t)


def reference_rate(cfg: RunConfig, device, steps: int) -> float:
    X, Y, Z = (torch.from_numpy(a).to(device) for a in make_table(cfg.task, cfg.modulus))
    T = tokens(X, Y, cfg.modulus)
    tr, _ = split(len(X), cfg.train_fraction, cfg.seed)
    tr = tr.to(device)
    torch.manual_seed(0)
    model = ReferenceTransformer(cfg.modulus + 2, cfg.modulus).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=1.0)
    B = cfg.resolved_batch_size
    state = {"perm": torch.randperm(len(tr), device=device), "cursor": 0}

    def step():
        if state["cursor"] + B > len(tr):
            state["perm"], state["cursor"] = torch.randperm(len(tr), device=device), 0
        idx = tr[state["perm"][state["cursor"]: state["cursor"] + B]]
        state["cursor"] += B
        loss = F.cross_entropy(model(T[idx])[:, -1], Z[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return time_it(step, steps, device)


def engine_rate(cfg: RunConfig, E: int, steps: int) -> float:
    g = Group.build([cfg.replace(seed=s) for s in range(E)], [None] * E)
    return time_it(g.step, steps, torch.device(g.X.device))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=30, help="timed updates per measurement")
    ap.add_argument("--ensembles", default="8,32")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--compile", action="store_true", help="also time the one-run engine under torch.compile")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg = RunConfig(task="div", modulus=97, train_fraction=0.5, device=args.device)
    B = cfg.resolved_batch_size
    peak = matmul_peak(device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"matmul peak {peak / 1e9:.0f} GFLOP/s (2048^3 fp32)")
    print(f"paper model, div mod 97, 50% data, batch {B}\n")
    f_ref, f_ans = flops_per_update(cfg, B, False), flops_per_update(cfg, B, True)
    a = reference_rate(cfg, device, args.steps)  # before anything changes the process's allocator
    rows = [("(a) reference loop", 1, a)]
    if device.type == "cpu" and keep_freed_memory():  # groklab's train_group does this on the CPU
        rows.append(("(a') reference, groklab's malloc setting", 1, reference_rate(cfg, device, args.steps)))
    rows.append(("(b) groklab, one run", 1, engine_rate(cfg, 1, args.steps)))
    rows.append(("(b') groklab, one run, bf16 autocast", 1, engine_rate(cfg.replace(precision="bf16"), 1, args.steps)))
    if args.compile:
        rows.append(("(b'') groklab, one run, torch.compile", 1, engine_rate(cfg.replace(compile=True), 1, args.steps)))
    for E in (int(e) for e in args.ensembles.split(",") if e):
        rows.append((f"(c) groklab, ensemble of {E}", E, engine_rate(cfg, E, max(3, args.steps // max(1, E // 4)))))
    print(f"{'':36} {'updates/s':>10} {'per run':>9} {'vs (a)':>7} {'model FLOP/s':>13} {'executed':>9}")
    for name, E, rate in rows:
        per_run = rate * E
        exe = f_ref if name.startswith("(a") else f_ans
        print(f"{name:36} {rate:10.2f} {per_run:9.2f} {per_run / a:6.2f}x "
              f"{per_run * f_ref / peak:12.0%} {per_run * exe / peak:8.0%}")
    print("\nFLOP/s columns: fraction of the measured fp32 matmul peak; 'model' counts the reference's "
          "full-sequence FLOPs per update, 'executed' the FLOPs each engine performs. bf16 is not the "
          "same computation (see README); all other rows are fp32. (a') is the reference loop after\n"
          "groklab.train.keep_freed_memory(), which groklab's engine calls on the CPU: how much of the gain "
          "is the allocator.")


if __name__ == "__main__":
    main()
