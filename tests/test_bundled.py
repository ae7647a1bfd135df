from pathlib import Path

import pytest

from groklab import bundled
from groklab.cli import main
from groklab.compare import load_comparison
from groklab.config import RunConfig, preset_names
from groklab.errors import ConfigError
from groklab.grid import load_sweep
from groklab.tune import load_tuning

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize("name, n", [("quick", 30), ("figure1", 21), ("figure2_right", 351),
                                     ("figure2_right_cpu", 39), ("modelwise_cpu", 10), ("omnigrok_digits", 4)])
def test_bundled_sweeps_are_valid(name, n):
    assert bundled.describe(name).kind == "sweep"
    assert len(load_sweep(name).configs()) == len(load_sweep(f"{name}.toml").configs()) == n


@pytest.mark.parametrize("name, variants, runs", [("interventions_quick", 9, 36), ("figure2_left", 11, 189)])
def test_bundled_comparisons_are_valid(name, variants, runs):
    assert bundled.describe(name).kind == "compare"
    comp = load_comparison(name)
    assert len(comp.variants) == variants and len(comp.all_configs()) == runs


def test_the_bundled_tune_file_is_valid():
    assert bundled.describe("tune_quick").kind == "tune"
    tuning = load_tuning("tune_quick")
    tuning.check()
    assert tuning.trials == 8 and tuning.seeds == [0, 1] and tuning.base["steps"] == 3000


def test_the_checkouts_sweeps_folder_is_the_packages():
    """``sweeps/`` of a checkout (README's paths) is the package's own folder: one copy of each file."""
    assert (ROOT / "sweeps").resolve() == (ROOT / "src/groklab/sweeps").resolve()
    assert sorted(p.stem for p in (ROOT / "sweeps").glob("*.toml")) == bundled.names()


def test_a_bundled_file_is_taken_by_name_anywhere_and_a_local_file_wins(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "quick", "--plan", "--seed", "0", "--task", "add", "--train-fraction", "0.9",
                 "--steps", "30"]) == 0
    assert "1 runs: 0 finished already (skipped), 1 to train" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "quick.toml").write_text('[base]\ntask = "mul"\nmodulus = 7\n[axes]\nseed = [0, 1, 2, 3]\n')
    assert [c.task for c in load_sweep("quick.toml").configs()] == ["mul"] * 4  # the user's file, not ours
    with pytest.raises(ConfigError, match="'sweeps/quick.toml' does not exist; the bundled file of that name is "
                                          "'quick' \\(no folder\\)"):
        load_sweep("sweeps/quick.toml")
    with pytest.raises(ConfigError, match="'nope' does not exist; bundled files \\(by name, no folder\\): figure1"):
        load_sweep("nope")


def test_groklab_sweeps_lists_every_bundled_file_with_its_command_and_runs(capsys):
    assert main(["sweeps"]) == 0
    out = capsys.readouterr().out
    for name in bundled.names():
        assert f" {bundled.describe(name).command} " in out
    assert "groklab compare interventions_quick" in out and "groklab tune tune_quick" in out
    row = next(line for line in out.splitlines() if line.startswith("figure2_right "))
    assert row.split()[-2:] == ["351", "35,100,000"]
    assert "Paper Figure 2 (left): on S5 composition (x . y), the best validation accuracy" in out


def test_presets_are_valid():
    assert set(preset_names()) >= {"paper", "paper-fig1", "quick", "fast", "fastest", "fastest-adamw", "fast-mlp"}
    for name in preset_names():
        RunConfig.from_dict({}, preset=name)


def test_accelerator_methods_are_valid():
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_accelerators import load_methods, tunings_of

    base, methods, preset, start = load_methods(ROOT / "benchmarks" / "accelerators.toml", {})
    assert {"paper setup", "AdamW (tuned)", "Muon", "StableMax", "MLP + AdamW (tuned)"} <= set(methods)
    tunings = tunings_of(base, methods, preset, trials=20, seeds=[0], start=start)
    assert tunings["AdamW (tuned)"].start == {"lr": 1e-2, "weight_decay": 1.0, "warmup_steps": 50}
    assert tunings["Muon"].config({}, 0).optimizer == "muon" and tunings["StableMax"].config({}, 0).loss == "stablemax"


def test_the_docs_print_every_claim_they_cite():
    """docs/claims.toml lists the step counts the pages print (scripts/check_claims.py reruns them): every page
    citing a claim prints its numbers, so a number changed on a page without its claim (or the reverse) fails."""
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from check_claims import load, missing_citations

    claims, host = load()
    assert {"main", "quick"} <= set(claims) and host
    for name, claim in claims.items():
        assert missing_citations(name, claim) == [], name


def test_check_claims_reads_the_numbers_as_the_pages_print_them():
    """The claim checker's comparisons: a float at the decimals the claim writes, metrics rows by step or
    extreme, analysis.json paths with snapshots picked by step; a wrong number is drift."""
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from check_claims import lookup, metric, printed, same

    assert same(0.5512, 0.55) and not same(0.5562, 0.55) and same([3, 8], [3, 8]) and not same([3], [3, 8])
    assert printed(2900) == "2,900" and printed(0.28) == "0.28" and printed([1, 18]) == "[1, 18]"
    rows = [{"step": "0", "weight_norm": "10"}, {"step": "10", "weight_norm": "27.8"}, {"step": "20", "weight_norm": "13"}]
    assert (metric(rows, "10.weight_norm"), metric(rows, "max.weight_norm"), metric(rows, "argmax.weight_norm"),
            metric(rows, "last.weight_norm"), metric(rows, "5.weight_norm")) == (27.8, 27.8, 10, 13.0, None)
    data = {"key_frequencies": [3], "phases": {"cleanup": [1, 2]}, "snapshots": [{"step": 0, "g": 0.1}, {"step": 9, "g": 0.3}]}
    assert (lookup(data, "key_frequencies"), lookup(data, "phases.cleanup"), lookup(data, "snapshots@9.g"),
            lookup(data, "snapshots@first.g"), lookup(data, "snapshots@last.g"), lookup(data, "snapshots@4.g"),
            lookup(data, "phases.cleanup.1")) == ([3], [1, 2], 0.3, 0.1, 0.3, None, 2)


def test_the_docs_site_builds_strict(tmp_path):
    """mkdocs.yml builds the pages and the API reference with --strict: a broken link, anchor or reference in
    docs/ or in a public docstring fails (CI also runs mkdocs build --strict)."""
    import subprocess
    import sys

    pytest.importorskip("mkdocstrings_handlers.python")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                       cwd=ROOT, capture_output=True, text=True, env={**__import__("os").environ,
                                                                     "NO_MKDOCS_2_WARNING": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "site" / "api" / "index.html").read_text().count("groklab.config.RunConfig") > 0


def test_the_wheel_carries_the_sweeps_and_presets(tmp_path):
    """What ``pip install groklab`` gets: the package's TOML files inside the wheel (CI installs that wheel in a
    fresh environment and runs ``groklab train --preset quick`` and ``groklab sweep quick --plan`` from it)."""
    import subprocess
    import sys
    import zipfile

    pytest.importorskip("setuptools")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("groklab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"groklab/sweeps/{n}.toml" for n in bundled.names()} <= names
    assert {f"groklab/presets/{n}.toml" for n in preset_names()} <= names
    assert not [n for n in names if n.startswith(("tests/", "docs/", "benchmarks/"))]


def test_the_benchmarks_setups_are_valid_configs_and_the_comparison_picture_counts_misses():
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_accelerators import picture
    from bench_fewest import SETUPS

    from groklab.config import RunConfig, load_preset

    for name, (preset, over, tasks) in SETUPS.items():  # a renamed preset or a bad field fails here, not mid-run
        for task in tasks:
            RunConfig.from_dict({**(load_preset(preset) if preset else {}), **over, "task": task})
    rows = [{"step": s, "val_acc": a} for s, a in ((0, 0.01), (100, 0.5), (200, 0.995))]
    fig = picture({"A": ([200, 210], [1.0, 1.1], 5, 6, {}), "B": ([], [], 5, 6, {})},
                  {"A": (rows, 1000), "B": (rows, 1000)}, "title")
    left = fig.axes[0]
    assert [t.get_text() for t in left.get_yticklabels()] == ["B", "A"]
    assert sorted(t.get_text() for t in left.texts) == ["3", "5"]  # the seeds of A and B not within the budget
