"""How fast the command line answers: ``groklab --help``, ``groklab train --help``, ``groklab tasks`` and a refused
flag, this checkout against another commit (default: the last before the registries made PyTorch a first-use
import), run interleaved so that both see the same machine. Each is a fresh Python process, timed from start to
exit; medians of ``--repeat`` runs. Run it alone: another busy process on a 2-core machine moves the numbers.

    python benchmarks/bench_cli.py                      # against 6fd23f8
    python benchmarks/bench_cli.py --baseline HEAD~3 --repeat 21
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"--help": ["--help"], "train --help": ["train", "--help"], "tasks": ["tasks"],
            "a refused flag": ["train", "--lr", "fast"]}


def _time(src: Path, args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "groklab", *args], env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="6fd23f8", help="the commit to compare with (a git ref)")
    ap.add_argument("--repeat", type=int, default=12)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.baseline],
                       check=True, capture_output=True)
        try:
            sources = {"this checkout": ROOT / "src", f"baseline {args.baseline}": base / "src"}
            times = {(name, c): [] for name in sources for c in COMMANDS}
            for _ in range(args.repeat):
                for c, argv in COMMANDS.items():
                    for name, src in sources.items():  # interleaved: both see the same machine
                        times[(name, c)].append(_time(src, argv))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=False,
                           capture_output=True)
    print(f"median of {args.repeat} fresh processes each (python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs)")
    print(f"{'command':<16} {'this checkout':>14} {'baseline':>10} {'ratio':>7}")
    for c in COMMANDS:
        ours, theirs = (statistics.median(times[(name, c)]) for name in sources)
        print(f"{c:<16} {ours:>13.2f}s {theirs:>9.2f}s {theirs / ours:>6.1f}x")


if __name__ == "__main__":
    main()
