"""Loggers: copies of a run's metrics in the tools researchers already use. The run directory and the store stay
the source of truth; a logger only mirrors them.

``RunConfig.logger`` names them, joined by ``+`` (``"tensorboard"``, ``"tensorboard+wandb"``; ``"none"``, the
default, logs nowhere else). Each evaluation row of ``metrics.csv`` is logged at its step, every column but
``step``; ``groklab analyze`` adds its measures over the snapshots as ``analysis/<name>``.

- ``tensorboard``: event files in ``RUN/tensorboard/`` (PyTorch's ``SummaryWriter``; needs the ``tensorboard``
  package: ``pip install groklab[loggers]``). A resumed run purges the events after its checkpoint, which it
  computes again.
- ``wandb``: a Weights & Biases run in ``RUN/wandb/``, offline unless ``WANDB_MODE`` says otherwise (``online``
  after ``wandb login``), so training never needs the network; its id is the run directory's, so a resumed run
  continues the same W&B run. ``wandb sync RUN/wandb/offline-run-*`` uploads an offline run later.

Adding a logger: a class with ``log(step, values)``, ``log_analysis(rows)``, ``flush()`` and ``close()`` and a ``LOGGERS`` entry.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from importlib.util import find_spec
from pathlib import Path
from typing import Callable

from .errors import ConfigError


class TensorBoard:
    """``--logger tensorboard``: the run's metrics as TensorBoard scalars in RUN/tensorboard/."""
    def __init__(self, run_dir: Path, config: Mapping, purge_after: int | None = None):
        """``purge_after``: a resumed run's last step already logged (events after it are dropped)."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("logger 'tensorboard' needs the tensorboard package: pip install groklab[loggers]") from None
        new = not (run_dir / "tensorboard").exists()
        purge = None if purge_after is None else purge_after + 1
        self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge)
        if new:
            self.writer.add_text("config", "\n".join(f"    {k} = {v!r}" for k, v in config.items()), 0)

    def log(self, step: int, values: Mapping[str, float]) -> None:
        """One evaluation's values at ``step``."""
        for k, v in values.items():
            if v is not None:
                self.writer.add_scalar(k, float(v), int(step))

    def log_analysis(self, rows) -> None:
        """``groklab analyze``'s measures at each snapshot, as ``analysis/*``."""
        for r in rows:
            self.log(r["step"], {f"analysis/{k}": v for k, v in r.items() if k != "step"})

    def flush(self) -> None:
        """Write what is buffered."""
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()


class WandB:
    """``--logger wandb``: the run's metrics in a W&B run (offline into RUN/wandb/ unless WANDB_MODE says otherwise)."""
    def __init__(self, run_dir: Path, config: Mapping, purge_after: int | None = None):
        try:
            import wandb
        except ImportError:
            raise ConfigError("logger 'wandb' needs the wandb package: pip install groklab[loggers]") from None
        run_dir = Path(run_dir).resolve()
        run_id = hashlib.sha256(str(run_dir).encode()).hexdigest()[:16]
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "groklab"), dir=str(run_dir),
                              name=run_dir.name, id=run_id, config=dict(config),
                              mode=os.environ.get("WANDB_MODE", "offline"), resume="allow", reinit="create_new",
                              settings=wandb.Settings(silent=True, console="off", x_disable_stats=True))

    def log(self, step: int, values: Mapping[str, float]) -> None:
        """One evaluation's values at ``step``."""
        self.run.log({k: v for k, v in values.items() if v is not None}, step=int(step))

    def log_analysis(self, rows) -> None:
        """``groklab analyze``'s measures at each snapshot, as ``analysis/*`` on their own step axis."""
        # W&B's steps only go forward: the snapshots get their own step axis, analysis/step
        self.run.define_metric("analysis/step")
        self.run.define_metric("analysis/*", step_metric="analysis/step")
        for r in rows:
            self.run.log({"analysis/step": r["step"], **{f"analysis/{k}": v for k, v in r.items() if k != "step"}})

    def flush(self) -> None:
        """Nothing to do: W&B writes as it goes."""
        pass

    def close(self) -> None:
        """Finish the W&B run."""
        self.run.finish()


LOGGERS: dict[str, Callable[..., object]] = {"tensorboard": TensorBoard, "wandb": WandB}


def parse(spec: str) -> list[str]:
    """``"tensorboard+wandb"`` -> ["tensorboard", "wandb"]; ``"none"`` -> []; anything else a ConfigError."""
    if spec == "none":
        return []
    names = spec.split("+")
    for n in names:
        if n not in LOGGERS:
            raise ConfigError(f"logger {n!r} is not allowed; allowed: none, {', '.join(LOGGERS)} "
                              "(several joined by +, e.g. tensorboard+wandb)")
    if len(set(names)) != len(names):
        raise ConfigError(f"logger {spec!r} names a logger twice")
    return names


_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}


def check_available(spec: str) -> None:
    """Refuse, before anything is written, a logger whose package is not installed."""
    for name in parse(spec):
        if find_spec(_PACKAGES[name]) is None:
            raise ConfigError(f"logger {name!r} needs the {_PACKAGES[name]} package: pip install groklab[loggers]")


class Loggers:
    """The loggers of one run directory: ``log(step, row)`` to each, ``close()`` them all."""

    def __init__(self, spec: str, run_dir: Path, config: Mapping, purge_after: int | None = None):
        self.loggers = []
        try:
            for name in parse(spec):
                self.loggers.append(LOGGERS[name](Path(run_dir), config, purge_after))
        except BaseException:
            self.close()
            raise

    def log(self, step: int, values: Mapping[str, float]) -> None:
        """One evaluation's values at ``step``, to every logger."""
        for lg in self.loggers:
            lg.log(step, values)

    def log_analysis(self, rows) -> None:
        """``groklab analyze``'s scalar measures at each snapshot (``analysis.json``'s ``snapshots``)."""
        rows = [{k: float(v) for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
                for r in rows]
        for lg in self.loggers:
            lg.log_analysis(rows)

    def flush(self) -> None:
        """Flush every logger."""
        for lg in self.loggers:
            lg.flush()

    def close(self) -> None:
        """Close every logger."""
        for lg in self.loggers:
            lg.close()
        self.loggers = []
