"""Progress bars (tqdm) for a training and for a sweep, paced for where they are drawn.

On a terminal a bar redraws often; into a file or a pipe (a log, CI) it prints a line every 30 s, not every
redraw (``pace``).
"""

from __future__ import annotations

import sys

from .lazy import lazy
from .rundir import FINISHED

tqdm_auto = lazy("tqdm.auto")


def pace() -> dict:
    """tqdm settings: redraw often on a terminal; into a file or pipe, a line every 30 s."""
    return {} if sys.stderr.isatty() else {"mininterval": 30.0, "maxinterval": 60.0}


def training_bar(budget: int, initial: int):
    """A training's bar: updates done, elapsed time, updates/s and the run's phase (the postfix); no ETA to the
    budget, which an early stop makes meaningless (the phase says how many updates the stop rule still needs)."""
    return tqdm_auto.tqdm(initial=initial, unit="step", dynamic_ncols=True, smoothing=0.05,
                bar_format="{n_fmt}/" + f"{budget:,}" + " steps [{elapsed}, {rate_fmt}{postfix}]", **pace())


def sweep_bar(total: int, finished: int):
    """A sweep's bar over runs, starting at the runs already finished."""
    return tqdm_auto.tqdm(total=total + finished, initial=finished, unit="run", dynamic_ncols=True, **pace())


def show_sweep(bar, rows: list[dict], n_todo: int) -> None:
    """Set a sweep's bar from the store rows of the runs it trains: finished, running, left."""
    if bar is None:
        return
    done = sum(r["status"] in FINISHED for r in rows)
    running = sum(r["status"] == "running" for r in rows)
    bar.n = bar.initial + done
    bar.set_postfix_str(f"running {running}, left {n_todo - done - running}", refresh=False)
    bar.update(0)  # redraws at the bar's pace, not at every poll


def duration(seconds: float) -> str:
    """A wall time in the unit a reader wants: ``40 s``, ``12 min``, ``3.5 h``, ``6.3 days``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
