"""Where a training's time goes: the main job's updates and evaluations, by kind of operation.

    python benchmarks/profile_step.py                 # 600 updates of the main job (div mod 97, 50%, the paper's model)
    python benchmarks/profile_step.py --steps 300 --set task=add --set modulus=23

Three measurements in one process, alone on the machine:
1. ``groklab.train`` of the run for ``--steps`` updates (early stop off), wall time from the call: the whole
   training as a user gets it (bookkeeping included: metrics rows, the thread governor, the run's summary);
2. the same updates and evaluations driven directly (``Group.step`` and ``Group.evaluate`` on the run's
   schedule), timed apart: the engine's own time, and by difference what the loop around it costs (1 and 2
   alternate twice, the best of each kept);
3. a ``torch.profiler`` trace of 100 updates and of one evaluation, every operator put in one of a few kinds
   (matmuls, attention, norms, gathers and scatters, the optimizer, elementwise, the rest), self CPU time.
Printed: a table per measurement. Start-up (Python, imports) is ``benchmarks/bench_cli.py``'s.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch

from groklab import RunConfig
from groklab.engine import Group
from groklab.grid import parse_axis
from groklab.runtime import configure
from groklab.train import is_eval_step, train

KINDS = [  # (kind, substrings of operator names), first match wins
    ("optimizer", ("_fused_adam", "adamw", "_foreach")),
    ("matmuls", ("mm", "matmul", "linear", "bmm", "baddbmm", "addmm")),
    ("attention", ("softmax", "masked_fill", "where")),
    ("norms", ("layer_norm", "norm")),
    ("gathers and scatters", ("index", "gather", "scatter", "embedding", "take", "select_backward")),
    ("loss", ("cross_entropy", "nll_loss", "log_softmax")),
    ("elementwise", ("add", "mul", "sub", "div", "relu", "threshold", "copy", "fill", "zero", "clone", "sum",
                     "mean", "exp", "sqrt", "pow", "neg", "lerp", "clamp", "max", "eq", "ne", "lt", "gt")),
]


def kind_of(name: str) -> str:
    low = name.lower()
    for kind, keys in KINDS:
        if any(k in low for k in keys):
            return kind
    return "other (views, allocation, dispatch)"


def by_kind(prof) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for e in prof.key_averages():
        if e.key.startswith("ProfilerStep") or e.key.startswith("##"):
            continue
        out[kind_of(e.key)] += e.self_cpu_time_total / 1e3  # ms
    return dict(out)


def drive(cfg: RunConfig, steps: int) -> tuple[float, float, int]:
    """Updates and scheduled evaluations straight on the engine: (update seconds, evaluation seconds, evals)."""
    g = Group.build([cfg])
    t_up = t_ev = 0.0
    n_ev = 0
    for step in range(steps + 1):
        if is_eval_step(step, cfg):
            t0 = time.perf_counter()
            g.evaluate()
            t_ev += time.perf_counter() - t0
            n_ev += 1
        if step == steps:
            break
        t0 = time.perf_counter()
        g.step()
        t_up += time.perf_counter() - t0
    return t_up, t_ev, n_ev


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--set", action="append", default=[], help="a RunConfig field: --set task=add")
    a = ap.parse_args()
    over = {}
    for s in a.set:
        k, _, v = s.partition("=")
        over[k] = parse_axis(k, v)[0]
    cfg = RunConfig.from_dict({**over, "steps": a.steps, "early_stop": False}, preset="paper")
    configure(torch.device("cpu"), cfg.precision)
    print(f"{cfg.task} mod {cfg.modulus}, {cfg.train_fraction:.0%} of the table, {cfg.n_layers} layers of "
          f"width {cfg.d_model}, batch {cfg.resolved_batch_size}; {a.steps} updates; {torch.get_num_threads()} threads")

    drive(cfg, 50)  # warm-up: allocator, kernels' first calls
    wholes, parts = [], []
    for _ in range(2):  # alternating, best of two each: this host drifts by 15% over minutes
        t0 = time.perf_counter()
        train(cfg)
        wholes.append(time.perf_counter() - t0)
        parts.append(drive(cfg, a.steps))
    whole = min(wholes)
    t_up, t_ev, n_ev = min(parts, key=lambda p: p[0] + p[1])
    loop = whole - t_up - t_ev
    print("\n1-2. the training and its parts (wall, seconds)")
    print(f"  groklab.train, whole         {whole:7.2f}   {whole / a.steps * 1e3:6.2f} ms per update")
    print(f"  updates (Group.step)         {t_up:7.2f}   {t_up / a.steps * 1e3:6.2f} ms per update   {t_up / whole:5.1%}")
    print(f"  evaluations ({n_ev:3d})           {t_ev:7.2f}   {t_ev / n_ev * 1e3:6.2f} ms each         {t_ev / whole:5.1%}")
    print(f"  the loop around them         {loop:7.2f}                          {loop / whole:5.1%}")

    g = Group.build([cfg])
    for _ in range(20):
        g.step()
    n = 100
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(n):
            g.step()
    up = by_kind(prof)
    up_events = [e for e in prof.key_averages() if not e.key.startswith("ProfilerStep")]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        g.evaluate()
    ev = by_kind(prof)
    print("\n3. operators by kind (self CPU time under the profiler, which adds its own overhead)")
    print(f"  {'kind':38} {'ms per update':>14} {'share':>7} {'ms per evaluation':>18} {'share':>7}")
    total_up, total_ev = sum(up.values()), sum(ev.values())
    for kind in [k for k, _ in KINDS] + ["other (views, allocation, dispatch)"]:
        u, e = up.get(kind, 0.0) / n, ev.get(kind, 0.0)
        print(f"  {kind:38} {u:14.2f} {u * n / total_up:7.1%} {e:18.2f} {e / total_ev:7.1%}")
    print(f"  {'total':38} {total_up / n:14.2f} {'':7} {total_ev:18.2f}")
    print("\n   the update's ten largest operators (self CPU, ms per update)")
    top = sorted(up_events, key=lambda e: -e.self_cpu_time_total)[:10]
    for e in top:
        print(f"  {e.key[:50]:50} {e.self_cpu_time_total / 1e3 / n:8.2f}  x{e.count // n}  ({kind_of(e.key)})")


if __name__ == "__main__":
    main()
