import itertools

import numpy as np
import pytest

from groklab.errors import ConfigError
from groklab.tasks import TASKS, make_table, n_examples, split, split_sizes, table_csv, tokens

P = 13


def modular_reference(task, x, y, p):
    """Independent, element-by-element definitions of the paper's modular operations."""
    inv = lambda a: next(b for b in range(1, p) if a * b % p == 1)  # noqa: E731
    return {
        "add": lambda: (x + y) % p,
        "sub": lambda: (x - y) % p,
        "mul": lambda: (x * y) % p,
        "div": lambda: (x * inv(y)) % p,
        "div_odd_sub": lambda: (x * inv(y)) % p if y % 2 == 1 else (x - y) % p,
        "x2_y2": lambda: (x**2 + y**2) % p,
        "x2_xy_y2": lambda: (x**2 + x * y + y**2) % p,
        "x2_xy_y2_x": lambda: (x**2 + x * y + y**2 + x) % p,
        "x3_xy": lambda: (x**3 + x * y) % p,
        "x3_xy2_y": lambda: (x**3 + x * y**2 + y) % p,
    }[task]()


def perm_reference(task, a, b):
    compose = lambda f, g: tuple(f[g[i]] for i in range(5))  # noqa: E731
    inverse = lambda f: tuple(sorted(range(5), key=lambda i: f[i]))  # noqa: E731
    return {"s5_mul": lambda: compose(a, b), "s5_conj": lambda: compose(compose(a, b), inverse(a)),
            "s5_aba": lambda: compose(compose(a, b), a)}[task]()


@pytest.mark.parametrize("task", [t for t in TASKS if TASKS[t].modular])
def test_modular_table_matches_independent_computation(task):
    x, y, z = make_table(task, P)
    y_lo = 1 if task in ("div", "div_odd_sub") else 0
    assert len(x) == P * (P - y_lo) == n_examples(task, P)
    assert set(zip(x.tolist(), y.tolist())) == set(itertools.product(range(P), range(y_lo, P)))
    for a, b, c in zip(x.tolist(), y.tolist(), z.tolist()):
        assert c == modular_reference(task, a, b, P), (a, b)


@pytest.mark.parametrize("task", ["s5_mul", "s5_conj", "s5_aba"])
def test_s5_table_matches_independent_computation(task):
    text = table_csv(task).splitlines()
    assert text[0] == "x,y,z"
    rows = [r.split(",") for r in text[1:]]
    assert len(rows) == 120 * 120
    for a, b, c in rows[::37]:
        pa, pb = tuple(map(int, a)), tuple(map(int, b))
        assert tuple(map(int, c)) == perm_reference(task, pa, pb)


def test_s5_identity_is_01234_and_composition_is_x_of_y():
    rows = table_csv("s5_mul").splitlines()[1:]
    assert rows[0] == "01234,01234,01234"
    table = {(a, b): c for a, b, c in (r.split(",") for r in rows)}
    assert table[("10234", "12034")] == "02134"  # (x . y)[i] = x[y[i]]


def test_table_csv_prints_integers_for_modular_tasks():
    lines = table_csv("sub", 7).splitlines()
    assert lines[0] == "x,y,z" and lines[1:4] == ["0,0,0", "0,1,6", "0,2,5"]


@pytest.mark.parametrize("p", [4, 9, 15, 1])
def test_div_rejects_composite_modulus(p):
    with pytest.raises(ConfigError, match="prime"):
        make_table("div", p)


def test_non_division_tasks_accept_composite_modulus():
    x, y, z = make_table("mul", 12)
    assert len(x) == 144 and z.max() < 12


def test_unknown_task_names_allowed_ids():
    with pytest.raises(ConfigError, match="unknown task 'foo'.*s5_mul"):
        make_table("foo", 7)


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.9])
def test_split_sizes_and_disjointness(fraction):
    n = n_examples("add", 17)
    tr, va = split(n, fraction, seed=3)
    assert len(tr) == round(fraction * n) and len(tr) + len(va) == n
    assert set(tr.tolist()).isdisjoint(va.tolist())
    assert sorted(tr.tolist() + va.tolist()) == list(range(n))


def test_split_depends_on_seed_only():
    a, _ = split(100, 0.5, seed=1)
    b, _ = split(100, 0.5, seed=1)
    c, _ = split(100, 0.5, seed=2)
    assert a.equal(b) and not a.equal(c)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5, 0.001])
def test_split_rejects_fractions_that_leave_a_side_empty(fraction):
    with pytest.raises(ConfigError, match="train_fraction"):
        split_sizes(49, fraction)


def test_tokens_are_x_op_y_eq():
    import torch

    t = tokens(torch.tensor([3]), torch.tensor([5]), 7)
    assert t.tolist() == [[3, 7, 5, 8]]
    assert np.all(make_table("add", 7)[2] < 7)
