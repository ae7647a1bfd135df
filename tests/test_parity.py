"""k-sparse parity (Barak et al. 2022): bit strings and relevant bits drawn from the seed, read as a vector by the
MLP and as tokens by the transformer."""

import numpy as np
import pytest

from groklab import RunConfig, rundir
from groklab.errors import ConfigError
from groklab.tasks import make_table, table_csv, task_inputs
from groklab.tasks.parity import parity_data
from groklab.train import train


def test_labels_are_the_parity_of_the_relevant_bits_drawn_from_the_seed():
    bits, relevant = parity_data(12, 3, 500, 7)
    x, y, z = make_table("parity", n_bits=12, parity_k=3, n_examples=500, seed=7)
    assert bits.shape == (500, 12) and len(relevant) == 3 and len(set(relevant.tolist())) == 3
    assert np.array_equal(z, bits[:, relevant].sum(1) % 2) and np.all(y == 0) and np.array_equal(x, np.arange(500))
    assert len({r.tobytes() for r in bits}) == 500  # distinct: no string on both sides of a split
    other, other_rel = parity_data(12, 3, 500, 8)
    assert not np.array_equal(other, bits)
    inputs = task_inputs("parity", n_bits=12, parity_k=3, n_examples=500, seed=7)
    assert inputs.dtype == np.float32 and np.array_equal(inputs, bits)
    rows = table_csv("parity", n_bits=12, parity_k=3, n_examples=500, seed=7).splitlines()
    assert rows[0] == "x,relevant bits " + " ".join(map(str, relevant)) + ",z"  # tasks show names the relevant bits
    assert rows[1] == "".join(map(str, bits[0])) + "," + "".join(str(bits[0][i]) for i in relevant) + "," + str(z[0])


@pytest.mark.parametrize("fields, message", [
    ({"parity_k": 5, "n_bits": 4}, "parity_k 5 is not allowed"),
    ({"n_bits": 3, "n_examples": 9}, "n_examples 9 is not allowed; from 2 to the 8 distinct strings"),
    ({"n_bits": 2000}, "n_bits 2000 is not allowed"),
])
def test_impossible_parity_settings_are_refused(fields, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(task="parity", model="mlp", **fields)


def test_parity_runs_of_different_seeds_do_not_stack():
    from groklab.engine import GroupSpec

    a, b = (RunConfig(task="parity", model="mlp", n_bits=10, n_examples=200, seed=s) for s in (0, 1))
    assert GroupSpec.key(a) != GroupSpec.key(b)
    with pytest.raises(ConfigError, match="must share seed"):
        GroupSpec.of([a, b])


def test_the_transformer_reads_the_bits_as_tokens_and_resumes_bitwise(tmp_path):
    from helpers import train_interrupted

    cfg = RunConfig(task="parity", n_bits=8, parity_k=2, n_examples=200, d_model=32, n_heads=2, d_mlp=64, steps=60,
                    early_stop=False, checkpoint_every=20)
    whole = train(cfg, tmp_path / "whole")
    assert whole.summary["n_params"] == sum(np.prod(s.shape) for s in
                                            rundir.load_model(tmp_path / "whole").state().values())
    assert rundir.load_model(tmp_path / "whole")["W_pos"].shape == (9, 32)  # 8 bits and "="
    train_interrupted(cfg, tmp_path / "cut", after=30)
    train(cfg, tmp_path / "cut", resume=True)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]  # noqa: E731
    assert strip(rundir.read_metrics(tmp_path / "cut")) == strip(rundir.read_metrics(tmp_path / "whole"))


def test_a_tiny_parity_run_memorizes_then_generalizes():
    """3 relevant bits among 12, 300 strings to train on: the MLP fits them, and only later finds the parity."""
    r = train(RunConfig(task="parity", model="mlp", n_bits=12, parity_k=3, n_examples=600, d_mlp=128, lr=3e-3,
                        steps=3000, stop_patience=100))
    s = r.summary
    assert s["status"] == "generalized" and s["step_train_acc_99"] < s["step_val_acc_99"]
    at_memorization = next(h for h in r.history if h["step"] == s["step_train_acc_99"])
    assert at_memorization["val_acc"] < 0.8  # it had memorized, not generalized
