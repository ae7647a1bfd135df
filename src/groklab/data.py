"""A task's data on the device: the token layout, the table, each run's split, training rows and mask, and the
batch sampler.

The whole table lives on the device (``TaskTable``); a run's training set is
a set of table rows (``split``), and a batch is a slice of a per-epoch
permutation of those rows, so sampling launches no kernel and never waits
for the device. With label noise a run trains on its own copy of the answers,
a fixed set of its training rows answered wrongly (``corrupt_answers``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from .lazy import lazy
from .tasks import Shape, make_table, n_symbols, split_sizes, task_inputs

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

SEED_INIT, SEED_BATCHES, SEED_NOISE, SEED_LABELS = 1, 2, 3, 4


@dataclass(frozen=True)
class TokenLayout:
    """The sequence ``x op y =`` of a task with ``n_symbols`` symbols: its positions and token ids.

    Symbol ``i`` is token ``i``; the operator is token ``n_symbols`` and ``=`` is ``n_symbols + 1``.
    Models read the layout from here (never a copy of it).

        >>> TokenLayout(7).tokens(torch.tensor([3]), torch.tensor([5])).tolist()
        [[3, 7, 5, 8]]
    """

    n_symbols: int
    X: ClassVar[int] = 0  # positions in the sequence
    OP: ClassVar[int] = 1
    Y: ClassVar[int] = 2
    EQ: ClassVar[int] = 3
    SEQ_LEN: ClassVar[int] = 4

    @property
    def op_token(self) -> int:
        """The token of the operator, after the symbols."""
        return self.n_symbols

    @property
    def eq_token(self) -> int:
        """The token of ``=``, after the operator."""
        return self.n_symbols + 1

    @property
    def d_vocab(self) -> int:
        """The vocabulary size: the symbols, the operator and ``=``."""
        return self.n_symbols + 2

    def tokens(self, x: Tensor, y: Tensor) -> Tensor:
        """Operands ``x, y`` (...,) -> sequences (..., 4)."""
        op = torch.full_like(x, self.op_token)
        return torch.stack([x, op, y, torch.full_like(x, self.eq_token)], dim=-1)


def tokens(x: Tensor, y: Tensor, n_sym: int) -> Tensor:
    """Sequences ``x op y =``: (batch,) operands -> (batch, 4) tokens (see ``TokenLayout``)."""
    return TokenLayout(n_sym).tokens(x, y)


def split(n: int, train_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """A random split of ``n`` equations: (train indices, validation indices), sorted, disjoint.

    Drawn from its own generator seeded by ``seed``, so it never depends on global RNG state.
    """
    n_train, _ = split_sizes(n, train_fraction)
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=gen)
    return perm[:n_train].sort().values, perm[n_train:].sort().values


def derive_seed(seed: int, stream: int) -> int:
    """Independent seeds for the independent random streams of one run (init, batches, noise, labels)."""
    return (seed * 1_000_003 + stream * 7_919) % (2**63 - 1)


def corrupt_answers(answers: Tensor, train_rows: Tensor, fraction: float, n_symbols: int,
                    seed: int) -> tuple[Tensor, Tensor]:
    """Label noise: ``round(fraction * n_train)`` training rows, chosen by ``seed``, get a wrong answer drawn
    uniformly from the ``n_symbols - 1`` others. Returns (the answers with those rows changed, the rows).

    Only training rows change, so validation stays clean; the same seed always corrupts the same rows
    the same way (a CPU generator: the same on every device).
    """
    gen = torch.Generator().manual_seed(derive_seed(seed, SEED_LABELS))
    rows_cpu = train_rows.cpu()
    k = int(round(fraction * len(rows_cpu)))
    chosen = rows_cpu[torch.randperm(len(rows_cpu), generator=gen)[:k]].sort().values
    shift = torch.randint(1, n_symbols, (k,), generator=gen)  # a nonzero shift: never the true answer
    out = answers.cpu().clone()
    out[chosen] = (out[chosen] + shift) % n_symbols
    return out.to(answers.device), chosen.to(answers.device)


@dataclass(frozen=True)
class TaskTable:
    """Every equation of a task as (n,) int64 tensors on the device: operands x, y and answer z; for a vector
    task (digits, parity) also each example's input vector, ``inputs`` (n, F) float32."""

    x: Tensor
    y: Tensor
    z: Tensor
    n_symbols: int
    inputs: Tensor | None = None

    @classmethod
    def build(cls, task: str, modulus: int, device: torch.device, **params) -> "TaskTable":
        """``params``: the task's own fields (``tasks.params_of``), for the tasks whose table depends on them."""
        x, y, z = (torch.from_numpy(a).to(device) for a in make_table(task, modulus, **params))
        inputs = task_inputs(task, modulus, **params)
        return cls(x, y, z, n_symbols(task, modulus, **params),
                   None if inputs is None else torch.from_numpy(inputs).to(device))

    def __len__(self) -> int:
        return len(self.x)

    @property
    def shape(self) -> Shape:
        """The table's shape as the models see it: its symbols and its input width (0 for tokens)."""
        return Shape(self.n_symbols, 0 if self.inputs is None else self.inputs.shape[1])

    def operands(self, rows: Tensor) -> Tensor:
        """What a model reads as ``x`` for table rows ``rows`` (any shape): the operand symbols, or a vector
        task's input vectors (rows.shape + (F,))."""
        return self.x[rows] if self.inputs is None else self.inputs[rows]


@dataclass(frozen=True)
class RunSplit:
    """One run's split of the table: training rows (on the device), a boolean mask of them, and, with label
    noise, the answers it trains on (``answers``; None: the table's own) and the rows made wrong."""

    train_rows: Tensor  # (n_train,) sorted table rows
    train_mask: Tensor  # (n_table,) True on the training rows
    n_val: int
    answers: Tensor | None = None  # (n_table,) the table's answers, some training rows made wrong
    corrupted: Tensor | None = None  # (k,) the table rows whose answer was replaced

    @classmethod
    def build(cls, table: TaskTable, train_fraction: float, seed: int, label_noise: float = 0.0) -> "RunSplit":
        """A run's split of the table: ``train_fraction`` of the rows by ``seed``, with ``label_noise`` of the
        training answers replaced."""
        tr, va = split(len(table), train_fraction, seed)
        mask = torch.zeros(len(table), dtype=torch.bool)
        mask[tr] = True
        device = table.x.device
        answers = corrupted = None
        if label_noise > 0:
            answers, corrupted = corrupt_answers(table.z, tr, label_noise, table.n_symbols, seed)
        return cls(tr.to(device), mask.to(device), len(va), answers, corrupted)


class Sampler:
    """Minibatches without replacement: a fresh permutation of the training set each epoch (last partial batch dropped).

    ``rows`` (on the device) are the training set's table rows; ``next`` returns the rows of
    the next batch. The permutation is drawn on the CPU (the same batches on every device),
    and once per epoch it is copied to the device (asynchronously from pinned memory on
    CUDA) and mapped to rows: a batch is then a slice, and ``next`` launches no kernel and
    never waits for the device.
    """

    def __init__(self, rows: Tensor, batch_size: int, seed: int):
        self.rows, self.n, self.batch_size = rows, len(rows), batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self._set_perm(torch.randperm(self.n, generator=self.gen), 0)

    def _set_perm(self, perm: Tensor, cursor: int) -> None:
        self.perm, self.cursor = perm, cursor
        if self.rows.device.type == "cuda":
            self._epoch = self.rows[perm.pin_memory().to(self.rows.device, non_blocking=True)]
        else:
            self._epoch = self.rows[perm]

    def next(self) -> Tensor:
        """The table rows of the next batch, on the device."""
        if self.batch_size >= self.n:
            return self._epoch  # full batch: order does not matter
        if self.cursor + self.batch_size > self.n:
            self._set_perm(torch.randperm(self.n, generator=self.gen), 0)
        out = self._epoch[self.cursor: self.cursor + self.batch_size]
        self.cursor += self.batch_size
        return out

    def state(self) -> dict:
        """The sampler's state for a checkpoint: its generator, its permutation and its place in it."""
        return {"gen": self.gen.get_state(), "perm": self.perm.clone(), "cursor": self.cursor}

    def load(self, state: dict) -> None:
        """Continue from a checkpoint's ``state``."""
        self.gen.set_state(state["gen"])
        self._set_perm(state["perm"], int(state["cursor"]))
