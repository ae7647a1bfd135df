"""Rerun the reproducible claims of the README and docs/ and report any drift.

    python scripts/check_claims.py                 # every claim of docs/claims.toml (about 8 min on 2 cores)
    python scripts/check_claims.py quick parity    # some of them
    python scripts/check_claims.py --list          # the claims, their commands and the host they were measured on
    python scripts/check_claims.py --pages         # only check that the pages print every claimed number (no run)

A claim is a `groklab train` command, optionally followed by `groklab analyze` on its run, and the numbers the
pages print from them: summary.json fields (`expect`), metrics.csv values (`metrics`), and analysis.json values
(`analysis`). The script trains each in a temporary folder and prints one line per claim: ok, or the measured
values beside the documented ones. It also checks that every page citing a claim prints its numbers as claimed.
Exit status 1 on any drift.

Keys of `metrics`: `STEP.COLUMN` (the row of that step), `max.COLUMN` / `argmax.COLUMN` (the largest value, the
step where it is), `last.COLUMN`. Keys of `analysis`: a dotted path into analysis.json (`key_frequencies`,
`phases.cleanup`), with `snapshots@STEP.NAME` for the snapshot of that step and `snapshots@first` / `@last`.
A float is compared at the decimals the claim writes it with (0.55: two), as the pages print it.

The runs are bitwise reproducible on one machine, but another CPU's kernels may round differently: each claim
names the host it was measured on (`host`, else the file's), and a claim run on another host says so beside its
result. Run it alone (it times nothing, but a shared CPU makes it slow). Numbers that take more than about a
minute to reproduce are not claims: the pages name the command and host that measured them.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import sys
import tempfile
import time
import tomllib
from importlib.util import find_spec
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = ROOT / "docs" / "claims.toml"
EXPECTATIONS = ("expect", "metrics", "analysis")
KEYS = {"args", "analyze", "requires", "host", "cited", *EXPECTATIONS}


def load(path: Path = CLAIMS) -> tuple[dict[str, dict], str]:
    """The claims of a file, and the host its numbers were measured on unless a claim says otherwise."""
    data = tomllib.loads(path.read_text())
    host = data.pop("host", "")
    if not isinstance(host, str):
        raise SystemExit(f"{path}: host must be a string")
    for name, c in data.items():
        if not isinstance(c, dict) or not isinstance(c.get("args"), list) or not isinstance(c.get("expect"), dict):
            raise SystemExit(f"{path}: claim {name!r} needs args = [...] and expect = {{ field = value }}")
        unknown = set(c) - KEYS
        if unknown:
            raise SystemExit(f"{path}: claim {name!r} has unknown key {sorted(unknown)[0]!r}; allowed: "
                             f"{', '.join(sorted(KEYS))}")
        if "analysis" in c and "analyze" not in c:
            raise SystemExit(f"{path}: claim {name!r} expects analysis values but has no analyze = [...]")
    return data, host


def printed(value) -> str:
    """A number as the pages print it: integers with thousands separators, floats as written, lists in brackets."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(printed(v) for v in value) + "]"
    return str(value)


def documented(claim: dict) -> dict:
    """Every number a claim documents, by key (metrics and analysis keys prefixed)."""
    return {**claim["expect"], **{f"metrics.{k}": v for k, v in claim.get("metrics", {}).items()},
            **{f"analysis.{k}": v for k, v in claim.get("analysis", {}).items()}}


def cited_numbers(claim: dict, keys=None) -> list[str]:
    """The documented numbers as the pages print them (those of ``keys`` only, when given)."""
    return [printed(v) for k, v in documented(claim).items()
            if (keys is None or k in keys) and not isinstance(v, (bool, str))
            and not (isinstance(v, list) and any(isinstance(x, str) for x in v))]


def citations(claim: dict) -> dict[str, list | None]:
    """``cited``: a list of pages printing every number of the claim, or a table of pages and the keys each
    prints (``"README.md" = ["step_train_acc_99", "step_val_acc_99"]``, or ``"all"``)."""
    cited = claim.get("cited", [])
    if isinstance(cited, list):
        return dict.fromkeys(cited)
    return {page: None if keys == "all" else keys for page, keys in cited.items()}


def missing_citations(name: str, claim: dict) -> list[str]:
    out = []
    for page, keys in citations(claim).items():
        text = (ROOT / page).read_text()
        out += [f"{page} does not print {n} ({name})" for n in cited_numbers(claim, keys) if n not in text]
    return out


def decimals(value: float) -> int:
    text = repr(value)
    return len(text.split(".")[1]) if "." in text and "e" not in text else 6


def same(measured, documented) -> bool:
    """Equal as the pages print it: a float at the documented decimals, lists element by element."""
    if isinstance(documented, list):
        return isinstance(measured, list) and len(measured) == len(documented) and all(
            same(m, d) for m, d in zip(measured, documented))
    if isinstance(documented, float) and isinstance(measured, (int, float)):
        return round(float(measured), decimals(documented)) == documented
    return measured == documented


def shown(measured, documented):
    """A measured value at the documented precision, for the report line."""
    if isinstance(documented, float) and isinstance(measured, (int, float)):
        return round(float(measured), decimals(documented))
    if isinstance(documented, list) and isinstance(measured, list):
        return [shown(m, d) for m, d in zip(measured, documented)] + measured[len(documented):]
    return measured


def metric(rows: list[dict], key: str):
    """A metrics.csv value: ``STEP.COLUMN``, ``max.COLUMN``, ``argmax.COLUMN``, ``last.COLUMN``."""
    where, _, column = key.partition(".")
    values = [(int(r["step"]), float(r[column])) for r in rows if r.get(column) not in (None, "")]
    if not values:
        return None
    if where == "max":
        return max(v for _, v in values)
    if where == "argmax":
        return max(values, key=lambda sv: sv[1])[0]
    if where == "last":
        return values[-1][1]
    return next((v for s, v in values if s == int(where)), None)


def lookup(data, path: str):
    """A dotted path into analysis.json; ``snapshots@STEP`` / ``@first`` / ``@last`` picks a snapshot."""
    for part in path.split("."):
        if data is None:
            return None
        if "@" in part:
            name, _, which = part.partition("@")
            items = data.get(name) or []
            if which in ("first", "last"):
                data = items[0 if which == "first" else -1] if items else None
            else:
                data = next((s for s in items if s.get("step") == int(which)), None)
        elif isinstance(data, list):
            data = data[int(part)] if -len(data) <= int(part) < len(data) else None
        else:
            data = data.get(part)
    return data


def groklab(*args: str) -> None:
    r = subprocess.run([sys.executable, "-m", "groklab", *args], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"groklab {' '.join(args)} failed (exit {r.returncode}):\n{r.stderr[-2000:]}")


def measure(claim: dict, workdir: Path) -> tuple[dict, float]:
    """Train (and analyze) in ``workdir``; the measured value of every key the claim documents."""
    out = workdir / "run"
    t0 = time.perf_counter()
    groklab("train", *claim["args"], "--quiet", "--out", str(out))
    got = {}
    summary = json.loads((out / "summary.json").read_text())
    got.update({k: summary.get(k) for k in claim["expect"]})
    if claim.get("metrics"):
        with open(out / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        got.update({f"metrics.{k}": metric(rows, k) for k in claim["metrics"]})
    if "analyze" in claim:
        groklab("analyze", str(out), *claim["analyze"])
        analysis = json.loads((out / "analysis" / "analysis.json").read_text())
        got.update({f"analysis.{k}": lookup(analysis, k) for k in claim.get("analysis", {})})
    return got, time.perf_counter() - t0


def this_host() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="claims to check (default: all)")
    ap.add_argument("--list", action="store_true", help="list the claims and exit")
    ap.add_argument("--pages", action="store_true", help="only check that the pages print the claimed numbers")
    ap.add_argument("--file", type=Path, default=CLAIMS, help="the claims file")
    a = ap.parse_args()
    claims, default_host = load(a.file)
    if a.list:
        for name, c in claims.items():
            then = f" && groklab analyze RUN {' '.join(c['analyze'])}" if "analyze" in c else ""
            print(f"{name:14} [{c.get('host', default_host)}] groklab train {' '.join(c['args'])}{then}")
        return 0
    unknown = [n for n in a.names if n not in claims]
    if unknown:
        print(f"unknown claim {unknown[0]!r}; allowed: {', '.join(claims)}", file=sys.stderr)
        return 2
    host = this_host()
    print(f"this host: {host}")
    drift = 0
    for name in a.names or list(claims):
        claim = claims[name]
        problems = missing_citations(name, claim)
        if a.pages:
            drift += bool(problems)
            print(f"{name:14} {'ok   ' if not problems else 'DRIFT'}")
            for p in problems:
                print(f"{'':14} {p}")
            continue
        missing = [m for m in claim.get("requires", []) if find_spec(m) is None]
        if missing:
            print(f"{name:14} skip   needs {', '.join(missing)} installed (pip install -e examples/plugin)")
            continue
        want = documented(claim)
        with tempfile.TemporaryDirectory() as tmp:
            got, wall = measure(claim, Path(tmp))
        off = {k: (shown(got[k], v), v) for k, v in want.items() if not same(got[k], v)}
        problems += [f"{k}: measured {m}, documented {d}" for k, (m, d) in off.items()]
        drift += bool(problems)
        where = claim.get("host", default_host)
        elsewhere = f"  (documented on {where}; this host differs)" if where and where not in host else ""
        print(f"{name:14} {'ok   ' if not problems else 'DRIFT'} {wall:6.1f} s  "
              f"{len(want) - len(off)}/{len(want)} numbers{elsewhere}")
        for p in problems:
            print(f"{'':14} {p}")
    print(f"{drift} of {len(a.names or claims)} claims drifted")
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
