from pathlib import Path

import pytest

from groklab.sweep import load_sweep

SWEEPS = Path(__file__).parents[1] / "sweeps"


@pytest.mark.parametrize("name, n", [("quick.toml", 30), ("figure1.toml", 21), ("figure2_right.toml", 351)])
def test_bundled_sweeps_are_valid(name, n):
    assert len(load_sweep(SWEEPS / name).configs()) == n
