"""Hyper-parameter search for the fewest updates to 99% validation accuracy, with Optuna.

A tune file is a sweep file whose ``[search]`` table gives the space and whose
``[tune]`` table the budget::

    preset = "paper"
    [base]
    task = "div"
    steps = 3000
    [search]
    lr = { low = 3e-4, high = 3e-2, log = true }
    weight_decay = { low = 0.1, high = 3.0, log = true }
    warmup_steps = { choices = [10, 50, 100] }
    [tune]
    trials = 20              # the same trial budget for every method compared
    seeds = [0, 1, 2]        # each trial trains these seeds (stacked as one group)
    start = { lr = 1e-2 }    # optional: the first trial's values (those in the space); the rest sampled

The objective of a trial is the median over seeds of the step from which validation accuracy held >= 0.99
(``step_val_acc_99``), a run that never got there counting as twice its budget (so "never" ranks below "late"). Every trial's runs
go into the store like a sweep's; the sampler is seeded, so running the same command again replays the
same trials from the store (nothing is recomputed) and continues where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from .config import FIELDS, RunConfig, check_keys, read_toml
from .errors import ConfigError
from .grid import read_tables
from .lazy import lazy
from .rundir import FINISHED
from .store import Store
from .sweep import run_sweep

np = lazy("numpy")
optuna = lazy("optuna")
pd = lazy("pandas")

TUNE_TABLES = {"preset": "the preset every trial starts from", "base": "RunConfig fields shared by every trial",
               "search": "the space: { low, high [, log] } or { choices = [...] } per field",
               "tune": "trials, seeds, sampler_seed, start"}


@dataclass
class Tuning:
    """A tune file: the base config, the search space, the trial budget, the seeds and the sampler's seed."""
    base: dict
    search: dict[str, dict]
    trials: int
    seeds: list[int]
    preset: str | None = None
    sampler_seed: int = 0
    start: dict | None = None  # the first trial's values (of the keys in the space); the rest sampled

    def config(self, params: dict[str, Any], seed: int) -> RunConfig:
        """The config of one trial's run: the base, the trial's ``params``, ``seed``."""
        return RunConfig.from_dict({**self.base, **params, "seed": seed}, preset=self.preset)

    def corner(self) -> dict[str, Any]:
        """Each key of the space at its first choice or low end (of the keys written well enough to have one)."""
        return {k: _typed(k, sp["choices"][0] if "choices" in sp else sp["low"]) for k, sp in self.search.items()
                if isinstance(sp, dict) and ("choices" in sp and sp["choices"] or "low" in sp)}

    def check(self, where: str = "tuning") -> None:
        """Every corner of the space makes a valid config (ConfigError otherwise), before anything runs."""
        check_keys(self.search, "search")
        for name, space in self.search.items():
            ok = isinstance(space, dict) and (set(space) == {"choices"} and isinstance(space["choices"], list)
                                              and space["choices"]
                                              or {"low", "high"} <= set(space) <= {"low", "high", "log"})
            if not ok:
                raise ConfigError(f"{where}: search {name} must be {{ low = ..., high = ... [, log = true] }} "
                                  f"or {{ choices = [...] }}; got {space!r}")
            if "low" in space:
                if FIELDS[name].type not in ("int", "float"):
                    raise ConfigError(f"{where}: search {name} has a range but {name} is {FIELDS[name].type}")
                if not space["low"] < space["high"] or (space.get("log") and space["low"] <= 0):
                    raise ConfigError(f"{where}: search {name} needs 0 < low < high for a log range, low < high "
                                      f"otherwise; got {space['low']} and {space['high']}")
            # every corner of this key, with the other keys at their first choice or low end (a key may only
            # mean something beside another: grokfast_ma_window beside grokfast_ma_lamb > 0)
            others = {k: v for k, v in self.corner().items() if k != name}
            for v in space.get("choices", [space.get("low"), space.get("high")]):
                try:
                    self.config({**others, name: _typed(name, v)}, self.seeds[0])
                except ConfigError as e:
                    raise ConfigError(f"{where}: search {name} = {v!r}: {e}") from None
        if self.start is not None:
            if not isinstance(self.start, dict):
                raise ConfigError(f"{where}: start must be a table of values, e.g. {{ lr = 1e-2 }}")
            check_keys(self.start, "start")
            self.config({k: v for k, v in self.start.items() if k in self.search}, self.seeds[0])


def _typed(name: str, value):
    """A value of the search space as its field's type (an int field's bounds may be written as floats)."""
    return int(value) if FIELDS[name].type == "int" else value


def load_tuning(path: str | Path, trials: int | None = None) -> Tuning:
    """Read and validate a tune file (a path, or a bundled name); ``trials`` overrides its ``[tune]`` trials."""
    data = read_toml(path, "tune file")
    where = f"tune file {str(path)!r}"
    if "axes" in data or "zip" in data:
        raise ConfigError(f"{where}: a tune file searches a [search] space instead of sweeping "
                          f"[{'axes' if 'axes' in data else 'zip'}]: give each field to try as "
                          "{ choices = [...] } or { low = ..., high = ... } in [search], and the seeds in [tune] as "
                          "seeds = [0, 1, 2]")
    data = read_tables(path, "tune file", TUNE_TABLES, data)
    base, search, tune = data.get("base", {}), data.get("search", {}), data.get("tune", {})
    check_keys(base, "tune base")
    if not isinstance(search, dict) or not search:
        raise ConfigError(f"{where} needs a [search] table, e.g. lr = {{ low = 3e-4, high = 3e-2, log = true }}")
    unknown = set(tune) - {"trials", "seeds", "sampler_seed", "start"}
    if unknown:
        raise ConfigError(f"{where}: unknown [tune] key {sorted(unknown)[0]!r}; allowed: trials, seeds, "
                          "sampler_seed, start")
    n = trials if trials is not None else tune.get("trials", 20)
    seeds = tune.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]  # one seed
    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"{where}: trials {n!r} must be an integer >= 1")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise ConfigError(f"{where}: seeds {seeds!r} must be integers >= 0, e.g. seeds = [0, 1, 2]")
    t = Tuning(base, search, n, seeds, data.get("preset"), int(tune.get("sampler_seed", 0)), tune.get("start"))
    t.check(where)
    return t


def _suggest(trial, name: str, space: dict):
    if "choices" in space:
        return trial.suggest_categorical(name, space["choices"])
    if FIELDS[name].type == "int":
        return trial.suggest_int(name, int(space["low"]), int(space["high"]), log=bool(space.get("log")))
    return trial.suggest_float(name, float(space["low"]), float(space["high"]), log=bool(space.get("log")))


def objective_value(rows: list[dict]) -> float:
    """Median over seeds of the step from which validation accuracy held 99%; never counts as twice the budget."""
    return float(np.median([r["step_val_acc_99"] if r["step_val_acc_99"] is not None else 2 * (r["steps"] or 1)
                            for r in rows]))


@dataclass
class Outcome:
    """A search's result: every trial (``table``, a DataFrame: its params, objective, seeds that reached 99%,
    median best validation accuracy), the searched fields, the budget, and the best trial's row; ``best_trial``
    is None when no run of any trial reached 99% validation accuracy (then no trial is better than another at
    the objective)."""

    table: Any
    params: list[str]
    budget: int
    best_trial: int | None

    def _params_of(self, i: int) -> dict:
        return {k: _plain(self.table.at[i, k]) for k in self.params}

    @property
    def best(self) -> dict | None:
        """The best trial's values, or None when no trial reached 99% validation accuracy."""
        return None if self.best_trial is None else self._params_of(self.best_trial)

    @property
    def value(self) -> float | None:
        """The best trial's objective, or None."""
        return None if self.best_trial is None else float(self.table.at[self.best_trial, "objective"])

    @property
    def closest(self) -> dict:
        """The params of the trial with the highest median best validation accuracy (a choice to make knowingly
        when nothing reached the target)."""
        return self._params_of(self.table.sort_values(["best_val_acc", "trial"], ascending=[False, True]).index[0])

    def choice(self, force: bool = False) -> dict | None:
        """The params to write as the best config: the best trial's; when none reached 99%, the closest one only
        with ``force``."""
        return self.best if self.best is not None else (self.closest if force else None)

    def describe(self) -> str:
        """The outcome in one line: the best trial and when it generalized, or that none did."""
        if self.best_trial is None:
            return (f"no trial reached 99% validation accuracy within its {self.budget:,} updates: none is best "
                    f"(highest median best validation accuracy: {_format(self.closest)}); give more updates or a "
                    "wider space")
        row = self.table.loc[self.best_trial]
        return (f"best: {_format(self.best)} -> 99% validation accuracy held from step {self.value:,.0f} (median "
                f"over {row['seeds']} seeds; {row['reached']} of them reached it"
                + ("; the others counted at twice the budget" if row["reached"] < row["seeds"] else "") + ")")


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def _format(params: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def tune(tuning: Tuning, store_path: str | Path, workers: int | None = None, progress: bool = False) -> Outcome:
    """Run the search; returns its ``Outcome`` (every trial, and the best one if any run reached 99%)."""
    if find_spec("optuna") is None:
        raise ConfigError("groklab tune needs Optuna: pip install 'groklab[tune]'")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # a quarter of the budget (at least 5 trials, Optuna's 10 at most) samples the space at random before TPE
    startup = min(10, max(5, tuning.trials // 4))
    sampler = optuna.samplers.TPESampler(seed=tuning.sampler_seed, n_startup_trials=startup)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    first = {k: v for k, v in (tuning.start or {}).items() if k in tuning.search}
    if first:
        study.enqueue_trial(first)
    store_path = Path(store_path)
    rows_out = []
    for number in range(tuning.trials):
        trial = study.ask()
        params = {name: _suggest(trial, name, space) for name, space in tuning.search.items()}
        cfgs = [tuning.config(params, s) for s in tuning.seeds]
        run_sweep(cfgs, store_path, workers=workers, progress=progress)
        store = Store(store_path)
        rows = [store.get(c) for c in cfgs]
        store.close()
        if any(r is None or r["status"] not in FINISHED for r in rows):
            # a run was interrupted (Ctrl-C, SIGTERM): stop the search; the same command replays and goes on
            raise KeyboardInterrupt
        value = objective_value(rows)
        study.tell(trial, value)
        rows_out.append({"trial": number, **params, "objective": value,
                         "reached": sum(r["step_val_acc_99"] is not None for r in rows), "seeds": len(rows),
                         "best_val_acc": float(np.median([r["best_val_acc"] or 0.0 for r in rows]))})
    table = pd.DataFrame(rows_out)  # row i is trial i
    return Outcome(table, list(tuning.search), tuning.config({}, tuning.seeds[0]).steps,
                   study.best_trial.number if table["reached"].any() else None)
