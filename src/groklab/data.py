"""A task's data on the device: the table, each run's training rows and mask, and the batch sampler.

The whole table lives on the device (``TaskTable``); a run's training set is
a set of table rows (``split``), and a batch is a slice of a per-epoch
permutation of those rows, so sampling launches no kernel and never waits
for the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .tasks import make_table, n_symbols, split


@dataclass(frozen=True)
class TaskTable:
    """Every equation of a task as (n,) int64 tensors on the device: operands x, y and answer z."""

    x: torch.Tensor
    y: torch.Tensor
    z: torch.Tensor
    n_symbols: int

    @classmethod
    def build(cls, task: str, modulus: int, device: torch.device) -> "TaskTable":
        x, y, z = (torch.from_numpy(a).to(device) for a in make_table(task, modulus))
        return cls(x, y, z, n_symbols(task, modulus))

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class RunSplit:
    """One run's split of the table: training rows (on the device) and a boolean mask of them."""

    train_rows: torch.Tensor  # (n_train,) sorted table rows
    train_mask: torch.Tensor  # (n_table,) True on the training rows
    n_val: int

    @classmethod
    def build(cls, n_table: int, train_fraction: float, seed: int, device: torch.device) -> "RunSplit":
        tr, va = split(n_table, train_fraction, seed)
        mask = torch.zeros(n_table, dtype=torch.bool)
        mask[tr] = True
        return cls(tr.to(device), mask.to(device), len(va))


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
