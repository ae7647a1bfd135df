"""The training loop: one run, or a group of compatible runs trained together as one stacked model.

    >>> from groklab import RunConfig, train
    >>> result = train(RunConfig(task="add", modulus=23), out="runs/add23")   # doctest: +SKIP
    >>> result.summary["status"], result.summary["step_val_acc_99"]            # doctest: +SKIP

``train_group`` is the loop; ``groklab.engine.Group`` the engine it drives.
Once per update: evaluate the runs that are due (full training and
validation sets, on a schedule dense early and log-spaced later), record the
rows and apply each run's stop rule, write the checkpoints that are due,
retire the runs that are done, then one update of all others. The loss and
accuracies only leave the device at evaluations.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import rundir
from .bars import duration, training_bar
from .config import RunConfig
from .engine import Group, GroupSpec
from .errors import ConfigError
from .events import THRESHOLD, of_rows
from .lazy import lazy
from .loggers import Loggers
from .models import get_model
from .plots import save_curves
from .rundir import Status
from .runtime import configure, thread_governor
from .signals import Interrupt
from .tasks import shape_of, task_label

torch = lazy("torch")


def eval_interval(step: int, eval_every: int) -> int:
    """Evaluate every ``eval_every`` updates early on, then every tenth of the current power of ten (every 100
    steps from 1,000 to 9,999, every 1,000 from 10,000 to 99,999: 90 evaluations per decade)."""
    return max(eval_every, 10 ** int(math.log10(max(step, 1))) // 10)


def is_eval_step(step: int, cfg: RunConfig) -> bool:
    """Whether ``step`` is evaluated: the first and last steps and the schedule of ``eval_interval``."""
    return step == 0 or step >= cfg.steps or step % eval_interval(step, cfg.eval_every) == 0


@dataclass
class RunResult:
    """What ``train`` returns: the run's config, its summary.json fields, its metrics history and its run directory."""
    config: RunConfig
    summary: dict
    history: list[dict]
    run_dir: Path | None = None


@dataclass
class RunState:
    """One run's record as the loop keeps it: history, stop rule, status, run directory, clock."""

    cfg: RunConfig
    run_dir: Path | None
    history: list[dict] = field(default_factory=list)
    last_eval: int = -1
    last_ckpt: int = 0
    streak_start: int | None = None  # first step of the current streak of validation accuracy >= 0.99
    status: Status = Status.RUNNING
    snapshot_at: frozenset = frozenset()  # the steps whose parameters are kept (cfg.snapshots)
    loggers: Loggers | None = None  # cfg.logger's copies of the metrics
    elapsed_before: float = 0.0
    t0: float = field(default_factory=time.perf_counter)

    @property
    def elapsed(self) -> float:
        """Seconds this run has trained, across resumes."""
        return self.elapsed_before + time.perf_counter() - self.t0

    @property
    def memorized_at(self) -> int | None:
        """The first evaluated step with training accuracy >= 0.99, or None."""
        return next((r["step"] for r in self.history if r["train_acc"] >= THRESHOLD), None)

    def phase(self, rate: float | None) -> str:
        """Where the run is, in words a user can trust: memorizing, waiting to generalize, or holding 99% for
        the stop rule (with the updates, and at ``rate`` updates/s the seconds, left)."""
        if not self.history:
            return "starting"
        h = self.history[-1]
        accs = f"train {h['train_acc']:.3f}, val {h['val_acc']:.3f}"
        memorized = self.memorized_at
        if memorized is None:
            return f"memorizing ({accs})"
        if self.streak_start is None:
            return f"memorized at {memorized:,}, waiting to generalize ({accs})"
        if not self.cfg.early_stop:
            return f"val >= 0.99 since {self.streak_start:,} ({accs})"
        left = max(0, self.streak_start + self.cfg.stop_patience - h["step"])
        eta = f", ~{left / rate:.0f} s" if rate else ""
        return f"val >= 0.99 since {self.streak_start:,}: stops if it holds {left:,} more updates{eta} ({accs})"

    def eval_due(self, step: int) -> bool:
        """Whether this run evaluates at ``step`` (not evaluated there yet, and on the schedule)."""
        return step > self.last_eval and is_eval_step(step, self.cfg)

    def record(self, row: dict) -> None:
        """Append an evaluation, then apply the stop rule and the divergence check."""
        self.history.append(row)
        self.last_eval = row["step"]
        if self.run_dir is not None:
            rundir.append(self.run_dir / "metrics.csv", rundir.metrics_row(row))
        if self.loggers is not None:
            self.loggers.log(row["step"], {k: v for k, v in row.items() if k != "step"})
        if not all(math.isfinite(row[k]) for k in ("train_loss", "val_loss", "weight_norm")):
            self.status = Status.DIVERGED
            return
        if row["val_acc"] >= THRESHOLD:
            self.streak_start = row["step"] if self.streak_start is None else self.streak_start
            if self.cfg.early_stop and row["step"] - self.streak_start >= self.cfg.stop_patience:
                self.status = Status.GENERALIZED
        else:
            self.streak_start = None
        if self.status == Status.RUNNING and row["step"] >= self.cfg.steps:
            self.status = Status.GENERALIZED if row["val_acc"] >= THRESHOLD else Status.BUDGET_EXHAUSTED

    def summary(self, steps_run: int) -> dict:
        """The run's summary.json fields after ``steps_run`` updates."""
        c, h = self.cfg, self.history
        ev = of_rows(h)
        model = get_model(c.model)
        n_train = c.n_train
        return {"task": c.task, "modulus": c.modulus, "train_fraction": c.train_fraction, "seed": c.seed,
                "n_train": n_train, "n_val": c.table_size - n_train,
                "n_params": model.n_params(model.config(c, shape_of(c)), embeddings=True),
                "steps_run": steps_run, **ev,
                "final_train_acc": h[-1]["train_acc"] if h else None,
                "final_val_acc": h[-1]["val_acc"] if h else None,
                "best_val_acc": max(r["val_acc"] for r in h) if h else None,
                "wall_time_s": round(self.elapsed, 3), "status": str(self.status)}


def _start(cfg: RunConfig, rd: Path | None, resume: bool) -> tuple[RunState, dict | None]:
    """A run's loop state, and its checkpoint when it resumes from one (the engine takes the rest)."""
    run = RunState(cfg, rd)
    if rd is not None and cfg.snapshots:
        run.snapshot_at = frozenset(rundir.snapshot_steps(cfg.steps, cfg.snapshots))
    ckpt = None
    if resume and rd is not None and (rd / "checkpoint.pt").exists():
        ckpt = rundir.load_checkpoint(rd, cfg)
        run.last_eval, run.last_ckpt = int(ckpt["last_eval"]), int(ckpt["step"])
        run.streak_start = None if ckpt["streak_start"] < 0 else int(ckpt["streak_start"])
        run.elapsed_before = float(ckpt["elapsed"])
        # rows after the checkpoint were computed by the lost process: they are computed again
        run.history = [r for r in rundir.read_metrics(rd) if r["step"] <= run.last_eval]
    if rd is not None:
        rundir.atomic_write(rd / "metrics.csv", rundir.metrics_csv(run.history))
        rundir.atomic_json(rd / "summary.json", run.summary(run.last_ckpt))
        if cfg.logger != "none":  # a resumed run's loggers drop what they hold after its checkpoint
            run.loggers = Loggers(cfg.logger, rd, cfg.to_dict(), purge_after=run.last_eval if resume else None)
    return run, ckpt


def _checkpoint(run: RunState, g: Group, e: int) -> None:
    if run.run_dir is None:
        return
    state = g.member_state(e)
    rundir.save_checkpoint(run.run_dir, {
        "config": run.cfg.to_dict(), **state, "last_eval": run.last_eval,
        "streak_start": -1 if run.streak_start is None else run.streak_start, "elapsed": run.elapsed})
    run.last_ckpt = state["step"]


def _finish(run: RunState, g: Group, e: int) -> RunResult:
    if run.status in (Status.GENERALIZED, Status.BUDGET_EXHAUSTED, Status.INTERRUPTED):
        _checkpoint(run, g, e)  # a diverged run keeps its last good checkpoint
        if run.snapshot_at and run.status != Status.INTERRUPTED:
            rundir.save_snapshot(run.run_dir, g.members[e].step, g.member_params(e))  # the final weights
    summary = run.summary(g.members[e].step)
    if run.loggers is not None:
        run.loggers.close()
    if run.run_dir is not None:
        rundir.atomic_json(run.run_dir / "summary.json", summary)
        if run.history:
            save_curves(run.history, run.run_dir / "curves.png", title=_title(run.cfg))
    return RunResult(run.cfg, summary, run.history, run.run_dir)


def _title(cfg: RunConfig) -> str:
    return f"{task_label(cfg)}, {cfg.train_fraction:.0%} of data, {cfg.optimizer} wd={cfg.weight_decay:g}"


def train_group(cfgs: list[RunConfig], run_dirs: list[Path | None] | None = None, resume: bool = False,
                progress: bool = False, stop_flag=None, on_finish=None) -> list[RunResult]:
    """Train runs that may stack (see ``engine.GroupSpec``) as one group; one RunResult per config, in order.

    ``run_dirs`` (optional, one per config) receive the run-directory files; with ``resume``
    a run whose directory holds a checkpoint continues from it. ``stop_flag()`` returning
    True interrupts all runs (as SIGINT/SIGTERM do); ``on_finish(result)`` is called as
    each run ends.
    """
    spec = GroupSpec.of(cfgs)
    configure(torch.device(spec.device), spec.precision)
    threads = thread_governor(torch.device(spec.device))
    dirs = [Path(d) if d is not None else None for d in (run_dirs or [None] * len(cfgs))]
    started = [_start(c, d, resume) for c, d in zip(cfgs, dirs)]
    runs = [r for r, _ in started]
    g = Group.build(cfgs, [ckpt for _, ckpt in started])
    results: dict[int, RunResult] = {}
    bar = training_bar(max(r.cfg.steps for r in runs), min(m.step for m in g.members)) if progress else None
    try:
        _loop(g, runs, results, bar, stop_flag, on_finish, threads)
    except BaseException:
        for i, run in enumerate(runs):  # the loop raised (a full disk, a bug): no summary may stay "running"
            if i not in results and run.run_dir is not None and run.status == Status.RUNNING:
                run.status = Status.INTERRUPTED
                try:  # best effort: the disk may be full; the last checkpoint stays, --resume goes on from it
                    rundir.atomic_json(run.run_dir / "summary.json", run.summary(run.last_ckpt))
                except Exception:  # noqa: BLE001 - the loop's own error is the one to report
                    pass
        raise
    finally:
        for run in runs:  # closed at _finish; here when the loop raised
            if run.loggers is not None:
                run.loggers.close()
    if bar is not None:
        bar.close()
    return [results[i] for i in range(len(cfgs))]


SLOW_AFTER_S = 10.0  # a training's pace is read after this long
SLOW_IF_S = 3600.0  # and said at once when its budget would take longer


class Pace:
    """Says once, a few seconds in, when a training's budget would take hours at the pace measured so far (a run
    that never generalizes trains its whole budget): ``--task parity`` with the transformer, a large modulus."""

    def __init__(self, g: Group, budget: int, say):
        self.t0, self.step0, self.budget, self.say, self.done = time.monotonic(), g.members[0].step, budget, say, False

    def tick(self, g: Group) -> None:
        if self.done or not g.members:
            return
        elapsed = time.monotonic() - self.t0
        steps = g.members[0].step - self.step0
        if elapsed < SLOW_AFTER_S or steps < 1 or (steps < 20 and elapsed < 6 * SLOW_AFTER_S):
            return  # past the first updates' costs (kernels' first calls, the first evaluation)
        self.done = True
        left = (self.budget - g.members[0].step) * elapsed / steps
        if left > SLOW_IF_S:
            self.say(f"note: {steps / elapsed:.3g} updates/s over the first {elapsed:.0f} s: the budget of "
                     f"{self.budget:,} updates would take about {duration(left)} more if the run never "
                     "generalizes (Ctrl-C stops it; `groklab train --resume RUN` goes on later)")


def _loop(g: Group, runs: list[RunState], results: dict, bar, stop_flag, on_finish, threads) -> None:
    pace = Pace(g, max(r.cfg.steps for r in runs), lambda m: bar.write(m, file=sys.stderr)) if bar is not None else None
    with Interrupt() as interrupt:
        while g.members:
            due = [e for e, m in enumerate(g.members) if runs[m.index].eval_due(m.step)]
            if due:
                stats = g.evaluate()
                for e in due:
                    m, run = g.members[e], runs[g.members[e].index]
                    run.record({"step": m.step, **stats[e], "elapsed_s": round(run.elapsed, 3)})
                    if run.status == Status.RUNNING and m.step - run.last_ckpt >= run.cfg.checkpoint_every:
                        _checkpoint(run, g, e)
                if bar is not None:  # the first run's phase (a training of one run: its own)
                    bar.set_postfix_str(runs[g.members[0].index].phase(bar.format_dict.get("rate")),
                                        refresh=False)
            if interrupt.hit or (stop_flag is not None and stop_flag()):
                for m in g.members:
                    runs[m.index].status = Status.INTERRUPTED
            done = [e for e, m in enumerate(g.members) if runs[m.index].status != Status.RUNNING]
            for e in done:
                i = g.members[e].index
                results[i] = _finish(runs[i], g, e)
                if on_finish is not None:
                    on_finish(results[i])
            if done:
                g.retire(done)
                if not g.members:
                    break
            for e, m in enumerate(g.members):
                run = runs[m.index]
                if m.step in run.snapshot_at:  # a resumed run writes again, identically, those after its checkpoint
                    rundir.save_snapshot(run.run_dir, m.step, g.member_params(e))
            g.step()
            threads.tick()  # the CPU threads follow the cores other processes leave free
            if bar is not None:
                bar.update(1)
                pace.tick(g)


def train(cfg: RunConfig | None, out: str | Path | None = None, resume: bool = False, force: bool = False,
          progress: bool = False) -> RunResult:
    """Train one run; with ``out`` write its run directory there (the contract: ``groklab.rundir``, and
    docs/training.md's "The run directory").

    With ``resume`` the run in ``out`` continues from its checkpoint, or starts again from step 0 when it was
    stopped before its first checkpoint. It keeps its own config (``cfg`` None, or the run's config), except that
    ``cfg`` may give it a larger budget or another stop rule (``rundir.EXTENDABLE``): ``rundir.resume_config``
    says what may continue.
    """
    if resume:
        if out is None:
            raise ConfigError("resume needs the run directory to continue (out)")
        saved = rundir.load_config(out)
        changes = {} if cfg is None else {k: v for k, v in cfg.to_dict().items() if v != getattr(saved, k)}
        cfg = rundir.resume_config(out, changes)
        if changes:
            rundir.atomic_json(Path(out) / "config.json", cfg.to_dict())
    elif out is not None:
        rundir.prepare(Path(out), cfg, force=force)
    return train_group([cfg], [out], resume=resume, progress=progress)[0]
