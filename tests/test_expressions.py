"""Your own operation: --task custom --expression, parsed safely, tabulated mod p, part of the run's identity."""

import itertools

import pytest

from groklab import RunConfig
from groklab.cli import main
from groklab.errors import ConfigError
from groklab.expressions import parse
from groklab.tasks import make_table, n_examples, table_csv


def reference(text: str, x: int, y: int, p: int):
    """An independent evaluation: Python's own integers, the inverse by search, None where a divisor is 0."""
    inv = lambda a: next((b for b in range(1, p) if a * b % p == 1), None)  # noqa: E731

    class R(int):  # residues whose / is the modular inverse
        def __add__(a, b): return R((int(a) + int(b)) % p)
        __radd__ = __add__
        def __sub__(a, b): return R((int(a) - int(b)) % p)
        def __rsub__(a, b): return R((int(b) - int(a)) % p)
        def __mul__(a, b): return R(int(a) * int(b) % p)
        __rmul__ = __mul__
        def __pow__(a, e): return R(pow(int(a), int(e), p))
        def __neg__(a): return R(-int(a) % p)

        def __truediv__(a, b):
            i = inv(int(b) % p)
            if i is None:
                raise ZeroDivisionError
            return R(int(a) * i % p)

        def __rtruediv__(a, b): return R(b) / a

    try:
        return int(eval(text.replace("^", "**"), {}, {"x": R(x), "y": R(y)}))  # the test's reference only
    except ZeroDivisionError:
        return None


@pytest.mark.parametrize("text, p", [("x^3 + x*y^2 + y", 7), ("x^2 - 3*y + 1", 11), ("(x + y)^5 - x*y", 13),
                                     ("x / y", 7), ("x / (x + y) + 2", 11), ("-x^2 + y^(1+2)", 5)])
def test_a_custom_table_matches_an_independent_computation(text, p):
    x, y, z = make_table("custom", p, expression=text)
    want = {(a, b): reference(text, a, b, p) for a, b in itertools.product(range(p), range(p))}
    assert {(a, b): c for a, b, c in zip(x.tolist(), y.tolist(), z.tolist())} == \
        {k: v for k, v in want.items() if v is not None}  # the pairs where a divisor is 0 are left out
    assert n_examples("custom", p, expression=text) == len(x)


def test_division_keeps_only_the_pairs_with_y_nonzero_as_div_does():
    assert make_table("custom", 7, expression="x / y")[2].tolist() == make_table("div", 7)[2].tolist()


@pytest.mark.parametrize("text, message", [
    ("x^y", "exponent 'y' must be a constant integer"),
    ("x ^ -1", "exponent -1 in 'x ^ -1' must be between 0"),
    ("import os", "is not a formula"),
    ("__import__('os').system('true')", "is not allowed"),
    ("x.real + y", "'x.real' is not allowed"),
    ("z + 1", "name 'z' is not allowed; the operands are x and y"),
    ("1.5 * x", "constant '1.5' is not allowed; use integers"),
    ("x // y", "operator in 'x // y' is not allowed"),
    ("x % y", "operator in 'x % y' is not allowed"),
    ("", "expression is empty"),
])
def test_a_bad_expression_is_one_line_naming_the_offending_part(text, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("^", r"\^")) as e:
        parse(text)
    assert "\n" not in str(e.value)


def test_division_needs_a_prime_modulus_and_the_expression_belongs_to_custom_only():
    with pytest.raises(ConfigError, match="modulus 9 is not prime; expression 'x / y' divides"):
        RunConfig(task="custom", expression="x / y", modulus=9)
    RunConfig(task="custom", expression="x * y + 1", modulus=9)
    with pytest.raises(ConfigError, match="expression 'x \\+ y' does not apply to task 'add'; only to task custom"):
        RunConfig(task="add", expression="x + y")


def test_the_run_identity_includes_the_expression_in_one_spelling():
    a = RunConfig(task="custom", expression="x^2+x*y", modulus=7)
    b = RunConfig(task="custom", expression="x ^ 2 + x * y", modulus=7)
    c = RunConfig(task="custom", expression="x^2 - x*y", modulus=7)
    assert a.expression == b.expression == "x^2 + x * y"
    assert a.hash() == b.hash() != c.hash()
    assert RunConfig(task="add", modulus=7).hash() == RunConfig.from_dict({"task": "add", "modulus": 7}).hash()


def test_tasks_show_prints_a_custom_table(capsys):
    assert main(["tasks", "show", "custom", "--expression", "x^2 + y", "--modulus", "3"]) == 0
    assert capsys.readouterr().out == table_csv("custom", 3, expression="x^2 + y")
    assert table_csv("custom", 3, expression="x^2 + y").splitlines()[:4] == ["x,y,z", "0,0,0", "0,1,1", "0,2,2"]
    assert main(["tasks", "show", "custom", "--expression", "x^y", "--modulus", "3"]) == 2
    assert "exponent 'y' must be a constant integer" in capsys.readouterr().err
