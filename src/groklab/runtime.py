"""Process-wide settings, in one place: ``train.train_group`` (every training, whether started by the CLI, a
sweep's worker or Python) calls ``configure``; importing groklab changes nothing in the process.

- the device (``resolve_device``): ``auto`` is CUDA when PyTorch sees one;
- on Linux CPUs, glibc's malloc keeps freed memory (``keep_freed_memory``);
- on CUDA, TF32 matmuls when the precision asks for them (PyTorch's switch is process-wide);
- a warning PyTorch gives about the flat gradient buffer's strides, silenced.
"""

from __future__ import annotations

import functools
import warnings

import torch

from .errors import ConfigError


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
    """Set what a training process needs for ``device`` and ``precision`` (idempotent)."""
    if precision == "tf32" and device.type != "cuda":
        raise ConfigError("precision 'tf32' needs a CUDA device; use fp32 or bf16 on the CPU")
    # Gradients are views into one flat buffer; PyTorch warns that such strides are not its
    # preferred layout, but accumulates into them in place all the same (tests check the result).
    warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")
    if device.type == "cpu":
        keep_freed_memory()
    else:  # process-wide switch: set for every group, both ways
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
