"""The whole process, start-up included: ``groklab train`` against the plain PyTorch script, at equal work.

    python benchmarks/bench_whole.py                  # 600 updates of the main job, 3 alternating rounds
    python benchmarks/bench_whole.py --steps 2000 --rounds 2

Each round starts three fresh processes, one after another, and times each from its start to its exit:

* ``groklab train --steps N --no-early-stop`` (the main job: x / y mod 97, 50%, the paper's transformer; its
  default evaluations: the full train and validation sets every 10 updates to 1,000, then 90 per decade; its
  metrics.csv, checkpoint, summary and curves.png written);
* ``benchmarks/plain_loop.py --eval groklab``: the plain script evaluating the same sets at the same steps;
* ``benchmarks/plain_loop.py --eval epoch``: the plain script at its own default (validation after each epoch,
  the training metrics read off each batch).

Printed: each one's best round and the two ratios, groklab against the plain script at equal evaluations and
at each one's default. Run it alone on the machine: a second process sharing the cores changes every number.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed (exit {done.returncode}): {done.stderr.strip()[-400:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600, help="updates per process (default 600)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds, best of each kept (default 3)")
    a = ap.parse_args()
    py = sys.executable
    cases = {
        "groklab train (its default evaluations)": lambda tmp, r: [
            py, "-m", "groklab", "train", "--steps", str(a.steps), "--no-early-stop", "--quiet",
            "--out", str(Path(tmp) / f"g{r}")],
        "plain script, groklab's evaluations": lambda tmp, r: [
            py, str(HERE / "plain_loop.py"), "--steps", str(a.steps), "--eval", "groklab",
            "--out", str(Path(tmp) / f"pg{r}.csv")],
        "plain script, its default (each epoch)": lambda tmp, r: [
            py, str(HERE / "plain_loop.py"), "--steps", str(a.steps), "--eval", "epoch",
            "--out", str(Path(tmp) / f"pe{r}.csv")],
    }
    walls: dict[str, list[float]] = {k: [] for k in cases}
    with tempfile.TemporaryDirectory() as tmp:
        timed([py, "-m", "groklab", "train", "--steps", "2", "--quiet", "--out", str(Path(tmp) / "warm")])
        for r in range(a.rounds):
            for name, cmd in cases.items():
                walls[name].append(timed(cmd(tmp, r)))
                print(f"  round {r + 1}: {name:42} {walls[name][-1]:6.1f} s", flush=True)
    best = {k: min(v) for k, v in walls.items()}
    g, pg, pe = best.values()
    print(f"\n{a.steps} updates of the main job, whole processes (start-up included), best of {a.rounds}:")
    for name, t in best.items():
        print(f"  {name:42} {t:6.1f} s   ({', '.join(f'{w:.1f}' for w in walls[name])})")
    print(f"groklab vs the plain script at equal evaluations: {pg / g:.2f}x")
    print(f"groklab vs the plain script, each at its default:  {pe / g:.2f}x")


if __name__ == "__main__":
    main()
