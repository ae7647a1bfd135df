"""Several groklab trainings on one machine at once: wall time relative to one alone.

Researchers run a training beside a notebook, a test suite or a second training. On a CPU, PyTorch processes
that each take every core (and spin while they wait for each other's threads) slow each other far more than
sharing the cores would. This script starts 1, 2 and 3 ``groklab train`` processes at once (the main job's setup,
x / y mod 97 with the paper's transformer, for ``--steps`` updates; no early stop) and one beside a busy loop
(a process that keeps one core busy), and prints each case's wall time (the slowest of its trainings) relative
to one training alone, measured in the same run.

    python benchmarks/bench_concurrency.py                 # 300 updates each
    python benchmarks/bench_concurrency.py --steps 150 --cases 1,2
    python benchmarks/bench_concurrency.py --env OMP_NUM_THREADS=1   # an environment for every training

Run it alone: anything else running on the machine is one more process sharing the cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _train(out: Path, steps: int, env: dict, extra: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "groklab", "train", "--steps", str(steps), "--no-early-stop", "--quiet",
           "--checkpoint-every", str(10 * steps), "--out", str(out), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def _busy_loop() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def case(n: int, steps: int, env: dict, extra: list[str], busy: bool = False) -> float:
    """Wall time (s) until the last of ``n`` trainings started together ends (beside a busy loop if asked)."""
    loop = _busy_loop() if busy else None
    try:
        if loop is not None:
            time.sleep(1.0)  # the loop is running before the training starts, as a notebook or a test suite would be
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            procs = [_train(Path(tmp) / f"r{i}", steps, env, extra) for i in range(n)]
            for p in procs:
                _, err = p.communicate()
                if p.returncode != 0:
                    raise SystemExit(f"a training failed (exit {p.returncode}): {err.strip()[-500:]}")
            return time.perf_counter() - t0
    finally:
        if loop is not None:
            loop.kill()
            loop.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300, help="updates per training (default 300)")
    ap.add_argument("--cases", default="1,2,3,busy", help="which cases: counts of trainings at once, and busy "
                                                          "(one beside a busy loop); default 1,2,3,busy")
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE set for every training (repeatable)")
    args, extra = ap.parse_known_args()
    env = dict(os.environ, **dict(e.split("=", 1) for e in args.env))
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{cores} cores; each training: {args.steps} updates of the main job (x / y mod 97, paper transformer)"
          + (f"; env {' '.join(args.env)}" if args.env else "") + (f"; flags {' '.join(extra)}" if extra else ""))
    case(1, 2, env, extra)  # warm-up: the first start of a fresh checkout compiles its modules and fills caches
    alone = case(1, args.steps, env, extra)
    print(f"{'1 alone':<24} {alone:7.1f} s   1.00x")
    for c in cases:
        if c == "1":
            continue
        busy = c == "busy"
        t = case(1 if busy else int(c), args.steps, env, extra, busy=busy)
        name = "1 beside a busy loop" if busy else f"{c} at once"
        print(f"{name:<24} {t:7.1f} s   {t / alone:.2f}x")


if __name__ == "__main__":
    main()
