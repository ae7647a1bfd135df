from pathlib import Path

import pytest

from groklab.compare import load_comparison
from groklab.config import RunConfig, preset_names
from groklab.grid import load_sweep

SWEEPS = Path(__file__).parents[1] / "sweeps"


@pytest.mark.parametrize("name, n", [("quick.toml", 30), ("figure1.toml", 21), ("figure2_right.toml", 351),
                                     ("figure2_right_cpu.toml", 39), ("modelwise_cpu.toml", 10), ("omnigrok_digits.toml", 4)])
def test_bundled_sweeps_are_valid(name, n):
    assert len(load_sweep(SWEEPS / name).configs()) == n


@pytest.mark.parametrize("name, variants, runs", [("interventions_quick.toml", 9, 36), ("figure2_left.toml", 11, 189)])
def test_bundled_comparisons_are_valid(name, variants, runs):
    comp = load_comparison(SWEEPS / name)
    assert len(comp.variants) == variants and len(comp.all_configs()) == runs


def test_presets_are_valid():
    assert set(preset_names()) >= {"paper", "paper-fig1", "quick", "fast", "fast-mlp"}
    for name in preset_names():
        RunConfig.from_dict({}, preset=name)


def test_accelerator_methods_are_valid():
    import sys

    sys.path.insert(0, str(SWEEPS.parent / "benchmarks"))
    from bench_accelerators import load_methods, tunings_of

    base, methods, preset, start = load_methods(SWEEPS / "accelerators.toml", {})
    assert {"paper setup", "AdamW (tuned)", "Muon", "StableMax", "MLP + AdamW (tuned)"} <= set(methods)
    tunings = tunings_of(base, methods, preset, trials=20, seeds=[0], start=start)
    assert tunings["AdamW (tuned)"].start == {"lr": 1e-2, "weight_decay": 1.0, "warmup_steps": 50}
    assert tunings["Muon"].config({}, 0).optimizer == "muon" and tunings["StableMax"].config({}, 0).loss == "stablemax"


def test_the_docs_print_every_claim_they_cite():
    """docs/claims.toml lists the step counts the pages print (scripts/check_claims.py reruns them): every page
    citing a claim prints its numbers, so a number changed on a page without its claim (or the reverse) fails."""
    import sys

    sys.path.insert(0, str(SWEEPS.parent / "scripts"))
    from check_claims import load, missing_citations

    claims = load()
    assert {"main", "quick"} <= set(claims)
    for name, claim in claims.items():
        assert missing_citations(name, claim) == [], name
