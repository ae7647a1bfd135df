"""A command line that answers at once: ``import groklab``, ``groklab --help``, ``groklab COMMAND --help``,
``groklab tasks``, ``groklab runs`` and a refused flag import no PyTorch, NumPy, matplotlib or pandas
(``groklab.lazy``); the import graph has no circle."""

import subprocess
import sys
from pathlib import Path

import pytest

from groklab.lazy import Lazy, lazy, load

ROOT = Path(__file__).resolve().parents[1]
PROBE = ("import sys\nfrom groklab.cli import main\ncode = main({args!r})\n"
         "print('torch' in sys.modules or 'numpy' in sys.modules, 'matplotlib' in sys.modules, 'pandas' in sys.modules, "
         "code)")


def test_a_stand_in_imports_its_module_at_first_use_and_takes_its_place():
    import fractions
    import json

    namespace = {}
    namespace["json_"] = stand_in = Lazy("json", namespace)
    assert "not imported yet" in repr(stand_in)
    assert namespace["json_"].dumps([1]) == "[1]" and namespace["json_"] is json
    namespace = {"lazy": lazy}
    exec("fractions_ = lazy('fractions')", namespace)  # a module's top level
    assert isinstance(namespace["fractions_"], Lazy)
    load("fractions")  # what a training does for torch before its first step
    assert namespace["fractions_"] is fractions


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["sweep", "--help"], ["analyze", "--help"],
                                  ["tasks"], ["train", "--lr", "fast"], ["train", "--task", "grup"]])
def test_commands_that_train_nothing_import_no_torch(args, tmp_path):
    done = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    torch, mpl, pandas, code = done.stdout.split()[-4:]
    assert (torch, mpl, pandas) == ("False", "False", "False"), (args, done.stderr)
    assert code in ("0", "2")


def test_groklab_runs_imports_no_torch(tmp_path):
    from groklab import RunConfig
    from groklab.store import Store

    Store(tmp_path / "s.db").start_run(RunConfig(task="add", modulus=7), tmp_path / "r")
    done = subprocess.run([sys.executable, "-c", PROBE.format(args=["runs", "--store", str(tmp_path / "s.db")])],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.split()[-4:] == ["False", "False", "False", "0"], done.stderr


def test_the_import_graph_has_no_circle_counting_imports_inside_functions():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "import_graph.py")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "0 circles" in done.stdout, done.stdout
