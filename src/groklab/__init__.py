"""groklab: a lab for grokking (Power et al. 2022) -- see it, reproduce it, sweep it, look inside."""

from ._version import __version__
from .config import RunConfig
from .errors import ConfigError
from .rundir import load_model  # a run directory's trained model as an nn.Module

# imported here, not wrapped lazily: importing the submodule groklab.train later (a sweep does) would otherwise
# replace the package's ``train`` function with that module
from .train import train  # train one run

__all__ = ["RunConfig", "ConfigError", "load_model", "train", "__version__"]
