"""Rerun the deterministic claims of the README and docs/ and report any drift.

    python scripts/check_claims.py                 # every claim of docs/claims.toml (about 6 min on 2 cores)
    python scripts/check_claims.py quick parity    # some of them
    python scripts/check_claims.py --list

Each claim is a `groklab train` command and the steps it reported where the docs were written (memorized: 99%
training accuracy; generalized: 99% validation accuracy held). The script trains it in a temporary folder, reads
its summary.json, and prints one line per claim: ok, or the measured values beside the documented ones. It also
checks that every page citing a claim still prints its numbers. Exit status 1 on any drift.

The runs are bitwise reproducible on one machine, but another CPU's kernels may round differently: run it where
the numbers were measured (the pages name the host), alone (it does not time anything, but a shared CPU makes it
slow).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = ROOT / "docs" / "claims.toml"


def load(path: Path = CLAIMS) -> dict[str, dict]:
    claims = tomllib.loads(path.read_text())
    for name, c in claims.items():
        if not isinstance(c.get("args"), list) or not isinstance(c.get("expect"), dict):
            raise SystemExit(f"{path}: claim {name!r} needs args = [...] and expect = {{ field = value }}")
    return claims


def cited_numbers(claim: dict) -> list[str]:
    """The documented numbers as the pages print them (thousands separated)."""
    return [f"{v:,}" for v in claim["expect"].values() if isinstance(v, int)]


def missing_citations(name: str, claim: dict) -> list[str]:
    out = []
    for page in claim.get("cited", []):
        text = (ROOT / page).read_text()
        out += [f"{page} does not print {n} ({name})" for n in cited_numbers(claim) if n not in text]
    return out


def measure(claim: dict, workdir: Path) -> tuple[dict, float]:
    out = workdir / "run"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "groklab", "train", *claim["args"], "--quiet", "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "summary.json").read_text()), time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="claims to check (default: all)")
    ap.add_argument("--list", action="store_true", help="list the claims and exit")
    ap.add_argument("--file", type=Path, default=CLAIMS, help="the claims file")
    a = ap.parse_args()
    claims = load(a.file)
    if a.list:
        for name, c in claims.items():
            print(f"{name:12} groklab train {' '.join(c['args'])}")
        return 0
    unknown = [n for n in a.names if n not in claims]
    if unknown:
        print(f"unknown claim {unknown[0]!r}; allowed: {', '.join(claims)}", file=sys.stderr)
        return 2
    drift = 0
    for name in a.names or list(claims):
        claim = claims[name]
        problems = missing_citations(name, claim)
        with tempfile.TemporaryDirectory() as tmp:
            summary, wall = measure(claim, Path(tmp))
        got = {k: summary.get(k) for k in claim["expect"]}
        if got != claim["expect"]:
            problems.append(f"measured {got}, documented {claim['expect']}")
        drift += bool(problems)
        print(f"{name:12} {'ok   ' if not problems else 'DRIFT'} {wall:6.1f} s  "
              + ", ".join(f"{k}={v}" for k, v in got.items()))
        for p in problems:
            print(f"{'':12} {p}")
    print(f"{drift} of {len(a.names or claims)} claims drifted")
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
