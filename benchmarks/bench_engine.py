"""Updates per second: the straightforward reference loop vs groklab's engine, one run and ensembles.

    python benchmarks/bench_engine.py                    # CPU, paper model, div mod 97, 50%, batch 512
    python benchmarks/bench_engine.py --device cuda --ensembles 8,32,64

Measured in one process on one machine:
  (a) reference: a plain nn.Module transformer over all positions, torch.optim.AdamW,
      minibatches as index gathers (benchmarks/reference.py);
  (b) groklab, one run (answer-only forward, flat-buffer AdamW);
  (c) groklab ensembles of E runs trained as one stacked model.
(a) is timed first and alone, before groklab's engine makes its process-wide malloc setting
(keep_freed_memory, on the CPU); (a') is the reference again after it. All rows but (a) are
timed in alternating rounds, so that the machine's drift (large on shared VMs) hits all alike;
each keeps its best round. Printed: updates/s, the ratios to (a) and to (a') (per run), and
FLOP/s against the machine's matmul peak measured here. "model FLOP" counts the reference computation (what an update
means); "executed" counts what groklab's engine actually multiplies.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import reference  # noqa: E402

from groklab import RunConfig  # noqa: E402
from groklab.data import split, tokens  # noqa: E402
from groklab.tasks import make_table  # noqa: E402
from groklab.engine import Group  # noqa: E402
from groklab.runtime import configure, keep_freed_memory  # noqa: E402


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
    layer = 4 * D * D + 2 * D * M  # per row: qkv + out, mlp
    if not answer_only:
        macs = 4 * B * (L * layer + D * V)
    else:  # see models.transformer.forward_answer: 2V prefix rows, 2B suffix rows, the answer row in the last layer
        R = 2 * V + 2
        macs = R * 3 * D * D + R * R * D  # layer 0's tables: qkv and every query-key score
        macs += (2 * V + 2 * B) * (D * D + 2 * D * M)  # layer 0: out and mlp
        macs += max(L - 2, 0) * (2 * V + 2 * B) * layer  # middle layers
        if L > 1:
            macs += (2 * V + 2 * B) * 2 * D * D + B * (2 * D * D + 2 * D * M)  # last: k, v; q, out, mlp
        macs += B * D * V
    return 3 * 2 * macs


def time_rounds(fns: dict, device, rounds: int) -> dict:
    """Updates per second of each (step function, updates per round), timed in alternating rounds so that
    the machine's drift hits all alike; the best round of each."""
    for fn, _ in fns.values():
        for _ in range(3):  # warm-up (and compilation)
            fn()
    best = {name: 0.0 for name in fns}
    for _ in range(rounds):
        for name, (fn, n) in fns.items():
            sync(device)
            t = time.perf_counter()
            for _ in range(n):
                fn()
            sync(device)
            best[name] = max(best[name], n / (time.perf_counter() - t))
    return best


def reference_step(cfg: RunConfig, device):
    X, Y, Z = (torch.from_numpy(a) for a in make_table(cfg.task, cfg.modulus))
    tr, _ = split(len(X), cfg.train_fraction, cfg.seed)
    return reference.reference_step(tokens(X, Y, cfg.modulus), Z, tr, cfg.resolved_batch_size, lr=cfg.lr,
                                    weight_decay=cfg.weight_decay, warmup=cfg.warmup_steps,
                                    n_symbols=cfg.modulus, device=device)


def engine_step(cfg: RunConfig, E: int):
    configure(torch.device(cfg.device), cfg.precision)  # as train_group does (TF32 on CUDA)
    return Group.build([cfg.replace(seed=s) for s in range(E)]).step


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=10, help="timed updates of one run per round")
    ap.add_argument("--rounds", type=int, default=5, help="alternating timing rounds; the best of each is kept")
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
    # (a) first and alone: groklab's engine changes a process-wide malloc setting on the CPU
    a = time_rounds({"a": (reference_step(cfg, device), args.steps)}, device, args.rounds)["a"]
    fns, sizes = {}, {}
    if device.type == "cpu" and keep_freed_memory():  # what groklab's train_group does on the CPU
        fns["(a') reference, groklab's malloc"] = (reference_step(cfg, device), args.steps)
    fns["(b) groklab, one run"] = (engine_step(cfg, 1), args.steps)
    fns["(b') groklab, one run, bf16"] = (engine_step(cfg.replace(precision="bf16"), 1), args.steps)
    if args.compile:
        fns["(b'') groklab, one run, compiled"] = (engine_step(cfg.replace(compile=True), 1), args.steps)
    for E in (int(e) for e in args.ensembles.split(",") if e):
        name = f"(c) groklab, ensemble of {E}"
        sizes[name] = E
        fns[name] = (engine_step(cfg, E), max(2, args.steps * 4 // E))
    rates = {"(a) reference loop": a, **time_rounds(fns, device, args.rounds)}
    a2 = rates.get("(a') reference, groklab's malloc", a)
    b = rates["(b) groklab, one run"]
    print(f"{'':34} {'updates/s':>10} {'per run':>8} {'vs (a)':>7} {'vs (a2)':>8} {'vs (b)':>7} "
          f"{'model FLOP/s':>13} {'executed':>9}")
    for name, rate in rates.items():
        per_run = rate * sizes.get(name, 1)
        exe = f_ref if name.startswith("(a") else f_ans
        print(f"{name:34} {rate:10.2f} {per_run:8.2f} {per_run / a:6.2f}x {per_run / a2:7.2f}x {per_run / b:6.2f}x "
              f"{per_run * f_ref / peak:12.0%} {per_run * exe / peak:8.0%}")
    print("\n(a) is timed first, alone; every other row in alternating rounds, so 'vs (a2)' (against (a') where\n"
          "it exists) is the ratio least exposed to the machine's drift. 'vs (b)': an ensemble's aggregate\n"
          "throughput over one run at a time. (a') is the reference after groklab.runtime.keep_freed_memory(),\n"
          "which groklab's engine calls on the CPU. FLOP/s columns: fraction of the measured fp32 matmul peak;\n"
          "'model' counts the reference's full-sequence FLOPs per update, 'executed' the FLOPs each engine\n"
          "performs. bf16 is not the same computation (see docs/benchmarks.md); all other rows are fp32.")

if __name__ == "__main__":
    main()
