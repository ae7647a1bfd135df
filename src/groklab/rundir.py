"""The run directory: config.json, metrics.csv, summary.json, checkpoint.pt, curves.png.

Every file is written atomically (a temporary file in the same folder,
fsync, rename), so a killed run never leaves a half-written file. A
checkpoint holds everything a run needs to continue bit for bit: parameters,
optimizer and filter state, the batch sampler, every RNG, the step and the
stop-rule state. It is loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import shutil
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .config import FIELDS, RunConfig
from .errors import ConfigError, StorageError
from .lazy import lazy
from .models import get_model
from .tasks import get_task, shape_of

if TYPE_CHECKING:
    from torch import Tensor

np = lazy("numpy")
torch = lazy("torch")

CHECKPOINT_FORMAT = 1
METRICS = ["step", "train_loss", "train_acc", "val_loss", "val_acc", "zero_loss_frac", "weight_norm", "lr", "elapsed_s"]
# columns a run written by an older groklab may lack (empty in metrics.csv, None when read, NULL in the store)
ADDED_METRICS = {"zero_loss_frac"}
SUMMARY = ["task", "modulus", "train_fraction", "seed", "n_train", "n_val", "n_params", "steps_run",
           "step_train_acc_99", "step_val_acc_99", "step_val_acc_99_first", "grok_delay", "val_loss_min_step", "val_loss_peak_step",
           "val_loss_peak", "second_descent_step", "final_train_acc", "final_val_acc", "best_val_acc", "wall_time_s",
           "status"]


class Status(StrEnum):
    """A run's status in summary.json and the store."""

    RUNNING = "running"
    GENERALIZED = "generalized"
    BUDGET_EXHAUSTED = "budget_exhausted"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"


FINISHED = (Status.GENERALIZED, Status.BUDGET_EXHAUSTED, Status.DIVERGED)


def folder_beside(out: Path) -> Path:
    """A new hidden folder next to ``out``, to fill and then rename to ``out`` (a folder written whole or not at
    all). Made with the umask's mode, as a run directory is (``tempfile.mkdtemp``'s 0700 would leave an export or
    a report unreadable to others)."""
    out = Path(out)
    tmp = out.parent / f".{out.name}.{secrets.token_hex(6)}.tmp"
    tmp.mkdir()
    return tmp


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all or nothing: temporary file, fsync, rename.

    The temporary file is created with mode 0o666, so the process's umask applies as to any new file.
    """
    path = Path(path)
    tmp = None
    try:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _remove(tmp)
        raise StorageError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: Path | None) -> None:
    try:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    except OSError:  # e.g. the folder is not writable: nothing was created there
        pass


def append(path: Path, data: bytes) -> None:
    """Append to a file (metrics.csv grows one row per evaluation); a failure is a StorageError."""
    try:
        with Path(path).open("ab") as fh:
            fh.write(data)
    except OSError as e:
        raise StorageError(f"cannot write {str(path)!r}: {e.strerror or e}") from None


def atomic_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (temporary file, fsync, rename)."""
    atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode())


def metrics_csv(rows: list[dict]) -> bytes:
    """Metrics rows as the bytes of metrics.csv (header and one line per evaluation)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, METRICS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(dict(zip(METRICS, metric_values(r))))
    return buf.getvalue().encode()


def metric_values(row: dict) -> list:
    """A metrics row's values in METRICS order (None for a column an older groklab did not write)."""
    return [row.get(k) if k in ADDED_METRICS else row[k] for k in METRICS]


def metrics_row(row: dict) -> bytes:
    """One metrics.csv line (no header)."""
    return metrics_csv([row]).split(b"\n", 1)[1]


def read_metrics(run_dir: Path) -> list[dict]:
    """A run directory's metrics.csv as a list of dicts of numbers ([] when there is none)."""
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        return []
    with path.open() as fh:
        rows = {}
        for row in csv.DictReader(fh):  # one row per step (the last, should a step ever be written twice)
            r = {k: _number(k, row.get(k)) for k in METRICS}
            rows[r["step"]] = r
    return [rows[s] for s in sorted(rows)]


def _number(column: str, text: str | None) -> int | float | None:
    if text in (None, "") and column in ADDED_METRICS:
        return None
    return int(text) if column == "step" else float(text)


def read_json(path: Path) -> dict | None:
    """A JSON file's object, or None when it is missing or cannot be read (written half-way by another tool)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def read_summary(run_dir: Path) -> dict | None:
    """A run directory's summary.json, or None when the run has not finished."""
    path = Path(run_dir) / "summary.json"
    return json.loads(path.read_text()) if path.exists() else None


def run_name(cfg: RunConfig, stamp: str | None = None) -> str:
    """A run directory's name: task, modulus (modular tasks), training fraction, seed and the run's identity
    (``RunConfig.hash``), so that a sweep finds its runs again; ``stamp`` (``groklab train``'s time of start) is
    appended where the same config may be trained more than once."""
    mod = f"-p{cfg.modulus}" if get_task(cfg.task).modular else ""
    name = f"{cfg.task}{mod}-f{cfg.train_fraction:g}-s{cfg.seed}-{cfg.hash()[:10]}"
    return f"{name}-{stamp}" if stamp else name


def prepare(run_dir: Path, cfg: RunConfig, force: bool = False) -> None:
    """Check that ``run_dir`` may be written and write config.json; refuse to overwrite a run that ran."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"output {str(run_dir)!r} exists and is not a directory")
    summary = read_summary(run_dir) if run_dir.exists() else None
    if summary and summary.get("status") == Status.INTERRUPTED and not force:
        raise ConfigError(f"{str(run_dir)!r} holds an interrupted run; continue it with groklab train --resume "
                          f"{run_dir}, or use --force to overwrite it or --out to choose another directory")
    if summary and summary.get("status") != "running" and not force:
        raise ConfigError(f"{str(run_dir)!r} already holds a finished run (status {summary['status']}); "
                          "use --force to overwrite it or --out to choose another directory")
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if force:  # nothing of the run it replaces may stay: its snapshots would be read as this run's
            for name in ("metrics.csv", "summary.json", "checkpoint.pt", "curves.png"):
                (run_dir / name).unlink(missing_ok=True)
            for folder in ("snapshots", "analysis", "tensorboard", "wandb"):
                shutil.rmtree(run_dir / folder, ignore_errors=True)
        atomic_json(run_dir / "config.json", cfg.to_dict())
    except (OSError, StorageError) as e:
        if created and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()  # leave nothing behind
        raise StorageError(f"cannot write to {str(run_dir)!r}: {getattr(e, 'strerror', None) or e}") from None


# what a resumed run may change: how long it goes on (``resume_config``)
EXTENDABLE = ("steps", "early_stop", "stop_patience")


def resume_config(run_dir: Path, changes: dict | None = None) -> RunConfig:
    """The config a run continues with: its own, with ``changes`` to the fields of ``EXTENDABLE`` (a larger
    budget, another stop rule; ``groklab.train`` writes it to config.json when the run starts). Refused in one line: another change; a run that
    finished, when nothing extends it; a diverged run; a budget at or below the steps it ran; a finished run
    with no checkpoint to continue from; a checkpoint that is not this run's."""
    run_dir = Path(run_dir)
    changes = dict(changes or {})
    other = [k for k in changes if k not in EXTENDABLE]
    if other:
        raise ConfigError(f"a resumed run keeps its own config (only {', '.join(EXTENDABLE)} may change); "
                          f"not {', '.join(other)}")
    cfg = load_config(run_dir)
    summary = read_summary(run_dir) or {}
    status, ran = summary.get("status"), summary.get("steps_run") or 0
    if changes:
        if status == Status.DIVERGED:
            raise ConfigError(f"{str(run_dir)!r} diverged; it cannot be extended")
        if "steps" in changes and changes["steps"] <= ran:
            raise ConfigError(f"--steps {changes['steps']} does not extend {str(run_dir)!r}, which ran {ran:,} "
                              f"steps; give more than {ran:,}")
        if status not in (Status.RUNNING, Status.INTERRUPTED, None) and not has_checkpoint(run_dir):
            raise ConfigError(f"{str(run_dir)!r} has no checkpoint to continue from")
        cfg = cfg.replace(**changes)
    elif status not in (Status.RUNNING, Status.INTERRUPTED, None):
        raise ConfigError(f"{str(run_dir)!r} holds a finished run (status {status}); nothing to resume "
                          "(--steps N with N above its budget extends it)")
    if has_checkpoint(run_dir):
        load_checkpoint(run_dir, cfg)  # refuses a checkpoint that is unreadable or another run's
    return cfg


def has_checkpoint(run_dir: Path) -> bool:
    """Whether the run directory holds a checkpoint to resume from."""
    return (Path(run_dir) / "checkpoint.pt").exists()


def load_config(run_dir: Path) -> RunConfig:
    """A run directory's config.json as a RunConfig; a missing or invalid one is refused in one line."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise ConfigError(f"{str(run_dir)!r} is not a run directory (no config.json)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{str(path)!r} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{str(path)!r} does not hold a config object")
    return RunConfig.from_dict(data)


# -- checkpoints ------------------------------------------------------------------------


def save_checkpoint(run_dir: Path, state: dict) -> None:
    """Write a run's state as checkpoint.pt atomically, stamped with the checkpoint format and groklab's version."""
    state = {"format": CHECKPOINT_FORMAT, "groklab_version": __version__, **state}
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(Path(run_dir) / "checkpoint.pt", buf.getvalue())


def load_checkpoint(run_dir: Path, cfg: RunConfig | None = None) -> dict:
    """Load and check a checkpoint: format, version and (when given) that it belongs to ``cfg``."""
    path = Path(run_dir) / "checkpoint.pt"
    if not path.exists():
        raise ConfigError(f"{str(run_dir)!r} has no checkpoint.pt to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: tell the user, don't crash
        raise ConfigError(f"{str(path)!r} is not a readable groklab checkpoint ({type(e).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{str(path)!r} has checkpoint format {state.get('format') if isinstance(state, dict) else None!r}; "
                          f"this groklab ({__version__}) reads format {CHECKPOINT_FORMAT}")
    if cfg is not None:
        _check_owner(state.get("config", {}), cfg, run_dir)
    return state


def _check_owner(theirs: dict, cfg: RunConfig, run_dir: Path) -> None:
    """Refuse a checkpoint of another task or architecture (a field missing from an older checkpoint has its default)."""
    for key in ("task", "modulus", "model") + get_model(cfg.model).field_names:
        value = theirs.get(key, FIELDS[key].default)
        if value != getattr(cfg, key):
            raise ConfigError(f"checkpoint in {str(run_dir)!r} is for {key}={value!r}, not {key}={getattr(cfg, key)!r}")


def snapshot_steps(budget: int, n: int) -> list[int]:
    """About ``n`` log-spaced steps in [0, budget] (0 and 1 included; duplicates after rounding dropped)."""
    if n <= 0:
        return []
    if n == 1 or budget < 1:
        return [0]
    return sorted({0, *np.unique(np.round(np.geomspace(1, budget, n - 1))).astype(int).tolist()})


def save_snapshot(run_dir: Path, step: int, params: dict[str, Tensor]) -> None:
    """RUN/snapshots/step_<step>.pt: one model's parameters (no ensemble axis) at ``step``, written atomically."""
    folder = Path(run_dir) / "snapshots"
    try:
        folder.mkdir(exist_ok=True)
    except OSError as e:
        raise StorageError(f"cannot write {str(folder)!r}: {e.strerror or e}") from None
    buf = io.BytesIO()
    torch.save({"step": int(step), "params": {k: v.detach().cpu().clone() for k, v in params.items()}}, buf)
    atomic_write(folder / f"step_{int(step):09d}.pt", buf.getvalue())


def snapshot_files(run_dir: Path) -> list[tuple[int, Path]]:
    """The (step, file) of every snapshot of a run, in step order."""
    folder = Path(run_dir) / "snapshots"
    if not folder.is_dir():
        return []
    return sorted((int(f.stem.split("_")[1]), f) for f in folder.glob("step_*.pt") if f.stem.split("_")[1].isdigit())


def load_snapshot(path: Path, run_dir: Path | None = None):
    """The ``groklab.models.Model`` of one snapshot file (the run's config from ``run_dir``, default its folder)."""
    run_dir = Path(run_dir) if run_dir is not None else Path(path).parents[1]
    cfg = load_config(run_dir)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user-facing error
        raise ConfigError(f"snapshot {str(path)!r} is unreadable: {e}") from None
    return model_of(cfg, state["params"])


def model_of(cfg: RunConfig, params: dict[str, Tensor]):
    """A run's ``groklab.models.Model`` with ``params`` (through the model registry)."""
    from .models.module import Model  # an nn.Module: PyTorch, imported when a model is made

    spec = get_model(cfg.model)
    return Model(spec, spec.config(cfg, shape_of(cfg)), params)


def load_model(run_dir: Path):
    """The trained model of a run directory as a ``groklab.models.Model`` (through the model registry)."""
    cfg = load_config(run_dir)
    return model_of(cfg, load_checkpoint(run_dir, cfg)["params"])
