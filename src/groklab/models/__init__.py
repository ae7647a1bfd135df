"""Models by name (``MODELS``): what the engine, checkpoints and the analyses read.

A model is a few pure functions over a parameter dict whose tensors carry a leading ensemble axis ``E`` (built
from ``stacked``'s blocks), and a ``ModelSpec`` (``models.spec``) that names them, its settings and what it offers
(its embedding, unembedding and hidden matrices). Adding one is a module in this package, or in a plugin package
(entry points of group ``groklab.models``), holding its ``ModelSpec``; the ``RunConfig.model`` choice, its flags,
stacking, checkpoints and ``load_model`` follow.

``Model`` wraps one trained model's parameters as an ``nn.Module`` for analysis::

    from groklab.rundir import load_model
    model = load_model("runs/my-run")
    logits, cache = model.run_with_cache(tokens)   # cache["blocks.0.attn.pattern"]
    model["W_E"], model["blocks.0.attn.W_Q"]       # TransformerLens names and shapes
"""

from __future__ import annotations

import importlib

from ..registry import Registry
from .spec import ModelSpec
from .stacked import ParamInit

MODELS: Registry[ModelSpec] = Registry("model", ModelSpec, __name__, "groklab.models", selector="model",
                                       first=("transformer", "mlp"), skip=("stacked", "module"))

# names served from the modules that define them, imported when asked for (``Model`` is an nn.Module: torch)
_ELSEWHERE = {"Model": "module", "Transformer": "module", "TransformerConfig": "transformer", "MLPConfig": "mlp"}

__all__ = ["MODELS", "MLPConfig", "Model", "ModelSpec", "ParamInit", "Transformer", "TransformerConfig", "get_model"]


def get_model(name: str) -> ModelSpec:
    """The registered model of that name; an unknown name is refused in one line with a did-you-mean."""
    return MODELS[name]


def __getattr__(name: str):
    if name in _ELSEWHERE:
        return getattr(importlib.import_module(f"{__name__}.{_ELSEWHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
