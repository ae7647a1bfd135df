"""Beyond algorithms: scikit-learn's handwritten digits as a task (Omnigrok on real data, no download)."""

import numpy as np
import pytest

from groklab import RunConfig, train
from groklab.analysis.progress import applicable
from groklab.errors import ConfigError
from groklab.tasks import make_table, n_examples, n_symbols
from groklab.tasks.digits import digit_pixels


def test_the_digits_table_is_every_image_with_its_label_and_pixels_scaled_to_0_1():
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y, z = make_table("digits")
    assert n_examples("digits") == len(x) == 1797 and n_symbols("digits", 97) == 10
    assert np.array_equal(z, d.target) and np.all(y == 0)
    px = digit_pixels()
    assert px.shape == (1797, 64) and px.dtype == np.float32
    assert np.allclose(px * 16, d.data) and px.min() == 0.0 and px.max() == 1.0


def test_a_tiny_mlp_memorizes_its_training_images():
    cfg = RunConfig(task="digits", model="mlp", n_layers=1, d_mlp=64, train_fraction=0.1, lr=3e-3,
                    weight_decay=0.0, steps=300, early_stop=False, batch_size="full")
    result = train(cfg)
    last = result.history[-1]
    assert last["train_acc"] == 1.0 and last["val_acc"] > 0.6  # 180 images: memorized, and it already sees digits
    assert result.summary["n_params"] == 64 * 64 + 64 + 64 * 10 + 10


def test_only_the_mlp_reads_images_and_the_symbol_analyses_do_not_apply():
    with pytest.raises(ConfigError, match="reads images, which the transformer does not; use model 'mlp'"):
        RunConfig(task="digits")
    names = {a.name for a in applicable(RunConfig(task="digits", model="mlp"))}
    assert "embeddings" not in names and "fourier" not in names and "sharpness" in names
