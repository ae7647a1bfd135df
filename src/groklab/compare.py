"""Comparisons: named variants of one base config over one grid (the paper's Figure 2, left).

A comparison file is a sweep file (``groklab.grid``) with a ``[variants]`` table::

    preset = "paper"
    [base]
    task = "s5_mul"
    optimizer = "adam"
    weight_decay = 0.0
    [axes]
    train_fraction = [0.3, 0.5, 0.7]
    seed = [0, 1, 2]
    [variants]
    "Adam" = {}
    "AdamW, weight decay 1" = { optimizer = "adamw", weight_decay = 1.0 }
    "dropout 0.1" = { dropout = 0.1 }

Variant ``v`` runs base <- v's overrides, for every point of the axes. A variant may not set an axis field.
Variants whose configs coincide share their runs. ``run_comparison`` trains them into a store (a sweep), reads
each variant's finished runs back, tabulates them (``compare_table``) and keeps the comparison in the store
(``store.SavedComparison``: the one format ``groklab compare`` writes and ``groklab plot compare`` and the report
read).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import RunConfig, check_keys
from .errors import ConfigError
from .grid import TABLES, Sweep, load_sweep, read_tables
from .lazy import lazy
from .rundir import FINISHED
from .store import SavedComparison, Store
from .sweep import run_sweep
from .tasks import get_task

np = lazy("numpy")
pd = lazy("pandas")

COMPARE_TABLES = {**TABLES, "variants": "named overrides of the base, each a variant run over the whole grid"}


@dataclass
class Comparison:
    """Named variants (each a set of RunConfig overrides) over one base config and grid (a ``Sweep``)."""

    sweep: Sweep
    variants: dict[str, dict]

    def configs(self) -> dict[str, list[RunConfig]]:
        """Each variant's configs (validated), in file order."""
        out = {}
        for name, over in self.variants.items():
            try:
                out[name] = self.sweep.with_base(over).configs()
            except ConfigError as e:
                raise ConfigError(f"variant {name!r}: {e}") from None
        return out

    def all_configs(self) -> list[RunConfig]:
        """Every distinct config of every variant, once."""
        seen, out = set(), []
        for cfgs in self.configs().values():
            for c in cfgs:
                if c.hash() not in seen:
                    seen.add(c.hash())
                    out.append(c)
        return out

    def saved(self) -> SavedComparison:
        """The comparison as the store keeps it: its title and each variant's config hashes."""
        return SavedComparison(self.title(), {name: [c.hash() for c in cfgs] for name, cfgs in self.configs().items()})

    def title(self) -> str:
        """What the chart's title says: the tasks compared."""
        tasks = sorted({f"{c.task} mod {c.modulus}" if get_task(c.task).modular else c.task
                        for c in self.all_configs()})
        return f"{', '.join(tasks)}: each variant's best validation accuracy and steps to 99%"


def load_comparison(path: str | Path, overrides: dict[str, list] | None = None) -> Comparison:
    """A comparison file, with command-line axes ``overrides`` replacing the file's."""
    data = read_tables(path, "comparison file", COMPARE_TABLES)
    where = f"comparison file {str(path)!r}"
    variants = data.pop("variants", None)
    if not isinstance(variants, dict) or not variants:
        raise ConfigError(f"{where} needs a [variants] table of named config overrides, e.g. "
                          "\"AdamW\" = { optimizer = \"adamw\" }")
    sweep = load_sweep(path, overrides, data=data)
    for name, over in variants.items():
        if not isinstance(over, dict):
            raise ConfigError(f"{where}: variant {name!r} must be a table of config overrides, got {over!r}")
        check_keys(over, f"variant {name!r}")
        clash = sorted(set(over) & set(sweep.axes))
        if clash:
            raise ConfigError(f"{where}: variant {name!r} sets {clash[0]}, an axis of the comparison; "
                              "put it in the base or remove it from the axes")
    return Comparison(sweep, variants)


def compare_results(comparison: Comparison, store: Store) -> dict[str, list[dict]]:
    """Each variant's finished runs in ``store`` (store rows with their config's ``steps`` budget)."""
    finished = [r for r in store.runs() if r["status"] in FINISHED]
    return comparison.saved().results(finished)


def compare_table(results: dict[str, list[dict]]):
    """One row per (variant, training fraction): runs, median and range of the best validation accuracy,
    runs that reached 99% validation accuracy and the median step they did (a pandas DataFrame)."""
    out = []
    for name, rows in results.items():
        by_frac: dict[float, list[dict]] = {}
        for r in rows:
            by_frac.setdefault(float(r["train_fraction"]), []).append(r)
        for frac in sorted(by_frac):
            rs = by_frac[frac]
            best = np.array([r["best_val_acc"] or 0.0 for r in rs])
            reached = [r["step_val_acc_99"] for r in rs if r["step_val_acc_99"] is not None]
            out.append({"variant": name, "train_fraction": frac, "runs": len(rs),
                        "seeds": ",".join(str(r["seed"]) for r in sorted(rs, key=lambda r: r["seed"])),
                        "best_val_median": float(np.median(best)), "best_val_min": float(best.min()),
                        "best_val_max": float(best.max()), "generalized": len(reached),
                        "step_val99_median": float(np.median(reached)) if len(reached) == len(rs) else None})
    return pd.DataFrame(out)


def format_table(table) -> str:
    """``compare_table``'s rows as the fixed-width text ``groklab compare`` prints."""
    lines = [f"{'variant':<28} {'frac':>5} {'runs':>4} {'best val (median, range)':>26} {'reached 99%':>11} "
             f"{'steps (median)':>14}"]
    for r in table.to_dict("records"):
        steps = "-" if pd.isna(r["step_val99_median"]) else f"{r['step_val99_median']:,.0f}"
        lines.append(f"{r['variant'][:28]:<28} {r['train_fraction']:>5.2f} {r['runs']:>4} "
                     f"{r['best_val_median']:>9.3f} ({r['best_val_min']:.3f}-{r['best_val_max']:.3f}) "
                     f"{str(r['generalized']) + '/' + str(r['runs']):>11} {steps:>14}")
    return "\n".join(lines)


@dataclass
class ComparisonOutcome:
    """What ``run_comparison`` hands back: the sweep's counts, each variant's finished runs, their table, the
    saved record."""

    counts: dict
    results: dict[str, list[dict]]
    table: object  # pandas DataFrame
    saved: SavedComparison


def run_comparison(comparison: Comparison, store_path: str | Path, **sweep_options) -> ComparisonOutcome:
    """Train every variant's runs into the store (``sweep.run_sweep``: finished runs skipped, interrupted ones
    resumed), read each variant's finished runs, tabulate them and save the comparison in the store."""
    counts = run_sweep(comparison.all_configs(), store_path, **sweep_options)
    store = Store(store_path, create=False)
    try:
        results = compare_results(comparison, store)
        saved = comparison.saved()
        saved.save(store)
    finally:
        store.close()
    return ComparisonOutcome(counts, results, compare_table(results), saved)
