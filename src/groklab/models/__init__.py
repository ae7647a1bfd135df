"""Models as plug-ins: a registry ``name -> ModelSpec`` that the engine, checkpoints and analysis read.

A model is a few pure functions over a parameter dict whose tensors carry a
leading ensemble axis ``E`` (see ``stacked``), and a frozen config dataclass
whose fields (besides ``n_symbols``) are ``RunConfig`` fields. Adding one is a
module with those functions and one ``register(ModelSpec(...))`` line below;
the ``RunConfig.model`` choice, stacking, checkpoints and ``load_model`` follow.

``Model`` wraps one trained model's parameters as an ``nn.Module`` for analysis::

    from groklab.rundir import load_model
    model = load_model("runs/my-run")
    logits, cache = model.run_with_cache(tokens)   # cache["blocks.0.attn.pattern"]
    model["W_E"], model["blocks.0.attn.W_Q"]       # TransformerLens names and shapes
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from torch import Tensor, nn

from ..errors import ConfigError
from ..tasks import Shape
from . import mlp, transformer
from .mlp import MLPConfig
from .stacked import Params, ParamInit, count, init_member, stack
from .transformer import TransformerConfig


def _no_check(cfg) -> None:
    return None


SHAPE_FIELDS = ("n_symbols", "n_inputs")  # what a model config takes from the task (tasks.Shape), not a RunConfig


@dataclass(frozen=True)
class ModelSpec:
    """One model kind, as the engine sees it.

    - ``config_type``: frozen dataclass ``(n_symbols, <RunConfig fields it reads>)``, and ``n_inputs`` if it
      reads vector tasks (``tasks.Shape``: what it takes from the task);
    - ``param_shapes(mcfg)``: name -> ``ParamInit``, in initialization order;
    - ``answer_logits(params, x, y, mcfg, drop=None, prepared=None)``: x, y (E, N) -> logits
      (E, N, n_symbols), what training and evaluation use (a vector task's x: its input vectors, (E, N, F)); ``drop`` is residual dropout
      (``stacked.Dropout``) or None; ``prepared`` what ``prepare`` returned for these parameters;
    - ``prepare(params, mcfg)``: the part of the answer that depends on the parameters only, which an
      evaluation computes once for all its chunks of examples (None: nothing to share);
    - ``forward(params, tokens, mcfg, drop=None, cache=None)``: tokens (E, N, S) -> (E, N, S, n_symbols)
      over every position, filling ``cache`` with named activations;
    - ``check(run_config)``: constraints on the RunConfig, raising ConfigError.
    """

    name: str
    doc: str
    config_type: type
    param_shapes: Callable[[Any], dict[str, ParamInit]]
    answer_logits: Callable[..., Tensor]
    forward: Callable[..., Tensor]
    check: Callable[[Any], None] = _no_check
    prepare: Callable[[Params, Any], Any] | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        """The RunConfig fields this model reads: its architecture, which stacked runs share."""
        return tuple(f.name for f in dataclasses.fields(self.config_type) if f.name not in SHAPE_FIELDS)

    def config(self, values: Any, shape: Shape | int) -> Any:
        """The model config from a RunConfig (or a mapping of its fields) and the task's ``tasks.Shape`` (or its
        symbol count)."""
        shape = shape if isinstance(shape, Shape) else Shape(int(shape))
        get = values.get if isinstance(values, Mapping) else lambda f: getattr(values, f)
        own = {f.name for f in dataclasses.fields(self.config_type)}
        derived = {k: v for k, v in shape._asdict().items() if k in own and k != "n_symbols"}
        return self.config_type(shape.n_symbols, **{f: get(f) for f in self.fields}, **derived)

    def init(self, mcfg: Any, seeds: list[int], scales: list[float] | None = None) -> Params:
        """Stacked parameters (E, ...): member e drawn from its own generator seeded by ``seeds[e]``."""
        shapes = self.param_shapes(mcfg)
        scales = scales or [1.0] * len(seeds)
        return stack([init_member(shapes, s, sc) for s, sc in zip(seeds, scales)])

    def n_params(self, mcfg: Any, embeddings: bool = False) -> int:
        """Parameters of one model; without embeddings by default, as the paper counts."""
        return count(self.param_shapes(mcfg), embeddings)


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    MODELS[spec.name] = spec
    return spec


def get_model(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ConfigError(f"model {name!r} is not allowed; allowed: {', '.join(MODELS)}")
    return MODELS[name]


register(ModelSpec(
    "transformer", "the paper's decoder-only transformer (causal attention, post-LayerNorm by default)",
    TransformerConfig, transformer.param_shapes, transformer.answer_logits, transformer.forward, transformer.check,
    transformer.prepare))
register(ModelSpec(
    "mlp", "an MLP on the two operands' embeddings (Gromov 2023): concatenated or summed, n_layers hidden layers",
    MLPConfig, mlp.param_shapes, mlp.answer_logits, mlp.forward))


class Model(nn.Module):
    """One model (no ensemble axis) as an ``nn.Module``: ``model["W_E"]``, ``model(tokens)``, ``run_with_cache``.

    Deterministic: no dropout (analysis reads the trained function).
    """

    def __init__(self, spec: ModelSpec | str, cfg: Any, params: Params | None = None):
        super().__init__()
        self.spec = get_model(spec) if isinstance(spec, str) else spec
        self.cfg = cfg
        if params is None:
            params = init_member(self.spec.param_shapes(cfg), 0)
        self.params = nn.ParameterDict({k.replace(".", "__"): nn.Parameter(v.clone()) for k, v in params.items()})

    def __getitem__(self, name: str) -> Tensor:
        return self.params[name.replace(".", "__")]

    def state(self) -> Params:
        """Parameters by name, without the ensemble axis."""
        return {k.replace("__", "."): v for k, v in self.params.items()}

    def _stacked(self) -> Params:
        return {k: v.unsqueeze(0) for k, v in self.state().items()}

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens (batch, seq) -> logits (batch, seq, n_symbols)."""
        return self.spec.forward(self._stacked(), tokens.unsqueeze(0), self.cfg)[0]

    def answer_logits(self, x: Tensor, y: Tensor) -> Tensor:
        """Operands (batch,) (a vector task: input vectors, (batch, n_inputs)) -> logits at the answer
        (batch, n_symbols)."""
        return self.spec.answer_logits(self._stacked(), x.unsqueeze(0), y.unsqueeze(0), self.cfg)[0]

    def run_with_cache(self, tokens: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        cache: dict[str, Tensor] = {}
        logits = self.spec.forward(self._stacked(), tokens.unsqueeze(0), self.cfg, cache=cache)[0]
        return logits, {k: v[0] for k, v in cache.items()}


class Transformer(Model):
    """The transformer as a ``Model``: ``Transformer(TransformerConfig(n_symbols=97), params)``."""

    def __init__(self, cfg: TransformerConfig, params: Params | None = None):
        super().__init__("transformer", cfg, params)


__all__ = ["MLPConfig", "MODELS", "Model", "ModelSpec", "ParamInit", "Params", "Transformer", "TransformerConfig",
           "get_model", "register"]
