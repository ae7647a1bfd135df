"""Write examples/tour.ipynb from the cells below (outputs stripped): `python examples/make_tour.py`.

The notebook is kept as this script's output so that its code reads as plain Python in review; CI executes the
notebook itself top to bottom (tests/test_examples.py).
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    ("md", """# A tour of groklab

Grokking (Power et al. 2022): a network memorizes a small algorithmic data set first and generalizes long
after. This notebook trains one run on a laptop CPU in about a minute, plots it, runs a tiny sweep, looks
inside the trained network, and hands it to TransformerLens. Every step is one call of groklab's Python API;
the same steps from the shell are `groklab train`, `groklab sweep`, `groklab plot`, `groklab analyze` and
`groklab export`."""),
    ("code", """import io
import tempfile
import warnings
from pathlib import Path

from IPython.display import Image, display

import groklab
from groklab import RunConfig, train

work = Path(tempfile.mkdtemp(prefix="groklab-tour-"))  # every file of the tour goes here
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notebook bars without ipywidgets


def show(fig):
    \"\"\"Display a matplotlib Figure (groklab's figures are plain Figures, drawn without pyplot).\"\"\"
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    display(Image(buf.getvalue()))


print("groklab", groklab.__version__, "->", work)"""),
    ("md", """## 1. Train the quick preset

x + y mod 23 on 80% of the table, a width-64 transformer, AdamW with weight decay 1: it memorizes its training
set in about a hundred updates and generalizes several times later. Pre-LayerNorm (`norm="pre"`) so that it
exports to TransformerLens below; 12 snapshots of the weights for the analysis."""),
    ("code", """cfg = RunConfig.from_dict({"norm": "pre", "snapshots": 12}, preset="quick")
run = train(cfg, out=work / "add23")
s = run.summary
print(f"memorized at step {s['step_train_acc_99']}, generalized at step {s['step_val_acc_99']} "
      f"({s['grok_delay']:.1f}x later); {s['status']}, {s['wall_time_s']:.0f} s")
assert s["status"] == "generalized\""""),
    ("code", """from groklab.plots import curves

show(curves({"x + y mod 23": run.history}, title="memorize first, generalize later"))"""),
    ("md", """## 2. A tiny sweep and the data-efficiency figure

Fewer training data, more steps to generalize (the paper's Figure 1, centre). A sweep is a base config and
axes; its runs go into one SQLite store, and compatible runs train together as one stacked model. An MLP
keeps this fast."""),
    ("code", """from groklab.grid import Sweep
from groklab.plots import data_efficiency
from groklab.store import Store
from groklab.sweep import outcome_line, run_sweep

sweep = Sweep(base={"task": "add", "modulus": 23, "model": "mlp", "n_layers": 1, "d_model": 64, "d_mlp": 128,
                    "lr": 1e-2, "steps": 3000, "stop_patience": 50},
              axes={"train_fraction": [0.7, 0.9], "seed": [0, 1]}, preset="paper")
counts = run_sweep(sweep.configs(), work / "sweep.db", workers=1, progress=False)
print(outcome_line(counts))
rows = Store(work / "sweep.db").runs()
show(data_efficiency(rows))"""),
    ("md", """## 3. Look inside

`write_analysis` measures every snapshot: the embedding's norm in each Fourier frequency of Z_23 and its Gini
coefficient, the restricted and excluded losses of Nanda et al., sharpness, softmax collapse (the local learning
coefficient too, unless `llc_chains=0` skips it, as here to keep the tour quick). The key
frequencies are the few the network ends up using; on each one's plane the residues lie on a circle."""),
    ("code", """from groklab.analysis import write_analysis

result = write_analysis(work / "add23", sharpness_examples=32, sharpness_iters=10, tsne=False, llc_chains=0)
last = result["snapshots"][-1]
print("key frequencies", result["key_frequencies"], "Fourier Gini", round(result["fourier_gini"], 2))
print("phases", {k: v for k, v in result["phases"].items() if v})
display(Image(filename=str(work / "add23" / "analysis" / "progress.png"), width=900))
display(Image(filename=str(work / "add23" / "analysis" / "embeddings.png"), width=900))"""),
    ("md", """## 4. TransformerLens

The trained network as a `HookedTransformer` with the same weights (the `interp` extra), and an attention
pattern read from its cache: where the answer position `=` looks in layer 0, per head. Over the whole table the
heads split their attention between x and y about evenly; how much goes to x, as a function of (x, y), is
periodic: the stripes are the key frequencies at work."""),
    ("code", """import torch

from groklab.export import hooked_transformer
from groklab.data import TokenLayout

model = hooked_transformer(work / "add23")
x = torch.arange(23).repeat_interleave(23)
y = torch.arange(23).repeat(23)
logits, cache = model.run_with_cache(TokenLayout(23).tokens(x, y))
accuracy = (logits[:, -1].argmax(-1) == (x + y) % 23).float().mean().item()
print(f"accuracy of the HookedTransformer on the whole table: {accuracy:.3f}")
pattern = cache["blocks.0.attn.hook_pattern"][:, :, -1, :]  # (pairs, heads, key position): from '='
print("mean attention from '=' to (x, op, y, =), per head:")
print(pattern.mean(0).numpy().round(2))"""),
    ("code", """from matplotlib.figure import Figure

fig = Figure(figsize=(10, 2.6))
for h, ax in enumerate(fig.subplots(1, pattern.shape[1])):
    ax.imshow(pattern[:, h, 0].reshape(23, 23), cmap="viridis", vmin=0, vmax=1)
    ax.set(title=f"head {h}: '=' to x", xlabel="y", ylabel="x")
fig.tight_layout()
show(fig)"""),
]


def main() -> None:
    nb = new_notebook(cells=[new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in CELLS],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                                "language_info": {"name": "python"}})
    path = Path(__file__).with_name("tour.ipynb")
    nbformat.write(nb, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
