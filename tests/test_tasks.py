import itertools

import pytest

from groklab.errors import ConfigError
from groklab.tasks import TASKS, make_table, n_examples, table_csv

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


@pytest.mark.parametrize("task", [t for t in TASKS if TASKS[t].modular and TASKS[t].fn is not None])
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
    with pytest.raises(ConfigError, match="task 'foo' is not allowed; allowed: .*s5_mul"):
        make_table("foo", 7)


def test_a_python_function_registers_a_task_that_runs_everywhere():
    from groklab import RunConfig
    from groklab.tasks import register

    try:
        register("x2_minus_y", lambda x, y, p: (x * x - y) % p, "x^2 - y mod p")
        x, y, z = make_table("x2_minus_y", 7)
        assert all(c == (a * a - b) % 7 for a, b, c in zip(x.tolist(), y.tolist(), z.tolist()))
        cfg = RunConfig(task="x2_minus_y", modulus=7)
        assert cfg.table_size == 49
        with pytest.raises(ConfigError, match="exists already"):
            register("x2_minus_y", lambda x, y, p: x)
        with pytest.raises(ConfigError, match="exists already"):
            register("add", lambda x, y, p: x)
    finally:
        TASKS.unregister("x2_minus_y")


def test_the_new_tasks_work_everywhere_a_task_does(tmp_path, capsys):
    """A sweep file over a custom operation, two groups and parity: the store, its figures, the report, runs,
    analyze (saying what applies) and export."""
    import json

    from groklab.cli import main
    from groklab.store import Store

    sweep = tmp_path / "s.toml"
    sweep.write_text('[base]\nmodel = "mlp"\nd_model = 16\nd_mlp = 32\nsteps = 30\nearly_stop = false\n'
                     'snapshots = 3\n[axes]\ntrain_fraction = [0.5, 0.8]\n')
    store = tmp_path / "s.db"
    for extra in (["--task", "custom", "--expression", "x*y + 1", "--modulus", "7"],
                  ["--task", "group", "--group", "S3,Z2xZ3"],
                  ["--task", "parity", "--n-bits", "8", "--parity-k", "2", "--n-examples", "100"]):
        assert main(["sweep", str(sweep), "--store", str(store), "--quiet", "--workers", "1", *extra]) == 0
    rows = Store(store).runs()
    assert len(rows) == 8 and {r["status"] for r in rows} == {"budget_exhausted"}
    for kind in ("best-val", "data-efficiency"):
        assert main(["plot", kind, "--store", str(store), "-o", str(tmp_path / f"{kind}.png")]) == 0
    assert main(["runs", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    # each run's task in its own words, a group's without a modulus: p is "-"
    assert "in S3" in out and "in Z2xZ3" in out and "x * y + 1 mod 7" in out and "parity of 2 of 8 bits" in out
    group_lines = [line for line in out.splitlines() if " in S3" in line]
    assert group_lines and all(line.split()[line.split().index("S3") + 1] == "-" for line in group_lines)
    assert main(["report", "--store", str(store), "-o", str(tmp_path / "report"), "--no-analyses"]) == 0
    by_task = {r["task"]: r["id"] for r in rows}
    for task in ("group", "parity"):
        assert main(["analyze", "--store", str(store), "--run-id", str(by_task[task]), "--no-tsne", "--quiet",
                     "--llc-chains", "0", "--sharpness-examples", "8", "--out", str(tmp_path / f"a-{task}")]) == 0
        applies = json.loads((tmp_path / f"a-{task}" / "analysis.json").read_text())["applies"]
        assert applies["fourier"] is False and applies["embeddings"] is (task == "group")
    assert main(["export", Store(store).run_dir(by_task["parity"]).as_posix(), "--to", "safetensors",
                 str(tmp_path / "st")]) == 0


def test_a_task_whose_answer_ignores_an_operand_is_said_so_and_options_of_other_tasks_are_refused(tmp_path, capsys):
    from groklab.cli import main
    from groklab.tasks import ignored_operand

    assert ignored_operand("add", 7) is None and ignored_operand("parity", n_bits=5, n_examples=8) is None
    assert ignored_operand("group", group="Z4xZ6", group_op="conj") == "x"  # x . y . x^-1 = y: abelian
    assert ignored_operand("group", group="S4", group_op="conj") is None
    assert ignored_operand("custom", 7, expression="x") == "y" and ignored_operand("custom", 7, expression="3") == \
        "x and y"
    assert main(["train", "--task", "group", "--group", "Z4xZ6", "--group-op", "conj", "--d-model", "16",
                 "--d-mlp", "16", "--n-heads", "2", "--steps", "2", "--quiet", "--out", str(tmp_path / "r")]) == 0
    assert "the answer does not depend on x" in capsys.readouterr().err
    # a modulus means nothing to a group or parity: refused, at its default value too
    for args in (["train", "--task", "group", "--group", "D6", "--modulus", "97"],
                 ["train", "--task", "parity", "--modulus", "7"],
                 ["tasks", "show", "group", "--group", "D6", "--modulus", "7"]):
        assert main([*args, "--out", str(tmp_path / "x")] if args[0] == "train" else args) == 2
        assert "does not apply to task" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert main(["train", "--task", "group", "--group", "d6", "--out", str(tmp_path / "x")]) == 2
    assert "did you mean 'D6'?" in capsys.readouterr().err
    assert main(["train", "--task", "custom", "--expression", "x+", "--out", str(tmp_path / "x")]) == 2
    assert "at its end (column 3)" in capsys.readouterr().err
