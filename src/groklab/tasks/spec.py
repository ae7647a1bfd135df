"""What a task is: ``Task``, one table of equations ``x op y = z`` and everything about it, and the helpers the
task modules share.

A task module (``tasks/modular.py``, a plugin's file) holds one or more ``Task`` objects at its top level; the
registry (``groklab.tasks.TASKS``) finds them. A task whose table depends on more than the modulus declares
those settings as ``fields`` (``fields.Field``: RunConfig fields only it reads, with their defaults and help)
and takes them in ``params`` (the modulus, its fields and the other RunConfig fields it ``reads``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

from ..fields import Field
from ..lazy import lazy

np = lazy("numpy")

Table = tuple  # (x, y, z): three int64 arrays of one length, a row per equation


class Shape(NamedTuple):
    """What a model's size depends on besides its own fields: the symbols it embeds and answers with, and (a
    vector task) the length of each example's input vector."""

    n_symbols: int
    n_inputs: int = 0


@dataclass(frozen=True)
class Task:
    """One task: its table of equations ``x op y = z``, how its symbols are written and what it offers analyses.

    The paper's operations are ``fn(x, y, p)`` over the pairs of residues (``modular``: the modulus applies). A
    table that depends on more than the modulus comes from ``build(params) -> (x, y, z)``, with
    ``symbols(params)`` its symbol count and ``size(params)`` its table size (default: the built table's);
    ``footprint(params)``: the bytes its table takes to build and hold, at most (default: ``limits``'
    ``BYTES_PER_EQUATION`` per equation, every pair of symbols counted), so that a size that cannot fit is
    refused before it is built;
    ``check(params)`` refuses what does not suit it (ConfigError). ``params`` holds ``modulus``, the task's
    ``fields`` (its own settings) and the RunConfig fields it ``reads`` (parity's ``seed``).

    How it is shown: ``equation`` (the task list), ``describe(params)`` (its equation with its fields filled in,
    for titles: ``x . y in D6``), ``symbol_name(params, symbol)`` (a group element, a permutation),
    ``labels(params)`` (colourings of its symbols for pictures of the embeddings: name -> one value per symbol),
    ``canonical(params)`` (its fields' canonical spellings, which the run identity hashes).

    What it offers analyses (``groklab.analysis``): ``linear(params)`` (a, b) when z = a x + b y mod p (additive
    Fourier's restricted and excluded losses); ``monomial(params)`` (a, b) when z = x^a y^b mod a prime
    (multiplicative Fourier); ``group(params)`` (group id, operation) when its symbols are a group's elements
    (irreducible representations). A vector task gives ``inputs(params)`` (each example's input vector, (n, F)
    float32; ``x`` indexes the examples, ``y`` is 0); ``image``: the vector is an image, which only the MLP
    reads; ``sequence``: the transformer reads it as tokens (parity's bits); ``relevant(params)``: the input
    positions that decide the answer (parity's relevant bits), which ``groklab tasks show`` prints.
    """

    name: str
    equation: str
    modular: bool  # the symbols are the residues mod p (the modulus applies)
    needs_prime: bool = False
    y_nonzero: bool = False  # the operand y ranges over 1..p-1
    fn: Callable[[np.ndarray, np.ndarray, int], np.ndarray] | None = None
    fields: tuple[Field, ...] = ()
    reads: tuple[str, ...] = ()
    build: Callable[[dict], Table] | None = None
    symbols: Callable[[dict], int] | None = None
    size: Callable[[dict], int] | None = None
    footprint: Callable[[dict], int] | None = None
    check: Callable[[dict], None] | None = None
    describe: Callable[[dict], str] | None = None
    symbol_name: Callable[[dict, int], str] | None = None
    labels: Callable[[dict], dict[str, list]] | None = None
    canonical: Callable[[dict], dict] | None = None
    linear: Callable[[dict], tuple[int, int] | None] | None = None
    monomial: Callable[[dict], tuple[int, int] | None] | None = None
    group: Callable[[dict], tuple[str, str] | None] | None = None
    inputs: Callable[[dict], np.ndarray] | None = None
    image: bool = False
    sequence: bool = False
    relevant: Callable[[dict], list[int]] | None = None
    doc: str = ""

    @property
    def id(self) -> str:
        """The task's id, its name in the registry (``--task ID``)."""
        return self.name

    @property
    def params(self) -> tuple[str, ...]:
        """The RunConfig fields besides the modulus its table depends on: its own and those it reads."""
        return tuple(f.name for f in self.fields) + self.reads

    @property
    def vector(self) -> bool:
        """Whether the network reads an input vector per example (digits, parity's MLP) rather than tokens."""
        return self.inputs is not None


def is_prime(n: int) -> bool:
    """Whether ``n`` is a prime."""
    if n < 2:
        return False
    return all(n % d for d in range(2, int(n**0.5) + 1))


def pairs(n: int, y_from: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (x, y) with 0 <= x < n and y_from <= y < n, row-major in (x, y): two int64 arrays."""
    xs = np.arange(n, dtype=np.int64)
    x, y = (a.ravel() for a in np.meshgrid(xs, xs[y_from:], indexing="ij"))
    return x, y
