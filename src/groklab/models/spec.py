"""What a model is: ``ModelSpec``, one architecture and everything the engine, the analyses and the update rules
need to know about it (its parameters are ``stacked.ParamInit``: how each is shaped, drawn and seen).

A model module (``models/transformer.py``, a plugin's file) holds a ``ModelSpec`` at its top level; the registry
(``groklab.models.MODELS``) finds it. Its settings are ``fields`` (``fields.Field``; the ones several models share,
such as the width, are declared once below), read from the run's config into its ``config_type``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from .. import limits
from ..errors import ConfigError
from ..fields import Field
from ..tasks.spec import Shape
from .stacked import ParamInit, Params, count, init_member, stack

SHAPE_FIELDS = ("n_symbols", "n_inputs")  # what a model config takes from the task (tasks.Shape), not a RunConfig

# settings several models read, declared once (a model lists the ones it reads in its ``fields``)
N_LAYERS = Field("n_layers", 2, "layers: the transformer's blocks, the MLP's hidden layers", min=1)
D_MODEL = Field("d_model", 128, "width of the residual stream (transformer) or of each operand's embedding (mlp)",
                min=1)
D_MLP = Field("d_mlp", 512, "hidden width of each MLP", min=1)
ACT = Field("act", "relu", "MLP activation (quadratic: x^2, Gromov 2023)", choices=("relu", "gelu", "quadratic"))


def _no_check(cfg) -> None:
    return None


def _none(mcfg) -> None:
    return None


@dataclass(frozen=True)
class ModelSpec:
    """One model kind, as the engine, the analyses and the update rules see it.

    - ``fields``: the RunConfig settings it reads (its architecture, which stacked runs share);
    - ``config_type``: frozen dataclass ``(n_symbols, <its fields>)``, and ``n_inputs`` if it reads vector tasks
      (``tasks.Shape``: what it takes from the task);
    - ``param_shapes(mcfg)``: name -> ``ParamInit``, in initialization order;
    - ``answer_logits(params, x, y, mcfg, drop=None, prepared=None)``: x, y (E, N) -> logits (E, N, n_symbols),
      what training and evaluation use (a vector task's x: its input vectors, (E, N, F)); ``drop`` is residual
      dropout (``stacked.Dropout``) or None; ``prepared`` what ``prepare`` returned for these parameters;
    - ``prepare(params, mcfg)``: the part of the answer that depends on the parameters only, which an
      evaluation computes once for all its chunks of examples (None: nothing to share);
    - ``forward(params, tokens, mcfg, drop=None, cache=None)``: tokens (E, N, S) -> (E, N, S, n_symbols)
      over every position, filling ``cache`` with named activations;
    - ``check(run_config)``: constraints on the RunConfig, raising ConfigError;
    - what the analyses read: ``embedding`` (rows: tokens, the symbols first), ``unembedding`` (d, n_symbols),
      ``neurons(mcfg)`` (the matrix (n_neurons, d) through which the last hidden layer's neurons write to what
      the unembedding reads; None when the unembedding reads them directly), ``first_layer(mcfg)`` (the matrix
      (n_inputs, width) that reads a vector task's input; None when there is none);
    - ``activations(mcfg)``: bytes one training example's activations take until the backward pass, at most (a
      bound: ``groklab.limits`` refuses a width, depth or batch that cannot fit; None: the parameters only).
    """

    name: str
    doc: str
    config_type: type
    param_shapes: Callable[[Any], dict[str, ParamInit]]
    answer_logits: Callable[..., Any]
    forward: Callable[..., Any]
    fields: tuple[Field, ...] = ()
    check: Callable[[Any], None] = _no_check
    prepare: Callable[[Any, Any], Any] | None = None
    embedding: str = "W_E"
    unembedding: str = "W_U"
    neurons: Callable[[Any], str | None] = _none
    first_layer: Callable[[Any], str | None] = _none
    activations: Callable[[Any], int] | None = None

    def __post_init__(self):
        own = {f.name for f in dataclasses.fields(self.config_type)}
        missing = [f.name for f in self.fields if f.name not in own]
        if missing or "n_symbols" not in own:
            raise ConfigError(f"model {self.name!r}: its config_type lacks "
                              f"{', '.join(missing or ['n_symbols'])}; it holds n_symbols and each of its fields")

    @property
    def field_names(self) -> tuple[str, ...]:
        """The names of the model's own settings."""
        return tuple(f.name for f in self.fields)

    def config(self, values: Any, shape: Shape | int) -> Any:
        """The model config from a RunConfig (or a mapping of its fields) and the task's ``tasks.Shape`` (or its
        symbol count)."""
        shape = shape if isinstance(shape, Shape) else Shape(int(shape))
        get = values.get if isinstance(values, Mapping) else lambda f: getattr(values, f)
        own = {f.name for f in dataclasses.fields(self.config_type)}
        derived = {k: v for k, v in shape._asdict().items() if k in own and k != "n_symbols"}
        return self.config_type(shape.n_symbols, **{f: get(f) for f in self.field_names}, **derived)

    def init(self, mcfg: Any, seeds: list[int], scales: list[float] | None = None) -> Params:
        """Stacked parameters (E, ...): member e drawn from its own generator seeded by ``seeds[e]``."""
        shapes = self.param_shapes(mcfg)
        scales = scales or [1.0] * len(seeds)
        return stack([init_member(shapes, s, sc) for s, sc in zip(seeds, scales)])

    def check_fits(self, cfg, mcfg: Any) -> None:
        """ConfigError when one run of ``cfg`` (its parameters, their gradients and moments, one batch's
        activations) cannot fit in this machine's memory: before anything is allocated."""
        per_example = self.activations(mcfg) if self.activations is not None else 0
        sized = ", ".join(f"{f.name} {getattr(cfg, f.name):,}" for f in self.fields if f.type == "int")
        limits.check_model(f"model {self.name!r} with {sized} ({self.n_params(mcfg, embeddings=True):,} "
                           f"parameters) and batches of {cfg.resolved_batch_size:,}",
                           self.n_params(mcfg, embeddings=True), per_example, cfg.resolved_batch_size)

    def n_params(self, mcfg: Any, embeddings: bool = False) -> int:
        """Parameters of one model; without embeddings by default, as the paper counts."""
        return count(self.param_shapes(mcfg), embeddings)
