"""The examples in groklab's docstrings (rendered in the API reference, docs/api.md) run and print what they
show: a docstring example that drifts from the code fails here."""

import doctest
import importlib
import importlib.util
import pkgutil

import pytest

import groklab


def modules_with_examples() -> list[str]:
    names = ["groklab"] + [m.name for m in pkgutil.walk_packages(groklab.__path__, "groklab.")]
    out = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec and spec.origin and spec.origin.endswith(".py") and ">>> " in open(spec.origin).read():
            out.append(name)
    return out


def test_there_are_examples_to_run():
    assert len(modules_with_examples()) >= 20


@pytest.mark.parametrize("name", modules_with_examples())
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes files writes them here
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
