"""The training loop: one run, or a group of compatible runs trained together as one stacked model.

>>> from groklab import RunConfig, train
>>> result = train(RunConfig(task="add", modulus=23), out="runs/add23")   # doctest: +SKIP
>>> result.summary["status"], result.summary["step_val_acc_99"]            # doctest: +SKIP

``train_group`` is the engine. Every run keeps its own split, initialization,
batch order, optimizer state, hyper-parameters and stop rule; runs that
finish drop out of the stack. A run trains identically alone (``E = 1``) or
in a group, up to float rounding of the batched matmuls.

The loop, once per update: evaluate the runs that are due (full train and
validation sets, on a schedule dense early and log-spaced later), write a
checkpoint when one is due, retire the runs that are done, then one update
of all others. The loss and accuracies only leave the device at evaluations.
"""

from __future__ import annotations

import functools
import math
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import rundir
from .config import RunConfig
from .errors import ConfigError
from .events import THRESHOLD, events
from .models import ModelConfig, forward, forward_answer, init_params, n_params
from .optim import FlatParams, HyperParams, Optimizer
from .tasks import make_table, n_symbols, split, tokens

# examples x runs per evaluation chunk: cache-sized on the CPU (2x faster there than one big chunk);
# large on a GPU, where each chunk is a round of kernel launches
EVAL_CHUNK = {"cpu": 2048, "cuda": 1 << 17}


def derive_seed(seed: int, stream: int) -> int:
    """Independent seeds for the independent random streams of one run (init, batches, dropout)."""
    return (seed * 1_000_003 + stream * 7_919) % (2**63 - 1)


def eval_interval(step: int, eval_every: int) -> int:
    """Evaluate every ``eval_every`` updates early on, then ten times per decade of steps."""
    return max(eval_every, 10 ** int(math.log10(max(step, 1))) // 10)


def is_eval_step(step: int, cfg: RunConfig) -> bool:
    return step == 0 or step >= cfg.steps or step % eval_interval(step, cfg.eval_every) == 0


def group_key(cfg: RunConfig) -> tuple:
    """Runs with equal keys can train together as one stacked model."""
    return (cfg.task, cfg.modulus, cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_mlp, cfg.act, cfg.norm,
            cfg.dropout, cfg.optimizer, cfg.precision, cfg.compile, resolve_device(cfg.device).type)


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc's malloc to reuse freed memory instead of returning it to the OS (Linux CPU training).

    By default every large tensor the step allocates and frees (activations, gradients: 0.1 to
    8 MB) is a fresh ``mmap``, paid for in page faults: about 1,500 per update of the paper
    model, 7 to 12% of the step on a 2-core CPU. The cost is memory the process keeps after
    freeing it. Process-wide, done once; returns False where it does not apply (not glibc).
    """
    try:
        import ctypes

        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(mallopt(M_MMAP_THRESHOLD, 1 << 30) and mallopt(M_TRIM_THRESHOLD, 1 << 30))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for, but PyTorch sees no CUDA device; use --device cpu")
    return torch.device(name)


class Sampler:
    """Minibatches without replacement: a fresh permutation of the training set each epoch (last partial batch dropped).

    ``rows`` (on the device) are the training set's table rows; ``next`` returns the rows of
    the next batch. The permutation is drawn on the CPU (the same batches on every device),
    and once per epoch it is copied to the device (asynchronously from pinned memory on
    CUDA) and mapped to rows: a batch is then a slice, and ``next`` launches no kernel and
    never waits for the device.
    """

    def __init__(self, rows: torch.Tensor, batch_size: int, seed: int):
        self.rows, self.n, self.batch_size = rows, len(rows), batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self._set_perm(torch.randperm(self.n, generator=self.gen), 0)

    def _set_perm(self, perm: torch.Tensor, cursor: int) -> None:
        self.perm, self.cursor = perm, cursor
        if self.rows.device.type == "cuda":
            self._epoch = self.rows[perm.pin_memory().to(self.rows.device, non_blocking=True)]
        else:
            self._epoch = self.rows[perm]

    def next(self) -> torch.Tensor:
        """The table rows of the next batch, on the device."""
        if self.batch_size >= self.n:
            return self._epoch  # full batch: order does not matter
        if self.cursor + self.batch_size > self.n:
            self._set_perm(torch.randperm(self.n, generator=self.gen), 0)
        out = self._epoch[self.cursor: self.cursor + self.batch_size]
        self.cursor += self.batch_size
        return out

    def state(self) -> dict:
        return {"gen": self.gen.get_state(), "perm": self.perm.clone(), "cursor": self.cursor}

    def load(self, state: dict) -> None:
        self.gen.set_state(state["gen"])
        self._set_perm(state["perm"], int(state["cursor"]))


@dataclass
class RunResult:
    config: RunConfig
    summary: dict
    history: list[dict]
    run_dir: Path | None = None


@dataclass
class _Run:
    """One run's state inside the engine."""

    cfg: RunConfig
    run_dir: Path | None
    train_idx: torch.Tensor  # table rows, on the device
    train_mask: torch.Tensor  # (n_table,) bool, on the device
    sampler: Sampler
    n_val: int
    step: int = 0
    history: list[dict] = field(default_factory=list)
    last_eval: int = -1
    last_ckpt: int = 0
    streak_start: int | None = None
    status: str = "running"
    elapsed_before: float = 0.0
    t0: float = field(default_factory=time.perf_counter)

    @property
    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.t0

    def eval_due(self) -> bool:
        return self.step > self.last_eval and is_eval_step(self.step, self.cfg)

    def record(self, row: dict) -> None:
        """Append an evaluation, then apply the stop rule and the divergence check."""
        self.history.append(row)
        self.last_eval = row["step"]
        if self.run_dir is not None:
            rundir.append(self.run_dir / "metrics.csv", rundir.metrics_row(row))
        if not all(math.isfinite(row[k]) for k in ("train_loss", "val_loss", "weight_norm")):
            self.status = "diverged"
            return
        if row["val_acc"] >= THRESHOLD:
            self.streak_start = row["step"] if self.streak_start is None else self.streak_start
            if self.cfg.early_stop and row["step"] - self.streak_start >= self.cfg.stop_patience:
                self.status = "generalized"
        else:
            self.streak_start = None
        if self.status == "running" and row["step"] >= self.cfg.steps:
            self.status = "generalized" if row["val_acc"] >= THRESHOLD else "budget_exhausted"

    def summary(self) -> dict:
        h = self.history
        ev = events({k: [r[k] for r in h] for k in ("step", "train_acc", "val_acc")})
        c = self.cfg
        return {"task": c.task, "modulus": c.modulus, "train_fraction": c.train_fraction, "seed": c.seed,
                "n_train": len(self.train_idx), "n_val": self.n_val,
                "n_params": n_params(ModelConfig.from_run_config(c, n_symbols(c.task, c.modulus)), embeddings=True),
                "steps_run": self.step, **ev,
                "final_train_acc": h[-1]["train_acc"] if h else None,
                "final_val_acc": h[-1]["val_acc"] if h else None,
                "best_val_acc": max(r["val_acc"] for r in h) if h else None,
                "wall_time_s": round(self.elapsed, 3), "status": self.status}


class _Interrupt:
    """Turns SIGINT/SIGTERM into a flag the loop checks between updates (main thread only)."""

    def __init__(self):
        self.hit = False
        self.old = {}

    def __enter__(self):
        try:
            for s in (signal.SIGINT, signal.SIGTERM):
                self.old[s] = signal.signal(s, self._handle)
        except ValueError:  # not the main thread: no handlers
            self.old = {}
        return self

    def _handle(self, *_):
        self.hit = True

    def __exit__(self, *exc):
        for s, h in self.old.items():
            signal.signal(s, h)


def _checkpoint(run: _Run, e: int, params: FlatParams, opt: Optimizer) -> None:
    if run.run_dir is None:
        return
    rundir.save_checkpoint(run.run_dir, {
        "config": run.cfg.to_dict(), "step": run.step, "params": params.member(e), "optim": opt.state_of(e),
        "sampler": run.sampler.state(), "last_eval": run.last_eval,
        "streak_start": -1 if run.streak_start is None else run.streak_start, "elapsed": run.elapsed,
        "rng": {"torch": torch.get_rng_state(), "numpy": _numpy_state(), "python": _python_state()},
    })
    run.last_ckpt = run.step


def _numpy_state() -> list:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached]


def _python_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _finish(run: _Run, e: int, params: FlatParams, opt: Optimizer) -> RunResult:
    if run.status in ("generalized", "budget_exhausted", "interrupted"):
        _checkpoint(run, e, params, opt)  # a diverged run keeps its last good checkpoint
    summary = run.summary()
    if run.run_dir is not None:
        rundir.atomic_json(run.run_dir / "summary.json", summary)
        if run.history:
            from .plots import save_curves

            save_curves(run.history, run.run_dir / "curves.png", title=_title(run.cfg))
    return RunResult(run.cfg, summary, run.history, run.run_dir)


def _title(cfg: RunConfig) -> str:
    mod = f" mod {cfg.modulus}" if cfg.task not in ("s5_mul", "s5_conj", "s5_aba") else ""
    return f"{cfg.task}{mod}, {cfg.train_fraction:.0%} of data, {cfg.optimizer} wd={cfg.weight_decay:g}"


@torch.inference_mode()
def _evaluate(p, mcfg, X, Y, Z, runs: list[_Run], lr: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    """Loss and accuracy of every run on its train and validation rows: (E, 6) on the CPU.

    The train and validation sets of a run partition the table, so the whole table is
    evaluated once per run and split by masks.
    """
    E, n = len(runs), len(X)
    chunk = max(256, EVAL_CHUNK.get(X.device.type, 2048) // E)
    loss = torch.empty(E, n, device=X.device)
    correct = torch.empty(E, n, device=X.device)
    for a in range(0, n, chunk):
        xs, ys, zs = (t[a: a + chunk].expand(E, -1) for t in (X, Y, Z))
        logits = forward_answer(p, xs, ys, mcfg).float()
        loss[:, a: a + chunk] = F.cross_entropy(logits.transpose(1, 2), zs, reduction="none")
        correct[:, a: a + chunk] = (logits.argmax(-1) == zs).float()
    mask = torch.stack([r.train_mask for r in runs]).float()
    n_tr, n_va = mask.sum(1), (1 - mask).sum(1)
    out = torch.stack([(loss * mask).sum(1) / n_tr, (correct * mask).sum(1) / n_tr,
                       (loss * (1 - mask)).sum(1) / n_va, (correct * (1 - mask)).sum(1) / n_va,
                       flat.norm(dim=1), lr[:, 0]], dim=1)
    return out.cpu()


@dataclass
class Group:
    """The engine's state: runs stacked along the ensemble axis, their data, parameters and optimizer."""

    runs: list[_Run]
    params: FlatParams
    opt: Optimizer
    mcfg: ModelConfig
    X: torch.Tensor  # the task table on the device, (n_table,)
    Y: torch.Tensor
    Z: torch.Tensor
    order: list[int]  # position in the stack -> index in the configs given to build

    @classmethod
    def build(cls, cfgs: list[RunConfig], run_dirs: list[Path | None], resume: bool = False) -> "Group":
        if len({group_key(c) for c in cfgs}) != 1:
            raise ValueError("a group needs runs with the same group_key")
        first = cfgs[0]
        device = resolve_device(first.device)
        if first.precision == "tf32" and device.type != "cuda":
            raise ConfigError("precision 'tf32' needs a CUDA device; use fp32 or bf16 on the CPU")
        if device.type == "cuda":  # process-wide switch: set for every group, both ways
            torch.backends.cuda.matmul.allow_tf32 = first.precision == "tf32"
        ns = n_symbols(first.task, first.modulus)
        X, Y, Z = (torch.from_numpy(a).to(device) for a in make_table(first.task, first.modulus))
        torch.manual_seed(derive_seed(first.seed, 3))  # dropout masks
        runs, inits, ckpts = [], [], []
        for cfg, rd in zip(cfgs, run_dirs):
            run, ckpt = _make_run(cfg, Path(rd) if rd is not None else None, len(X), device, resume)
            runs.append(run)
            ckpts.append(ckpt)
            cfg_e = ModelConfig.from_run_config(cfg, ns)
            inits.append({k: v[0] for k, v in init_params(cfg_e, [derive_seed(cfg.seed, 1)]).items()}
                         if ckpt is None else ckpt["params"])
        params = FlatParams({k: torch.stack([i[k] for i in inits]) for k in inits[0]}, device)
        opt = Optimizer(first.optimizer, params, HyperParams.from_configs(cfgs, device),
                        [c.decay_to_init for c in cfgs])
        for e, ckpt in enumerate(ckpts):
            if ckpt is not None:
                opt.load_state_of(e, {k: v.to(device) for k, v in ckpt["optim"].items()})
                if len(cfgs) == 1:
                    _restore_rng(ckpt["rng"])
        return cls(runs, params, opt, ModelConfig.from_run_config(first, ns), X, Y, Z, list(range(len(cfgs))))

    def _autocast(self):
        bf16 = self.runs[0].cfg.precision == "bf16"
        return torch.autocast(self.X.device.type, dtype=torch.bfloat16, enabled=bf16)

    def evaluate(self) -> list[list[float]]:
        with self._autocast():
            return _evaluate(self.params.views, self.mcfg, self.X, self.Y, self.Z, self.runs, self.opt.current_lr(),
                             self.params.flat).tolist()

    def step(self) -> None:
        with self._autocast():
            _train_step(self.params, self.opt, self.runs, self.mcfg, self.X, self.Y, self.Z, self.mcfg.dropout > 0)
        for r in self.runs:
            r.step += 1

    def retire(self, done: list[int]) -> None:
        """Drop the runs at stack positions ``done``."""
        keep = [e for e in range(len(self.runs)) if e not in done]
        self.runs = [self.runs[e] for e in keep]
        self.order = [self.order[e] for e in keep]
        if self.runs:
            self.params = self.params.select(keep)
            self.opt.params = self.params
            self.opt.select(keep)


def _make_run(cfg: RunConfig, rd: Path | None, n_table: int, device, resume: bool):
    tr, va = split(n_table, cfg.train_fraction, cfg.seed)
    mask = torch.zeros(n_table, dtype=torch.bool)
    mask[tr] = True
    tr = tr.to(device)
    run = _Run(cfg, rd, tr, mask.to(device), Sampler(tr, cfg.resolved_batch_size, derive_seed(cfg.seed, 2)), len(va))
    ckpt = None
    if resume and rd is not None and (rd / "checkpoint.pt").exists():
        ckpt = rundir.load_checkpoint(rd, cfg)
        run.step, run.last_eval = int(ckpt["step"]), int(ckpt["last_eval"])
        run.last_ckpt = run.step
        run.streak_start = None if ckpt["streak_start"] < 0 else int(ckpt["streak_start"])
        run.elapsed_before = float(ckpt["elapsed"])
        run.sampler.load(ckpt["sampler"])
        # rows after the checkpoint were computed by the lost process: they are computed again
        run.history = [r for r in rundir.read_metrics(rd) if r["step"] <= run.last_eval]
    if rd is not None:
        rundir.atomic_write(rd / "metrics.csv", rundir.metrics_csv(run.history))
        rundir.atomic_json(rd / "summary.json", run.summary())
    return run, ckpt


def train_group(cfgs: list[RunConfig], run_dirs: list[Path | None] | None = None, resume: bool = False,
                progress: bool = False, stop_flag=None, on_finish=None) -> list[RunResult]:
    """Train compatible runs (equal ``group_key``) together; returns one RunResult per config, in order.

    ``run_dirs`` (optional, one per config) receive the run-directory files; with ``resume``
    a run whose directory holds a checkpoint continues from it. ``stop_flag()`` returning
    True interrupts all runs (as SIGINT/SIGTERM do); ``on_finish(result)`` is called as
    each run ends.
    """
    g = Group.build(cfgs, list(run_dirs) if run_dirs is not None else [None] * len(cfgs), resume)
    if g.X.device.type == "cpu":
        keep_freed_memory()
    results: dict[int, RunResult] = {}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max(c.steps for c in cfgs), initial=min(r.step for r in g.runs), unit="step",
                   dynamic_ncols=True, smoothing=0.05)
    with _Interrupt() as interrupt:
        while g.runs:
            due = [e for e, r in enumerate(g.runs) if r.eval_due()]
            if due:
                stats = g.evaluate()
                for e in due:
                    r = g.runs[e]
                    r.record(dict(zip(rundir.METRICS, [r.step, *stats[e], round(r.elapsed, 3)])))
                    if r.status == "running" and r.step - r.last_ckpt >= r.cfg.checkpoint_every:
                        _checkpoint(r, e, g.params, g.opt)
                if bar is not None:
                    h = g.runs[0].history[-1]
                    bar.set_postfix_str(f"train {h['train_acc']:.3f} ({h['train_loss']:.2e}) "
                                        f"val {h['val_acc']:.3f} ({h['val_loss']:.2e})", refresh=False)
            if interrupt.hit or (stop_flag is not None and stop_flag()):
                for r in g.runs:
                    r.status = "interrupted"
            done = [e for e, r in enumerate(g.runs) if r.status != "running"]
            for e in done:
                res = results[g.order[e]] = _finish(g.runs[e], e, g.params, g.opt)
                if on_finish is not None:
                    on_finish(res)
            if done:
                g.retire(done)
                if not g.runs:
                    break
            g.step()
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return [results[i] for i in range(len(cfgs))]


def _answer_loss(p, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, weight: torch.Tensor | None,
                 mcfg: ModelConfig, use_full: bool) -> torch.Tensor:
    """The sum over runs of each run's mean loss (so each run's gradient is its own)."""
    if use_full:
        logits = forward(p, tokens(x, y, mcfg.n_symbols), mcfg, train=True)[:, :, -1]
    else:
        logits = forward_answer(p, x, y, mcfg)
    ce = F.cross_entropy(logits.float().flatten(0, 1), z.flatten(), reduction="none").view(z.shape)
    return ce.mean(1).sum() if weight is None else (ce * weight).sum()


@functools.cache
def _compiled_loss():
    return torch.compile(_answer_loss)


def _loss_fn(compile: bool, use_full: bool):
    """The loss function, through torch.compile when asked (the dropout path stays eager: its random masks)."""
    return _compiled_loss() if compile and not use_full else _answer_loss


def _train_step(params: FlatParams, opt: Optimizer, runs: list[_Run], mcfg: ModelConfig, X, Y, Z,
                use_full: bool) -> None:
    """One update of every run: sample, forward, backward, optimizer step. No host synchronization."""
    batches = [r.sampler.next() for r in runs]
    sizes = [len(b) for b in batches]
    if len(set(sizes)) == 1:
        idx = torch.stack(batches)
        weight = None
    else:  # runs with different batch sizes: pad, and weigh each run's examples by 1 / its batch size
        B = max(sizes)
        idx = torch.stack([F.pad(b, (0, B - len(b))) for b in batches])
        weight = torch.stack([(torch.arange(B, device=idx.device) < s).float() / s for s in sizes])
    loss = _loss_fn(runs[0].cfg.compile, use_full)(params.views, X[idx], Y[idx], Z[idx], weight, mcfg, use_full)
    params.grad.zero_()
    loss.backward()
    opt.step()


def train(cfg: RunConfig, out: str | Path | None = None, resume: bool = False, force: bool = False,
          progress: bool = False) -> RunResult:
    """Train one run; with ``out`` write its run directory there (see DESIGN's contract)."""
    if out is not None:
        if resume:
            cfg = rundir.load_config(out)
        else:
            rundir.prepare(Path(out), cfg, force=force)
    return train_group([cfg], [out], resume=resume, progress=progress)[0]
