"""Any small finite group: the tables obey the group axioms, S5 is the S5 tasks' table, names read well."""

import math

import numpy as np
import pytest

from groklab import RunConfig
from groklab.errors import ConfigError
from groklab.groups import MAX_ORDER, get_group
from groklab.tasks import make_table, table_csv

OFFERED = ["S3", "S4", "S5", "S6", "A4", "A5", "A6", "D3", "D4", "D7", "D30", "Z2", "Z12", "Z97", "Z4xZ6",
           "S3xZ5", "D4xZ2xZ2", "A4xZ3"]
ORDERS = {"S3": 6, "S4": 24, "S5": 120, "S6": 720, "A4": 12, "A5": 60, "A6": 360, "D3": 6, "D4": 8, "D7": 14,
          "D30": 60, "Z2": 2, "Z12": 12, "Z97": 97, "Z4xZ6": 24, "S3xZ5": 30, "D4xZ2xZ2": 32, "A4xZ3": 36}


@pytest.mark.parametrize("name", OFFERED)
def test_every_offered_group_obeys_the_axioms(name):
    g = get_group(name)
    n, mul = g.order, g.mul
    assert n == ORDERS[name] and mul.shape == (n, n)
    assert mul.min() >= 0 and mul.max() < n  # closure
    assert np.array_equal(mul[0], np.arange(n)) and np.array_equal(mul[:, 0], np.arange(n))  # 0 is the identity
    assert all(sorted(row) == list(range(n)) for row in mul.tolist()[:50])  # each row a permutation (Latin square)
    inv = g.inverse
    assert np.all(mul[np.arange(n), inv] == 0) and np.all(mul[inv, np.arange(n)] == 0)  # inverses
    rng = np.random.default_rng(0)
    a, b, c = rng.integers(0, n, (3, 2000))
    assert np.array_equal(mul[mul[a, b], c], mul[a, mul[b, c]])  # associativity, on samples
    assert len(set(g.names)) == n


def test_s5_as_a_group_is_the_s5_tasks_table():
    for op, task in (("mul", "s5_mul"), ("conj", "s5_conj")):
        assert [a.tolist() for a in make_table("group", group="S5", group_op=op)] == \
            [a.tolist() for a in make_table(task)]


def test_dihedral_relations_and_readable_names():
    g = get_group("D6")
    r, s = g.names.index("r^1"), g.names.index("r^0 s")
    power = lambda x, k: 0 if k == 0 else g.mul[power(x, k - 1), x]  # noqa: E731
    assert power(r, 6) == 0 and power(r, 3) != 0 and g.mul[s, s] == 0
    assert g.mul[g.mul[s, r], s] == g.inverse[r]  # s r s = r^-1
    assert not get_group("D6").mul.tolist() == get_group("D6").mul.T.tolist()  # not abelian
    assert get_group("Z4xZ6").names[7] == "(1, 1)"
    rows = table_csv("group", group="Z2xZ2").splitlines()
    assert rows[0] == "x,y,z" and rows[6] == '"(0, 1)","(0, 1)","(0, 0)"'  # quoted: the names hold commas


def test_conjugation_fixes_everything_in_an_abelian_group():
    x, y, z = make_table("group", group="Z3xZ4", group_op="conj")
    assert np.array_equal(y, z)


@pytest.mark.parametrize("name, message", [
    ("S7", "S7 is not offered; Sn takes n from 3 to 6"),
    ("D31", "D31 is not offered"),
    ("Q8", "'Q8' is not a group"),
    ("S6xZ2", f"group 'S6xZ2' has order 1440; at most {MAX_ORDER}"),
    ("", "task 'group' needs a group"),
])
def test_unknown_or_too_large_groups_are_refused_in_one_line(name, message):
    with pytest.raises(ConfigError, match=message) as e:
        RunConfig(task="group", group=name, model="mlp")
    assert "\n" not in str(e.value)


def test_a_group_task_is_its_own_identity():
    a, b = (RunConfig(task="group", group=g, model="mlp") for g in ("S4", "D12"))
    assert a.hash() != b.hash() and a.table_size == b.table_size == 24 * 24
    assert math.isclose(a.n_train / a.table_size, 0.5, abs_tol=1e-3)


def test_a_tiny_s4_run_memorizes_then_generalizes():
    from groklab import train

    s = train(RunConfig(task="group", group="S4", model="mlp", train_fraction=0.9, d_model=64, d_mlp=128, lr=1e-2,
                        steps=3000, stop_patience=100)).summary
    assert s["status"] == "generalized" and s["step_train_acc_99"] < s["step_val_acc_99"]


def test_conjugacy_classes_and_element_orders_colour_a_groups_pictures():
    from groklab.analysis.embeddings import labels, names_of
    from groklab.config import RunConfig
    from groklab.groups import get_group

    s4, d6 = get_group("S4"), get_group("D6")
    assert len(set(s4.conjugacy_classes())) == 5 and len(set(d6.conjugacy_classes())) == 6
    assert not s4.abelian and get_group("Z4xZ6").abelian
    assert sorted(s4.element_orders()) == [1] + [2] * 9 + [3] * 8 + [4] * 6
    cfg = RunConfig(task="group", group="S4")
    assert set(labels(cfg)) == {"conjugacy class"} and len(set(labels(cfg)["conjugacy class"])) == 5
    assert names_of(cfg) == list(s4.names)  # 24 elements: written beside their points
    assert set(labels(RunConfig(task="group", group="Z4xZ6"))) == {"element order"}
    assert names_of(RunConfig(task="group", group="S5")) is None  # 120: too many to write
