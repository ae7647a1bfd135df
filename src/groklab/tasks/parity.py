"""k-sparse parity (Barak et al. 2022): ``--task parity --n-bits 40 --parity-k 3``: the answer is the parity of k
fixed bits (drawn from the seed) of a random string of n bits; ``n_examples`` distinct strings are drawn from the
seed too. A vector task: an example's input is its bit string, which the MLP reads as a vector and the
transformer as tokens then ``=``.
"""

from __future__ import annotations

from functools import lru_cache

from ..errors import ConfigError
from ..fields import Field
from ..lazy import lazy
from .spec import Table, Task

np = lazy("numpy")

MAX_BITS = 1024
N_BITS = Field("n_bits", 40, "task parity: bits per string", min=1)
PARITY_K = Field("parity_k", 3, "task parity: the answer is the parity of this many fixed bits (drawn from the seed)",
                 min=1)
N_EXAMPLES = Field("n_examples", 2000, "task parity: bit strings drawn from the seed (train_fraction of them to "
                   "train on)", min=2)


@lru_cache(maxsize=8)
def parity_data(n_bits: int, parity_k: int, n_examples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_examples`` distinct bit strings of ``n_bits`` bits, (M, N) uint8, and the ``parity_k`` relevant bits,
    (K,) sorted: all drawn from ``seed`` (a generator of its own: the same on every machine)."""
    rng = np.random.default_rng([seed, 0x9A817])
    relevant = np.sort(rng.choice(n_bits, size=parity_k, replace=False))
    seen, rows = set(), []
    while len(rows) < n_examples:  # distinct strings: a string in both splits would leak its answer
        for r in rng.integers(0, 2, size=(n_examples - len(rows), n_bits), dtype=np.uint8):
            key = r.tobytes()
            if key not in seen:
                seen.add(key)
                rows.append(r)
    return np.stack(rows), relevant


def parity_labels(bits: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """The parity of the relevant bits of each string: (M,) int64 in {0, 1}."""
    return (bits[:, relevant].sum(1) % 2).astype(np.int64)


def _data(params: dict) -> tuple[np.ndarray, np.ndarray]:
    return parity_data(params["n_bits"], params["parity_k"], params["n_examples"], params.get("seed", 0))


def _table(params: dict) -> Table:
    bits, relevant = _data(params)
    x = np.arange(len(bits), dtype=np.int64)
    return x, np.zeros_like(x), parity_labels(bits, relevant)


def _check(params: dict) -> None:
    n, k, m = params["n_bits"], params["parity_k"], params["n_examples"]
    if not 1 <= n <= MAX_BITS:
        raise ConfigError(f"n_bits {n} is not allowed; from 1 to {MAX_BITS}")
    if not 1 <= k <= n:
        raise ConfigError(f"parity_k {k} is not allowed; the parity of 1 to n_bits ({n}) bits")
    if m < 2 or (n < 63 and m > 2 ** n):
        raise ConfigError(f"n_examples {m} is not allowed; from 2 to the {2 ** min(n, 62):,} distinct strings of "
                          f"{n} bits")


def _describe(params: dict) -> str:
    if not params.get("n_bits"):
        return PARITY.equation
    return f"parity of {params.get('parity_k')} of {params['n_bits']} bits"


PARITY = Task("parity", "the parity of k fixed bits among n random bits (--n-bits, --parity-k, --n-examples)", False,
              fields=(N_BITS, PARITY_K, N_EXAMPLES), reads=("seed",), build=_table, symbols=lambda ps: 2,
              size=lambda ps: ps["n_examples"], footprint=lambda ps: ps["n_examples"] * (8 * ps["n_bits"] + 512),
              symbol_name=lambda ps, s: str(s), check=_check, describe=_describe,
              inputs=lambda ps: _data(ps)[0].astype(np.float32), sequence=True,
              relevant=lambda ps: [int(b) for b in _data(ps)[1]])
