"""groklab: a lab for grokking (Power et al. 2022) -- see it, reproduce it, sweep it, look inside."""

__version__ = "0.1.0"

from .config import RunConfig  # noqa: E402
from .errors import ConfigError  # noqa: E402

__all__ = ["RunConfig", "ConfigError", "load_model", "train", "__version__"]


def train(config, out=None, **kwargs):
    """Train one run (see ``groklab.train.train``)."""
    from .train import train as _train

    return _train(config, out, **kwargs)


def load_model(run_dir):
    """A run directory's trained model as an ``nn.Module`` (see ``groklab.rundir.load_model``)."""
    from .rundir import load_model as _load_model

    return _load_model(run_dir)
