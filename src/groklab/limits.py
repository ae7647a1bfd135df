"""Sizes that cannot fit, refused before anything is allocated.

A run's table, its data set and its model are sized by fields that multiply (a modulus squared, parity's
strings times their bits, a width times a depth). Each is estimated from the config alone (no array made) and
compared with this machine's memory; what cannot fit is a one-line ``ConfigError`` naming the field, the size
and the limit, where otherwise NumPy or PyTorch would try to allocate terabytes and end in a traceback.

The estimates are upper bounds measured on the builders (``BYTES_PER_EQUATION``: a table's peak while built
and held as the run's tensors), so a refused config would not have fit; a config that passes may still be
slow, which ``groklab sweep --plan`` says.
"""

from __future__ import annotations

import os

from .errors import ConfigError

# peak bytes per equation while a table is built (NumPy, measured: 34 for x + y, 73 for a custom formula with
# powers) and held as the run's tensors (tokens, answers, masks): a bound, not an average
BYTES_PER_EQUATION = 128
# bytes per parameter per run: the weights, their gradient, Adam's two moments and the initial weights
BYTES_PER_PARAM = 5 * 4


def memory_bytes() -> int:
    """This machine's physical memory (``GROKLAB_MEMORY_BYTES`` overrides it: a cluster node's, or a test's)."""
    if os.environ.get("GROKLAB_MEMORY_BYTES"):
        return int(os.environ["GROKLAB_MEMORY_BYTES"])
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows): no limit known
        return 1 << 62


def human(n: float) -> str:
    """A byte count in binary units (``23.5 GiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}" if n < 1e6 else f"{n:.1e} {unit}"
        n /= 1024
    raise AssertionError


def refuse_over(what: str, nbytes: float) -> None:
    """ConfigError when ``nbytes`` exceed this machine's memory: "``what`` needs about X; this machine has Y"."""
    have = memory_bytes()
    if nbytes > have:
        raise ConfigError(f"{what} needs about {human(nbytes)} of memory; this machine has {human(have)}: "
                          "choose a smaller size")


def check_table(task_id: str, rows: int, nbytes: float, because: str) -> None:
    """A task's table of ``rows`` equations, ``nbytes`` to build and hold, ``because`` the fields that size it."""
    refuse_over(f"task {task_id!r} with {because}: its table of {rows:,} equations", nbytes)


def check_model(what: str, n_params: int, per_example: float, batch: int) -> None:
    """A run's model (``n_params`` with embeddings: weights, gradients, moments) and one batch of ``batch``
    examples' activations (``per_example`` bytes each, kept for the backward pass); ``what`` names the sizes."""
    refuse_over(what, n_params * BYTES_PER_PARAM + per_example * batch)
