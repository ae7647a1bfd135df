"""``groklab report``: a self-contained static HTML page of a store or of one run.

``OUT/index.html`` with its figures beside it in ``OUT/figures/`` (each as PNG, shown, and SVG, linked for
download); no server, no network, no external script: it opens from the file system. A store's page holds the
runs table (every run of the store, sortable by clicking a column and filtered by the search box, with a few
lines of inline JavaScript), then every store figure that the store has the runs for (``plots.FIGURES`` and
their ``applies``: the curves, data efficiency and best validation accuracy over training fractions, model-wise,
the last ``groklab compare``), then, for the runs chosen with ``--runs``, each run's curves, its double descent
and the analyses of ``groklab analyze`` (embeddings, Fourier and progress measures) where its run directory
holds weights. A run's page is the same for that run alone.

The page is built in a temporary folder next to ``OUT`` and moved into place at the end: an error leaves
``OUT`` as it was. An ``OUT`` that holds anything but an earlier report is refused.
"""

from __future__ import annotations

import html
import io
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from . import rundir
from ._version import __version__
from .analysis.progress import analysis_figures, captions, options
from .errors import ConfigError
from .events import double_descent
from .figures import FIGURES, selection
from .lazy import lazy
from .plots import curves
from .plots import double_descent as dd_figure
from .queries import config_of, modulus_of, task_words
from .rundir import FINISHED
from .store import Store
from .tasks import task_label

playwright_sync = lazy("playwright.sync_api")

MARK = "<!-- groklab report -->"
COLUMNS = [("id", "id"), ("task", "task"), ("modulus", "p"), ("train_fraction", "fraction"), ("seed", "seed"),
           ("model", "model"), ("optimizer", "optimizer"), ("lr", "lr"), ("weight_decay", "wd"),
           ("n_params", "params"), ("status", "status"), ("steps_run", "steps"), ("step_train_acc_99", "train 99%"),
           ("step_val_acc_99", "val 99%"), ("grok_delay", "delay"), ("best_val_acc", "best val"),
           ("final_val_acc", "final val"), ("wall_time_s", "time (s)")]


@dataclass
class Page:
    """What a report holds, in order: a title, the runs table, and sections of figures."""

    title: str
    subtitle: str
    rows: list[dict] = field(default_factory=list)
    sections: list[tuple[str, str, list[tuple[str, str, object]]]] = field(default_factory=list)  # title, note, figs

    def section(self, title: str, note: str = "") -> list:
        """Start a section of the report page; returns the list its figures go into."""
        figs: list = []
        self.sections.append((title, note, figs))
        return figs


def _fmt(key: str, v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if key in ("best_val_acc", "final_val_acc"):
            return f"{v:.3f}"
        if key in ("grok_delay", "wall_time_s"):
            return f"{v:.1f}"
        return f"{v:g}"  # train_fraction 0.3, lr 0.001
    return str(v)


def _table_row(r: dict) -> dict:
    """A store row (or a run directory's summary and config) as the table's cells: the task in its own words
    (the group and its operation, the formula, parity's bits)."""
    cfg = config_of(r)
    row = {k: r.get(k, cfg.get(k)) for k, _ in COLUMNS}
    return {**row, "task": task_words(r), "modulus": modulus_of(row)}  # S5, groups, parity, digits: no modulus


def _save(fig, folder: Path, name: str) -> None:
    for ext in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=100)
        (folder / f"{name}.{ext}").write_bytes(buf.getvalue())


_SCRIPT = """
(function () {
  var table = document.getElementById('runs'), body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows), dir = {};
  function key(td) { var v = td.getAttribute('data-v'), n = Number(v);
    return v === '' ? null : (isNaN(n) ? v.toLowerCase() : n); }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
    th.addEventListener('click', function () {
      dir[i] = -(dir[i] || -1);
      rows.sort(function (a, b) {
        var x = key(a.cells[i]), y = key(b.cells[i]);
        if (x === y) return 0; if (x === null) return 1; if (y === null) return -1;
        return (x < y ? -1 : 1) * dir[i];
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  document.getElementById('filter').addEventListener('input', function (e) {
    var q = e.target.value.toLowerCase(), shown = 0;
    rows.forEach(function (r) { var ok = r.textContent.toLowerCase().indexOf(q) >= 0;
      r.style.display = ok ? '' : 'none'; shown += ok ? 1 : 0; });
    document.getElementById('shown').textContent = shown;
  });
})();
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1250px; color: #222; padding: 0 1em; }
h1 { margin-bottom: 0.1em; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; font-size: 13px; width: 100%; }
th, td { padding: 3px 7px; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
th { cursor: pointer; background: #f3f3f3; position: sticky; top: 0; } th:hover { background: #e4e4e4; }
td.s, th.s { text-align: left; } .tablewrap { max-height: 420px; overflow: auto; border: 1px solid #ddd; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 13px; color: #555; } figcaption a { margin-left: 0.6em; }
input#filter { font-size: 14px; padding: 3px 6px; width: 22em; margin: 0.4em 0; }
"""


def _html(page: Page, figure_files: dict[int, str]) -> str:
    e = html.escape
    head = "".join(f'<th class="{"s" if k in ("task", "model", "optimizer", "status") else ""}">{e(label)}</th>'
                   for k, label in COLUMNS)
    body = []
    for r in page.rows:
        cells = "".join(f'<td class="{"s" if k in ("task", "model", "optimizer", "status") else ""}" '
                        f'data-v="{e("" if r[k] is None else str(r[k]))}">{e(_fmt(k, r[k]))}</td>' for k, _ in COLUMNS)
        body.append(f"<tr>{cells}</tr>")
    parts = [f"<!DOCTYPE html>\n{MARK}\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"<title>{e(page.title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{e(page.title)}</h1><p class=\"sub\">{e(page.subtitle)}</p>",
             f"<h2>Runs</h2><input id=\"filter\" type=\"search\" placeholder=\"filter the runs\" "
             f"aria-label=\"filter the runs\"> <span id=\"shown\">{len(page.rows)}</span> of {len(page.rows)} runs; "
             "click a column to sort",
             f"<div class=\"tablewrap\"><table id=\"runs\"><thead><tr>{head}</tr></thead>"
             f"<tbody>{''.join(body)}</tbody></table></div>"]
    for title, note, figs in page.sections:
        parts.append(f"<h2>{e(title)}</h2>" + (f"<p>{e(note)}</p>" if note else ""))
        for name, caption, fig in figs:
            f = figure_files[id(fig)]
            parts.append(f'<figure><img src="figures/{f}.png" alt="{e(caption)}"><figcaption>{e(caption)}'
                         f'<a href="figures/{f}.png" download>PNG</a><a href="figures/{f}.svg" download>SVG</a>'
                         "</figcaption></figure>")
    parts.append(f"<script>{_SCRIPT}</script></body></html>\n")
    return "\n".join(parts)


def write(page: Page, out: Path) -> Path:
    """Write ``page`` to ``out`` (index.html and figures/), whole or not at all."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not _is_report(out))):
        raise ConfigError(f"{str(out)!r} exists and is not a groklab report; choose a new or empty folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = rundir.folder_beside(out)
    except OSError as e:
        raise ConfigError(f"cannot write {str(out)!r}: {e.strerror or e}") from None
    try:
        (tmp / "figures").mkdir()
        files: dict[int, str] = {}
        for s, (_, _, figs) in enumerate(page.sections):
            for name, _, fig in figs:
                files[id(fig)] = f"{s:02d}-{name}"
                _save(fig, tmp / "figures", files[id(fig)])
        (tmp / "index.html").write_text(_html(page, files), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _is_report(folder: Path) -> bool:
    index = folder / "index.html"
    return index.is_file() and MARK in index.read_text(encoding="utf-8", errors="replace")[:200]


def _run_figures(figs: list, label: str, history: list[dict], run_dir: Path | None, analyses: bool,
                 opts: dict) -> str:
    """Append a run's curves, double descent and (where its directory holds weights) analyses; returns a note."""
    slug = re.sub("-+", "-", "".join(c if c.isalnum() else "-" for c in label)).strip("-")
    weights = run_dir is not None and ((run_dir / "checkpoint.pt").exists() or bool(rundir.snapshot_files(run_dir)))
    if history and double_descent([r["step"] for r in history], [r["val_loss"] for r in history])["val_loss_peak_step"]:
        # its accuracy and loss with the double descent marked: the curves, drawn once
        figs.append((f"{slug}-double-descent", f"{label}: accuracy and loss; the validation loss's double descent "
                     "(Figure 4)", dd_figure(history, title=label)))
    elif not (analyses and weights):  # else the analyses' progress figure draws them, beside its measures
        figs.append((f"{slug}-curves", f"{label}: accuracy and loss", curves({label: history})))
    if not analyses:
        return ""
    if not weights:
        return f"{label}: no weights in its run directory to analyse."
    result, afigs = analysis_figures(run_dir, **opts)
    names = captions()
    for name, fig in afigs.items():
        figs.append((f"{slug}-{name[:-4]}", f"{label}: {names.get(name, name)}", fig))
    return "" if result["n_snapshots"] else f"{label}: no snapshots, only its final weights analysed."


def store_report(store_path, out, runs: list[int] | None = None, analyses: bool = True, **opts) -> Path:
    """The report of a store: its runs table, the figures it has the runs for, and the chosen runs' own.
    ``opts``: analysis settings, as ``groklab analyze`` takes them (``llc_chains=0``)."""
    opts = options(opts)  # checked before anything is read or written
    store_path = Path(store_path)
    if not store_path.is_file():
        raise ConfigError(f"store {str(store_path)!r} does not exist")
    st = Store(store_path, create=False)
    every = st.runs()
    if not every:
        raise ConfigError(f"store {str(store_path)!r} holds no runs")
    by_id = {r["id"]: r for r in every}
    for i in runs or []:
        if i not in by_id:
            raise ConfigError(f"run id {i} is not a run of store {str(store_path)!r}; see groklab runs")
    finished = [r for r in every if r["status"] in FINISHED]
    page = Page(f"groklab report: {store_path.name}",
                f"{len(every)} runs ({len(finished)} finished), groklab {__version__}")
    page.rows = [_table_row(r) for r in every]
    sel = selection(st, finished, None, f"store {str(store_path)!r}")
    figs = page.section("Figures", "" if finished else "No finished runs yet.")
    if finished:
        for spec in FIGURES.values():
            if spec.applies(sel):
                figs.append((spec.name, f"{spec.name}: {spec.caption or spec.help}", spec.draw(sel)))
    for i in runs or []:
        r = by_id[i]
        label = f"run {i} ({task_words(r)}, fraction {r['train_fraction']:g}, seed {r['seed']})"
        figs = page.section(label)
        try:
            run_dir = st.run_dir(i)
        except ConfigError:
            run_dir = None
        note = _run_figures(figs, label, st.metrics(i), run_dir, analyses, opts)
        if note:
            page.sections[-1] = (label, note, figs)
    return write(page, out)


def run_report(run_dir, out, analyses: bool = True, **opts) -> Path:
    """The report of one run directory: its row, curves, double descent and analyses (``opts``: analysis
    settings)."""
    opts = options(opts)
    run_dir = Path(run_dir)
    cfg = rundir.load_config(run_dir)  # refuses a folder that is not a run directory
    summary = rundir.read_summary(run_dir) or {}
    history = rundir.read_metrics(run_dir)
    if not history:
        raise ConfigError(f"{str(run_dir)!r} has no evaluations yet")
    page = Page(f"groklab report: {run_dir.name}", f"one run, groklab {__version__}")
    page.rows = [_table_row({"id": 1, **summary, "config": cfg.to_dict()})]
    label = f"{task_label(cfg)}, fraction {cfg.train_fraction:g}, seed {cfg.seed}"
    figs = page.section(label)
    note = _run_figures(figs, label, history, run_dir, analyses, opts)
    if note:
        page.sections[-1] = (label, note, figs)
    return write(page, out)


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def chromium() -> str | None:
    """The Chromium executable (Debian's ``chromium``; ``GROKLAB_CHROMIUM`` overrides), or None."""
    for path in (os.environ.get("GROKLAB_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                 shutil.which("google-chrome")):
        if path and Path(path).exists():
            return path
    return None


def inspect_page(index, screenshot=None, width: int = 1280, height: int = 900) -> dict:
    """Open a report's ``index.html`` from the file system in headless Chromium (Playwright's Python client) and
    return what a reader would meet: ``errors`` (console errors and uncaught exceptions), ``images`` (each
    ``<img>``'s src, natural width and height, and whether it is complete), ``rows`` (the runs table's rows),
    ``failed`` (requests that failed). With ``screenshot`` also save a PNG of the page's first screen."""
    exe = chromium()
    if exe is None:
        raise ConfigError("no Chromium found: apt install chromium (or set GROKLAB_CHROMIUM)")
    errors, failed = [], []
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.goto(Path(index).resolve().as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => ({src: e.getAttribute('src'), width: e.naturalWidth, "
                       "height: e.naturalHeight, complete: e.complete}))")
            rows = page.eval_on_selector_all("#runs tbody tr", "els => els.length")
            if screenshot is not None:
                page.screenshot(path=str(screenshot))
        finally:
            browser.close()
    return {"errors": errors, "images": images, "rows": rows, "failed": failed}
