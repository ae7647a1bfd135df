"""The sweep-file grammar: tables, axes and the errors a user meets."""

import pytest

from groklab.errors import ConfigError
from groklab.grid import TABLES, load_sweep, parse_axis


def test_an_unknown_table_is_refused_naming_every_allowed_one(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('[base]\ntask = "add"\n[axis]\nseed = [0, 1]\n')
    with pytest.raises(ConfigError) as e:
        load_sweep(f)
    assert "unknown key 'axis'" in str(e.value) and "allowed: preset, base, axes, zip" in str(e.value)
    assert list(TABLES) == ["preset", "base", "axes", "zip"]


def test_a_missing_sweep_file_is_called_a_sweep_file(tmp_path):
    with pytest.raises(ConfigError, match="sweep file '.*nope.toml' does not exist"):
        load_sweep(tmp_path / "nope.toml")


def test_axes_are_read_as_their_fields_type():
    assert parse_axis("early_stop", "true,false") == [True, False]
    assert parse_axis("batch_size", "auto,full,64") == ["auto", "full", 64]
    assert parse_axis("lr", "1e-3:3e-3:1e-3") == [0.001, 0.002, 0.003]
    with pytest.raises(ConfigError, match=r"axis seed: '0\.5' is not allowed; use an integer"):
        parse_axis("seed", "0,0.5")


def test_command_line_axes_replace_the_files(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('[base]\ntask = "add"\nmodulus = 7\n[axes]\nseed = [0, 1, 2]\n')
    assert [c.seed for c in load_sweep(f, {"seed": [5]}).configs()] == [5]
