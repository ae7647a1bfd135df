"""The notebook tour (examples/tour.ipynb) runs top to bottom, and is kept without outputs in git."""

import json
from pathlib import Path

import pytest

TOUR = Path(__file__).resolve().parents[1] / "examples" / "tour.ipynb"


def test_the_tour_notebook_is_stored_without_outputs():
    nb = json.loads(TOUR.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c["execution_count"] is None for c in code)


@pytest.mark.slow
def test_the_tour_notebook_runs_top_to_bottom(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("transformer_lens")  # the tour's last part (the interp extra)
    nb = nbformat.read(TOUR, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "memorized at step" in text and "generalized" in text
    assert "key frequencies" in text
    accuracy = float(text.split("accuracy of the HookedTransformer on the whole table: ")[1].split()[0])
    assert accuracy > 0.99  # the quick run generalized, and TransformerLens computes groklab's network
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 5  # curves, data efficiency, progress, embeddings, attention
