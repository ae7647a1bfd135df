"""groklab: a lab for grokking (Power et al. 2022) -- see it, reproduce it, sweep it, look inside."""

__version__ = "0.1.0"

from .config import RunConfig  # noqa: E402
from .errors import ConfigError  # noqa: E402

from .rundir import load_model  # noqa: E402  (a run directory's trained model as an nn.Module)
# imported here, not wrapped lazily: importing the submodule groklab.train later (a sweep does) would otherwise
# replace the package's ``train`` function with that module
from .train import train  # noqa: E402  (train one run)

__all__ = ["RunConfig", "ConfigError", "load_model", "train", "__version__"]
