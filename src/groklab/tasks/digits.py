"""Omnigrok's non-algorithmic task (Liu et al. 2022): the 1,797 handwritten 8x8 digits scikit-learn ships
(``load_digits``, no download). A vector task: an example's input is its 64 pixel values divided by 16 into
[0, 1]; ``x`` indexes the images, ``y`` is 0 and ``z`` is the digit. Only the MLP reads images.
"""

from __future__ import annotations

from functools import lru_cache

from ..lazy import lazy
from .spec import Table, Task

np = lazy("numpy")

N_IMAGES = 1797  # load_digits's images: the table size, known without loading scikit-learn (listing the tasks)

@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)


def digit_pixels() -> np.ndarray:
    """The 1,797 digit images as (1797, 64) float32 in [0, 1] (scikit-learn's 0-16 values divided by 16)."""
    return _digits()[0]


def _table(params: dict) -> Table:
    labels = _digits()[1]
    x = np.arange(len(labels), dtype=np.int64)
    return x, np.zeros_like(x), labels.copy()


DIGITS = Task("digits", "the digit (0-9) in an 8x8 handwritten image (scikit-learn's load_digits)", False,
              build=_table, symbols=lambda params: 10, size=lambda params: N_IMAGES,
              inputs=lambda params: digit_pixels(), image=True)
