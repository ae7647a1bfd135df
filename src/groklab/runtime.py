"""Process-wide settings, in one place: ``train.train_group`` (every training, whether started by the CLI, a
sweep's worker or Python) calls ``configure``; importing groklab changes nothing in the process (and imports no
PyTorch: ``groklab.lazy``).

- the device (``resolve_device``): ``auto`` is CUDA when PyTorch sees one;
- on Linux CPUs, glibc's malloc keeps freed memory (``keep_freed_memory``);
- on the CPU, PyTorch's thread count (``set_threads``, ``ThreadGovernor``): by default the cores that other
  processes leave free, checked again every few seconds as they come and go, so that two trainings (or a
  training and a test suite) share the cores instead of fighting over them;
- on CUDA, TF32 matmuls when the precision asks for them (PyTorch's switch is process-wide);
- a warning PyTorch gives about the flat gradient buffer's strides, silenced.
"""

from __future__ import annotations

import functools
import os
import time
import warnings
from dataclasses import dataclass

from . import lazy
from .errors import ConfigError

torch = lazy.lazy("torch")


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else the CPU; ``cuda`` without a CUDA device is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for, but PyTorch sees no CUDA device; use --device cpu")
    return torch.device(name)


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc's malloc to reuse freed memory instead of returning it to the OS (Linux CPU training).

    By default every large tensor the step allocates and frees (activations, gradients: 0.1 to
    8 MB) is a fresh ``mmap``, paid for in page faults: about 1,500 per update of the paper
    model, 7 to 12% of the step on a 2-core CPU. The cost is memory the process keeps after
    freeing it. Done once; returns False where it does not apply (not glibc).
    """
    try:
        import ctypes

        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(mallopt(M_MMAP_THRESHOLD, 1 << 30) and mallopt(M_TRIM_THRESHOLD, 1 << 30))


def configure(device: torch.device, precision: str = "fp32") -> None:
    """Set what a training process needs for ``device`` and ``precision`` (idempotent): PyTorch, which groklab
    imports on first use, is in place in every module now (``lazy.load``), before any step is traced or timed."""
    lazy.load("torch")
    if precision == "tf32" and device.type != "cuda":
        raise ConfigError("precision 'tf32' needs a CUDA device; use fp32 or bf16 on the CPU")
    # Gradients are views into one flat buffer; PyTorch warns that such strides are not its
    # preferred layout, but accumulates into them in place all the same (tests check the result).
    warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")
    if device.type == "cpu":
        keep_freed_memory()
    else:  # process-wide switch: set for every group, both ways
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"


# -- threads ------------------------------------------------------------------------------------------------


def usable_cores() -> int:
    """The CPU cores this process may run on (``taskset`` and container CPU sets respected)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parse_threads(text: str | int | None) -> int | None:
    """``--threads``: ``auto`` (None: follow the free cores) or a number of threads >= 1."""
    if text is None or text == "auto":
        return None
    try:
        n = int(text)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise ConfigError(f"threads {text!r} is not allowed; use auto or an integer >= 1")
    return n


@dataclass
class Threads:
    """How many PyTorch CPU threads a training in this process uses: ``fixed`` threads, or (None) as many as the
    cores other processes leave free, at most ``cap`` (default: every usable core)."""

    fixed: int | None = None
    cap: int | None = None


_THREADS = Threads()


def set_threads(fixed: int | None = None, cap: int | None = None) -> None:
    """This process's thread policy for the trainings it runs (the CLI's ``--threads``; a sweep worker's share)."""
    _THREADS.fixed, _THREADS.cap = fixed, cap


def _busy_jiffies(cpus: set[int]) -> tuple[int, int] | None:
    """(busy, total) clock ticks of ``cpus`` since boot, from /proc/stat (None where there is none). Busy counts
    steal time: a hypervisor that runs other machines on our cores takes them as much as a process does."""
    try:
        with open("/proc/stat") as fh:
            lines = [ln.split() for ln in fh if ln.startswith("cpu") and ln[3:4].isdigit()]
    except OSError:
        return None
    busy = total = 0
    for parts in lines:
        if int(parts[0][3:]) in cpus:
            v = [int(x) for x in parts[1:9]]  # user nice system idle iowait irq softirq steal
            total += sum(v)
            busy += sum(v) - v[3] - v[4]
    return (busy, total) if total else None


def _cpus() -> set[int]:
    return os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))


class ThreadGovernor:
    """Keeps PyTorch's CPU threads at the cores other processes leave free (at most ``cap``).

    Every ``every_s`` seconds it reads how busy this process's cores were (/proc/stat) and how much of that was
    this process (its CPU time), and sets ``torch.set_num_threads`` to the rounded rest. Two trainings on two
    cores each settle at one thread (each a core) instead of two threads each spinning while the other's hold the
    cores; a training alone keeps every core. The first reading covers the time since groklab was imported (the
    process's start-up, when that was recent), so a training started beside others takes its share from its
    first update. Changing the thread count does not change results (tested: a run with 1 and 2 threads is
    bitwise the same). ``tick()`` is called once per update and costs a clock read when no check is due.
    """

    def __init__(self, cap: int, every_s: float = 2.0, first_s: float = 0.5):
        self.cap, self.every_s = max(1, cap), every_s
        self.cpus = _cpus()
        self.threads = self.cap
        self.t, self.cpu, self.jiffies = _STARTED
        if time.monotonic() - self.t < max(first_s, 0.2) or time.monotonic() - self.t > 30:
            self._mark()  # no recent start-up to read: a short first window
            self.due = self.t + first_s
        else:
            self.due = 0.0
            self.tick()
        torch.set_num_threads(self.threads)

    def _mark(self) -> None:
        self.t, self.cpu, self.jiffies = time.monotonic(), _process_cpu(), _busy_jiffies(self.cpus)

    def free_cores(self) -> float | None:
        """The cores other processes left free since the last mark (None when /proc/stat cannot say)."""
        before_t, before_cpu, before = self.t, self.cpu, self.jiffies
        self._mark()
        if before is None or self.jiffies is None or self.jiffies[1] <= before[1]:
            return None
        n = len(self.cpus)
        busy = n * (self.jiffies[0] - before[0]) / (self.jiffies[1] - before[1])
        mine = (self.cpu - before_cpu) / max(self.t - before_t, 1e-6)
        return n - max(0.0, busy - mine)

    def tick(self) -> None:
        """Every 2 seconds, give up a thread or take one back from how busy the other processes keep the cores."""
        if time.monotonic() < self.due:
            return
        free = self.free_cores()
        self.due = self.t + self.every_s
        if free is None:
            return
        # hysteresis: a thread is given up when more than half a core of it is taken (free < 1.5 for 2), and
        # taken back only when most of a core is free again (free >= 1.75): background noise (the hypervisor's
        # steal time, a daemon) does not cost a lone training its second core, and two trainings do not take
        # turns grabbing a core the other needs
        down, up = max(1, int(free + 0.5)), max(1, int(free + 0.25))
        want = min(self.cap, down if down < self.threads else max(up, self.threads))
        if want != self.threads:
            self.threads = want
            torch.set_num_threads(want)


class _Fixed:
    """A thread count that does not move (``--threads N``, CUDA, Ray tasks, or where /proc/stat is missing)."""

    def __init__(self, n: int | None):
        if n is not None:
            torch.set_num_threads(n)

    def tick(self) -> None:
        return None


def _process_cpu() -> float:
    t = os.times()
    return t.user + t.system


# when groklab was imported: the start of the first reading of a ThreadGovernor (time, own CPU time, ticks)
_STARTED = (time.monotonic(), _process_cpu(), _busy_jiffies(_cpus()))


def thread_governor(device: torch.device):
    """What keeps this process's thread count for a training on ``device``: its fixed count, or on a Linux CPU a
    ``ThreadGovernor`` over the free cores (``tick()`` once per update)."""
    cap = _THREADS.cap or usable_cores()
    if device.type != "cpu" or _THREADS.fixed is not None:
        return _Fixed(_THREADS.fixed if device.type == "cpu" else None)
    if _busy_jiffies({0} | set(range(os.cpu_count() or 1))) is None:
        return _Fixed(cap)
    return ThreadGovernor(cap)
