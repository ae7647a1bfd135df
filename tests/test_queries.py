"""Questions asked of store rows: settings, --where, the architecture fields."""

import json

import pytest

from groklab.errors import ConfigError
from groklab.models import MODELS
from groklab.queries import arch_fields, by_setting, varying, where


def _row(i, **config):
    cfg = {"task": "add", "seed": 0, "lr": 1e-3, "early_stop": True, "batch_size": "auto", **config}
    return {"id": i, "task": cfg["task"], "config": json.dumps(cfg)}


def test_where_reads_the_value_as_the_field_type():
    rows = [_row(1, early_stop=False, batch_size=64), _row(2, lr=3e-3), _row(3, seed=1)]
    assert [r["id"] for r in where(rows, ["early_stop=false"])] == [1]
    assert [r["id"] for r in where(rows, ["batch_size=64"])] == [1]
    assert [r["id"] for r in where(rows, ["lr=0.003"])] == [2]
    assert [r["id"] for r in where(rows, ["lr=1e-3", "seed=0"])] == [1]
    with pytest.raises(ConfigError, match="--where lr: 'fast' is not allowed; use a number"):
        where(rows, ["lr=fast"])


def test_settings_leave_out_seeds_and_where_a_run_writes():
    rows = [_row(1, seed=0, snapshots=0), _row(2, seed=1, snapshots=40, lr=3e-3)]
    assert varying(rows) == ["lr"]
    assert sorted(by_setting(rows)) == ["add, lr=0.001", "add, lr=0.003"]


def test_arch_fields_are_the_registered_models_own_fields():
    own = {f.name for spec in MODELS.values() for f in spec.fields}
    assert set(arch_fields()) == {"model"} | own
