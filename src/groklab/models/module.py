"""``Model``: one trained model (no ensemble axis) as an ``nn.Module``, for analysis and export."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from . import MODELS
from .spec import ModelSpec
from .stacked import Params, init_member


class Model(nn.Module):
    """One model (no ensemble axis) as an ``nn.Module``: ``model["W_E"]``, ``model(tokens)``, ``run_with_cache``.

    Deterministic: no dropout (analysis reads the trained function). ``model.spec`` says what it offers: its
    ``embedding`` and ``unembedding`` names, ``neurons(cfg)``, ``first_layer(cfg)``.
    """

    def __init__(self, spec: ModelSpec | str, cfg: Any, params: Params | None = None):
        super().__init__()
        self.spec = MODELS[spec] if isinstance(spec, str) else spec
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

    def __init__(self, cfg, params: Params | None = None):
        super().__init__("transformer", cfg, params)
