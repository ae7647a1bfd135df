"""A setting (``fields.Field``): read from text as its type, checked in one line that names it and what is
allowed, turned off by its switch."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from groklab.errors import ConfigError
from groklab.fields import Field, merge

RATE = Field("dropout", 0.0, "a probability", min=0.0, lt=1.0)
BATCH = Field("batch_size", "auto", "minibatch", words=("auto", "full"), min=1)
MODE = Field("mode", "a", "one of three", choices=("a", "b", "apple"))


@pytest.mark.parametrize("field, text, value", [
    (RATE, " 0.25 ", 0.25), (BATCH, "full", "full"), (BATCH, "64", 64), (MODE, "b", "b"),
    (Field("on", False, "a switch"), "True", True), (Field("n", 3, "a count"), "7", 7)])
def test_text_is_read_as_the_fields_type(field, text, value):
    got = field.parse(text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("field, value, message", [
    (RATE, 1.0, "dropout 1.0 is outside [0, 1)"), (RATE, -0.1, "dropout -0.1 is outside [0, 1)"),
    (RATE, "x", "dropout 'x' has the wrong type; expected float"), (RATE, float("nan"), "is not a finite number"),
    (BATCH, 0, "batch_size 0 is not allowed; use 'auto', 'full' or an integer >= 1"),
    (MODE, "appel", "mode 'appel' is not allowed; allowed: a, b, apple; did you mean 'apple'?"),
    (Field("n", 3, "a count", min=1), 0, "n 0 is too small; must be >= 1"),
    (Field("lr", 1e-3, "a rate", gt=0.0), 0.0, "lr 0.0 must be > 0.0"),
    (Field("n", 3, "a count"), True, "n True has the wrong type; expected int")])
def test_a_bad_value_is_one_line_naming_the_field_and_what_is_allowed(field, value, message):
    with pytest.raises(ConfigError) as e:
        field.check(value)
    assert message in str(e.value) and "\n" not in str(e.value)


@given(st.text(max_size=12))
def test_parsing_any_text_gives_a_value_or_one_config_error(text):
    for field in (RATE, BATCH, Field("n", 3, "a count"), Field("on", False, "a switch")):
        try:
            field.parse(text)
        except ConfigError as e:
            assert "\n" not in str(e)


def test_choices_may_be_a_function_looked_up_when_asked():
    names = ["x"]
    f = Field("kind", "x", "a registry's names", choices=lambda: names)
    names.append("y")
    f.check("y")
    assert f.allowed() == ("x", "y") and "[x|y]" in f.help()


def test_a_name_declared_twice_must_mean_the_same_setting():
    assert list(merge([RATE, Field("dropout", 0.0, "another doc")], "here")) == ["dropout"]
    with pytest.raises(ConfigError, match="field dropout is declared twice, as float 0.0 and as float 0.5"):
        merge([RATE, Field("dropout", 0.5, "other")], "here")
    with pytest.raises(ConfigError, match="field name 'not a name' is not allowed"):
        Field("not a name", 1, "bad")
