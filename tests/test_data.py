"""A task's data (``groklab.data``): the token layout, seeded splits, label noise, the batch sampler."""

import numpy as np
import pytest
import torch

from groklab import RunConfig
from groklab.data import RunSplit, Sampler, TaskTable, TokenLayout, corrupt_answers, split, tokens
from groklab.engine import Group
from groklab.errors import ConfigError
from groklab.tasks import make_table, n_examples, split_sizes


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.9])
def test_split_sizes_and_disjointness(fraction):
    n = n_examples("add", 17)
    tr, va = split(n, fraction, seed=3)
    assert len(tr) == round(fraction * n) and len(tr) + len(va) == n
    assert set(tr.tolist()).isdisjoint(va.tolist())
    assert sorted(tr.tolist() + va.tolist()) == list(range(n))


def test_split_depends_on_seed_only():
    a, _ = split(100, 0.5, seed=1)
    b, _ = split(100, 0.5, seed=1)
    c, _ = split(100, 0.5, seed=2)
    assert a.equal(b) and not a.equal(c)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5, 0.001])
def test_split_rejects_fractions_that_leave_a_side_empty(fraction):
    with pytest.raises(ConfigError, match="train_fraction"):
        split_sizes(49, fraction)


def test_tokens_are_x_op_y_eq():
    t = tokens(torch.tensor([3]), torch.tensor([5]), 7)
    assert t.tolist() == [[3, 7, 5, 8]]
    assert np.all(make_table("add", 7)[2] < 7)


@pytest.mark.parametrize("task,modulus", [("add", 23), ("s5_conj", None)])
def test_label_noise_corrupts_exactly_the_stated_fraction_of_training_answers_never_validation(task, modulus):
    cfg = RunConfig(task=task, train_fraction=0.3, label_noise=0.25, d_model=32, d_mlp=64, steps=10,
                    **({"modulus": modulus} if modulus else {}))  # a group has no modulus
    g = Group.build([cfg, cfg.replace(label_noise=0.0, seed=1)])
    table, split = g.table, g.members[0].split
    n_train = len(split.train_rows)
    wrong = (split.answers != table.z).nonzero().flatten()
    assert len(wrong) == round(0.25 * n_train) and torch.equal(wrong, split.corrupted)
    assert bool(split.train_mask[wrong].all())  # only training rows, so validation answers are the table's
    assert int(split.answers.max()) < table.n_symbols and int(split.answers.min()) >= 0
    assert g.members[1].split.answers is None
    # fixed per seed: the same rows and answers again; another seed corrupts other rows
    again = Group.build([cfg]).members[0].split
    assert torch.equal(again.answers, split.answers)
    other = Group.build([cfg.replace(seed=2)]).members[0].split
    assert not torch.equal(other.corrupted, split.corrupted)
    # evaluation: validation against the true answers (equal to a clean run's), training against the trained ones
    clean = Group.build([cfg.replace(label_noise=0.0)]).evaluate()[0]
    noisy = g.evaluate()[0]
    assert noisy["val_acc"] == clean["val_acc"] and noisy["val_loss"] == clean["val_loss"]
    assert noisy["train_loss"] != clean["train_loss"]


def test_uniform_wrong_answers():
    t = TaskTable.build("add", 23, torch.device("cpu"))
    rows = torch.arange(len(t))
    answers, chosen = corrupt_answers(t.z, rows, 0.9, t.n_symbols, seed=0)
    shift = (answers[chosen] - t.z[chosen]) % 23
    assert shift.min() >= 1 and len(shift.unique()) == 22  # every wrong answer is drawn, the true one never


def test_a_digits_split_is_seeded():
    table = TaskTable.build("digits", 97, torch.device("cpu"))
    a, b, c = (RunSplit.build(table, 0.3, s) for s in (0, 0, 1))
    assert torch.equal(a.train_mask, b.train_mask) and not torch.equal(a.train_mask, c.train_mask)
    assert int(a.train_mask.sum()) == round(0.3 * 1797)


def test_the_layout_is_x_op_y_eq_with_two_tokens_past_the_symbols():
    lay = TokenLayout(7)
    assert (lay.op_token, lay.eq_token, lay.d_vocab, lay.SEQ_LEN) == (7, 8, 9, 4)


def test_the_sampler_draws_each_epoch_without_replacement_and_resumes_from_its_state():
    rows = torch.arange(100, 130)
    a = Sampler(rows, 7, seed=5)
    epoch = torch.cat([a.next() for _ in range(4)])  # 4 x 7 of 30: the last partial batch is dropped
    assert len(set(epoch.tolist())) == 28 and set(epoch.tolist()) <= set(rows.tolist())
    state = a.state()
    after = [a.next() for _ in range(6)]  # into the next epoch, a new permutation
    b = Sampler(rows, 7, seed=99)
    b.load(state)
    assert all(torch.equal(x, b.next()) for x in after)
    assert sorted(Sampler(rows, 64, seed=2).next().tolist()) == rows.tolist()  # a full batch: every row
