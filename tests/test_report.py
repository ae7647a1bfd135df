"""`groklab report`: a self-contained HTML page, checked in a real headless browser."""

import importlib.util
import re

import pytest

from groklab.cli import main
from groklab.report import chromium, inspect_page
from groklab.store import Store

COMPARE = """
[base]
task = "add"
modulus = 11
d_model = 32
n_heads = 4
d_mlp = 64
lr = 3e-3
steps = 200
snapshots = 3
[axes]
train_fraction = [0.5, 0.8]
seed = [0]
[variants]
"AdamW" = {}
"no weight decay" = { weight_decay = 0.0 }
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store holding a comparison (two variants x two fractions) and one interrupted run."""
    d = tmp_path_factory.mktemp("report")
    (d / "c.toml").write_text(COMPARE)
    assert main(["compare", str(d / "c.toml"), "--store", str(d / "s.db"), "--quiet", "--workers", "1",
                 "-o", str(d / "c.png")]) == 0
    st = Store(d / "s.db")
    from groklab import RunConfig

    st.start_run(RunConfig(task="add", modulus=11, seed=5, steps=10), None)  # a run that never finished
    return d / "s.db"


def test_store_report_has_the_table_the_figures_that_apply_and_the_chosen_runs(store, tmp_path, capsys):
    assert main(["report", "--store", str(store), "-o", str(tmp_path / "r"), "--runs", "1",
                 "--sharpness-examples", "16", "--llc-chains", "0"]) == 0
    page = (tmp_path / "r" / "index.html").read_text()
    assert len(re.findall(r"<tr><td", page)) == len(Store(store).runs()) == 5
    figures = sorted(p.name for p in (tmp_path / "r" / "figures").iterdir())
    for name in ("curves", "data-efficiency", "best-val", "compare", "progress", "embeddings", "fourier"):
        assert any(name in f and f.endswith(".png") for f in figures), name
        assert any(name in f and f.endswith(".svg") for f in figures), name
    assert not any("model-wise" in f for f in figures)  # one model size: the figure does not apply
    assert all(f'src="figures/{f}"' in page for f in figures if f.endswith(".png"))
    assert all(f'href="figures/{f}"' in page for f in figures)
    assert "<script src" not in page and "http" not in page  # nothing from the network
    # again into the same folder: the earlier report is replaced
    assert main(["report", "--store", str(store), "-o", str(tmp_path / "r"), "--no-analyses"]) == 0
    assert not any("progress" in p.name for p in (tmp_path / "r" / "figures").iterdir())


def test_report_refuses_bad_input_in_one_line_and_writes_nothing(store, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    for args, msg in ((["--store", str(store), "-o", str(tmp_path / "mine")], "is not a groklab report"),
                      (["--store", str(store), "-o", str(tmp_path / "x"), "--runs", "99"], "run id 99"),
                      (["--store", str(tmp_path / "no.db"), "-o", str(tmp_path / "x")], "does not exist"),
                      ([str(tmp_path), "-o", str(tmp_path / "x")], "not a run directory"),
                      (["--store", str(store), "-o", str(tmp_path / "x"), "--runs", "1", "--llc-chains", "-1"],
                       "llc_chains -1")):
        assert main(["report", *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and msg in err, err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert not (tmp_path / "x").exists()


def _browser_or_skip():
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("Playwright's Python client is not installed (pip install -e '.[dev]')")
    if chromium() is None:
        pytest.skip("no Chromium: apt install chromium (.ci/run installs it where apt can)")


def test_the_report_displays_in_a_real_browser(store, tmp_path):
    _browser_or_skip()
    assert main(["report", "--store", str(store), "-o", str(tmp_path / "r"), "--runs", "2",
                 "--sharpness-examples", "16", "--llc-chains", "0"]) == 0
    seen = inspect_page(tmp_path / "r" / "index.html", tmp_path / "shot.png")
    assert seen["errors"] == [] and seen["failed"] == []
    assert len(seen["images"]) >= 8
    for img in seen["images"]:
        assert img["complete"] and img["width"] > 0 and img["height"] > 0, img
    assert seen["rows"] == len(Store(store).runs())
    assert (tmp_path / "shot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_report_opens_in_the_browser(tiny, tmp_path):
    _browser_or_skip()
    from groklab.train import train

    train(tiny.replace(modulus=11, steps=120, early_stop=False), tmp_path / "run")
    assert main(["report", str(tmp_path / "run"), "-o", str(tmp_path / "r"), "--sharpness-examples", "16",
                 "--llc-chains", "0"]) == 0
    seen = inspect_page(tmp_path / "r" / "index.html")
    assert seen["errors"] == [] and seen["rows"] == 1
    assert len(seen["images"]) >= 3 and all(i["width"] > 0 for i in seen["images"])


def test_a_report_names_group_and_formula_runs_by_what_defines_them(tmp_path, capsys):
    """Runs of two groups at two fractions and of a formula: the table, the headings and the legends say the group
    and the formula, never an empty field or a modulus for a group; a setting at two fractions takes two colours;
    no caption speaks of a command-line flag; a chosen run's curves are drawn once."""
    from matplotlib.colors import to_hex

    from groklab.figures import FIGURES, selection

    (tmp_path / "s.toml").write_text('[base]\nmodel = "mlp"\nd_model = 16\nd_mlp = 32\nsteps = 40\n'
                                     'early_stop = false\n[axes]\ntrain_fraction = [0.5, 0.8]\n')
    db = tmp_path / "s.db"
    for extra in (["--task", "group", "--group", "S3,D6"], ["--task", "custom", "--expression", "x*y + 1",
                                                             "--modulus", "7"]):
        assert main(["sweep", str(tmp_path / "s.toml"), "--store", str(db), "--quiet", "--workers", "1", *extra]) == 0
    st = Store(db)
    runs = st.runs()
    d6 = next(r["id"] for r in runs if '"D6"' in r["config"])
    assert main(["report", "--store", str(db), "-o", str(tmp_path / "r"), "--runs", str(d6), "--no-analyses"]) == 0
    page = (tmp_path / "r" / "index.html").read_text()
    cells = re.findall(r'<td class="s" data-v="([^"]*)"', page)
    assert {"x . y in S3", "x . y in D6", "x * y + 1 mod 7"} <= set(cells)
    assert f"<h2>run {d6} (x . y in D6, fraction" in page
    assert "--" not in "".join(re.findall(r"<figcaption>([^<]*)", page))
    figures = [p.name for p in (tmp_path / "r" / "figures").iterdir() if p.suffix == ".png"]
    own = [f for f in figures if f.startswith("01-")]
    assert len([f for f in own if "curves" in f or "double-descent" in f]) == 1, own  # its curves, once
    fig = FIGURES["curves"].draw(selection(st, runs))
    colours = {}
    for ln in fig.axes[0].get_lines():
        label = ln.get_label()
        assert not any(f"{k}=" in label for k in ("group", "expression", "modulus", "n_bits")), label
        if "in D6" in label:
            colours.setdefault(label.split(" f=")[1].split()[0], set()).add(to_hex(ln.get_color()))
    assert len(colours) == 2 and all(len(c) == 1 for c in colours.values())
    assert colours["0.5"] != colours["0.8"]  # one group at two fractions: two colours
