"""Optimizers over a flat parameter buffer, vectorized over an ensemble of runs.

All parameters of ``E`` models live in one ``(E, P)`` tensor ``flat`` (the
model's named tensors are views into it), and their gradients in another. An
update is a handful of operations on two tensors, with each run's
hyper-parameters as an ``(E, 1)`` column: one run and sixty-four runs cost the
same number of kernel launches, and runs may differ in learning rate, weight
decay, betas or any intervention's settings.

One update, in order:

1. the gradient-stage interventions some run switches on (``interventions``: Grokfast-EMA);
2. weight decay towards zero or towards the initialization (``apply_decay`` defines it):
   decoupled for AdamW, an L2 term in the gradient for Adam and SGD;
3. the base rule (``RULES``): Adam's moments for ``adamw`` and ``adam`` (PyTorch's fused kernel, one
   call per set of runs sharing hyper-parameters; or the same update as elementwise operations), SGD
   with momentum for ``sgd``, or for ``muon`` Muon's orthogonalized momentum on the hidden matrices
   (as ``torch.optim.Muon``) with AdamW on the embeddings, the unembedding and the vectors;
4. the update-stage interventions (``interventions``: noise on the update direction), given each run's
   step size (``BaseRule.step_size``) and random generator.

The fused Adam kernels take decay towards zero as their own ``weight_decay`` argument (the
same formula, fused into the same pass over memory); decay towards a target goes through
``apply_decay`` before them.

The learning rate warms up linearly over ``warmup_steps`` updates.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .interventions import Intervention, StepContext
from .models.stacked import Params

BASE_FIELDS = ("lr", "weight_decay", "beta1", "beta2", "eps", "momentum", "warmup_steps")


class FlatParams:
    """Named parameter views into one ``(E, P)`` buffer, with gradients in a second one."""

    def __init__(self, stacked: Params, device: torch.device | str = "cpu"):
        self.names = list(stacked)
        self.shapes = {k: tuple(v.shape[1:]) for k, v in stacked.items()}
        E = next(iter(stacked.values())).shape[0]
        self.flat = torch.cat([v.reshape(E, -1) for v in stacked.values()], dim=1).to(device).contiguous()
        self.grad = torch.zeros_like(self.flat)
        # each named tensor's [start, stop) columns in the flat buffer, in ``names`` order
        self.segments: list[tuple[int, int]] = []
        offset = 0
        for name in self.names:
            size = int(torch.Size(self.shapes[name]).numel())
            self.segments.append((offset, offset + size))
            offset += size
        self.views: Params = {}
        for name, (a, b) in zip(self.names, self.segments):
            view = self.flat[:, a:b].view(E, *self.shapes[name])
            view.requires_grad_(True)
            # backward accumulates in place into a pre-set .grad, i.e. into self.grad
            view.grad = self.grad[:, a:b].view(E, *self.shapes[name])
            self.views[name] = view

    def member(self, e: int) -> Params:
        """One model's parameters (copies, no ensemble axis, on the CPU)."""
        return {k: v[e].detach().cpu().clone() for k, v in self.views.items()}

    def select(self, keep: list[int]) -> "FlatParams":
        """A new buffer with only the models ``keep`` (runs that finished drop out)."""
        return FlatParams({k: v.detach()[keep] for k, v in self.views.items()}, self.flat.device)


class HyperParams:
    """Per-run hyper-parameters by RunConfig field name: ``hp["lr"]`` is an (E, 1) float32 column on the device,
    ``hp.host["lr"]`` the same float32 values as Python floats (for the fused kernels, without a device sync)."""

    def __init__(self, values: dict[str, list[float]], device: torch.device | str = "cpu"):
        cols = {k: torch.tensor([[v] for v in vals]) for k, vals in values.items()}
        self.host = {k: v[:, 0].tolist() for k, v in cols.items()}
        self.cols = {k: v.to(device) for k, v in cols.items()}

    @classmethod
    def from_configs(cls, cfgs, names, device) -> "HyperParams":
        return cls({n: [float(getattr(c, n)) for c in cfgs] for n in names}, device)

    def __getitem__(self, name: str) -> Tensor:
        return self.cols[name]

    def select(self, keep: list[int]) -> "HyperParams":
        out = HyperParams.__new__(HyperParams)
        out.host = {k: [v[e] for e in keep] for k, v in self.host.items()}
        out.cols = {k: v[keep] for k, v in self.cols.items()}
        return out


def apply_decay(p: Tensor, g: Tensor, lr, wd, target: Tensor | None, decoupled: bool) -> None:
    """Weight decay, in place, written once for every back-end.

    Towards zero (``target`` None) or towards ``target`` (e.g. the initialization). Decoupled (AdamW):
    the weights move ``lr * wd`` of the way to the target; otherwise (Adam, SGD) the L2 term
    ``wd * (p - target)`` is added to the gradient. ``lr``, ``wd``: numbers or (rows, 1) columns.
    """
    if decoupled:
        if target is None:
            p.mul_(1 - lr * wd)  # as PyTorch's fused AdamW rounds it
        else:
            p.sub_(lr * wd * (p - target))
    else:
        g.add_(wd * (p if target is None else p - target))


def _adam(p: Tensor, g: Tensor, state: dict[str, Tensor], hp: HyperParams, lr: Tensor, step: Tensor) -> None:
    b1, b2 = hp["beta1"], hp["beta2"]
    state["exp_avg"].lerp_(g, 1 - b1)
    state["exp_avg_sq"].mul_(b2).addcmul_(g, g * (1 - b2))
    denom = (state["exp_avg_sq"] / (1 - b2 ** step)).sqrt_().add_(hp["eps"])
    p.sub_(lr / (1 - b1 ** step) * state["exp_avg"] / denom)


def _sgd(p: Tensor, g: Tensor, state: dict[str, Tensor], hp: HyperParams, lr: Tensor, step: Tensor) -> None:
    state["exp_avg"].mul_(hp["momentum"]).add_(g)
    p.sub_(lr * state["exp_avg"])


# Muon: the parameters it leaves to AdamW besides vectors: embeddings and the unembedding (TransformerLens names)
MUON_SKIP = ("W_E", "W_E_y", "W_pos", "W_U")
MUON_NS = (3.4445, -4.7750, 2.0315)  # Newton-Schulz coefficients (a, b, c), as torch.optim.Muon
MUON_NS_STEPS, MUON_EPS = 5, 1e-7


def newton_schulz(G: Tensor, steps: int = MUON_NS_STEPS, eps: float = MUON_EPS) -> Tensor:
    """The approximately orthogonal factor of each matrix of ``G`` (..., A, B), as torch.optim.Muon computes it
    (``X = G / max(||G||_F, eps)``, then ``steps`` times ``X <- a X + (b X X^T + c (X X^T)^2) X`` on the wide
    side), batched over the leading axes and in float32 (PyTorch's runs in bfloat16)."""
    a, b, c = MUON_NS
    X = G / G.flatten(-2).norm(dim=-1).clamp(min=eps)[..., None, None]
    tall = G.shape[-2] > G.shape[-1]
    if tall:
        X = X.transpose(-2, -1)
    for _ in range(steps):
        A = X @ X.transpose(-2, -1)
        X = a * X + (b * A + c * A @ A) @ X
    return X.transpose(-2, -1) if tall else X


@functools.cache
def _muon_index(name: str, shape: tuple[int, ...], device: str) -> Tensor | None:
    """Where each entry of the Muon matrix of a parameter lies in the parameter's flat layout (None: in order)."""
    if len(shape) == 2 or name.endswith("W_O"):
        return None  # a plain reshape
    to_matrix = muon_matrix(name, shape)
    return to_matrix(torch.arange(math.prod(shape), device=device).view(1, *shape)).reshape(-1)


def muon_matrix(name: str, shape: tuple[int, ...]) -> Callable[[Tensor], Tensor] | None:
    """How Muon sees a parameter (leading run axis E): a function to its (E, in, out) matrix (a view or copy), or
    None when AdamW updates it (vectors, embeddings, unembedding). Attention weights (heads, d_model, d_head) are
    one (d_model, heads * d_head) matrix, as a Linear layer holds them; W_O (heads, d_head, d_model) one
    (heads * d_head, d_model)."""
    if name.split(".")[-1] in MUON_SKIP or len(shape) < 2:
        return None
    if len(shape) == 2:
        return lambda t: t
    if name.endswith("W_O"):
        return lambda t: t.reshape(t.shape[0], -1, t.shape[-1])
    return lambda t: t.permute(0, 2, 1, 3).reshape(t.shape[0], t.shape[2], -1)


def _muon(p: Tensor, g: Tensor, state: dict[str, Tensor], hp: HyperParams, lr: Tensor, step: Tensor,
          params: "FlatParams", target: Tensor | None) -> None:
    """Muon for the matrices, as torch.optim.Muon's code (momentum ``B <- lerp(B, g, 1 - mu)``, Nesterov
    ``lerp(g, B, mu)``, Newton-Schulz, decoupled decay ``lr_m * wd``, step ``lr_m * sqrt(max(1, out / in))``;
    ``lr_m`` = ``muon_lr`` with the warm-up), and AdamW (``lr``) for everything else, vectorized over runs."""
    warm = lr / hp["lr"]  # the warm-up factor of this update, (E, 1)
    lr_m, wd, mu = (hp["muon_lr"] * warm)[:, :, None], hp["weight_decay"], hp["muon_momentum"]
    buf = state["exp_avg"]
    matrices: dict[tuple[int, int], list] = {}  # matrices of one shape share one batched Newton-Schulz call
    for name, (a, b) in zip(params.names, params.segments):
        tgt = None if target is None else target[:, a:b]
        to_matrix = muon_matrix(name, params.shapes[name])
        if to_matrix is None:
            seg = {k: state[k][:, a:b] for k in ("exp_avg", "exp_avg_sq")}
            apply_decay(p[:, a:b], g[:, a:b], lr, wd, tgt, True)
            _adam(p[:, a:b], g[:, a:b], seg, hp, lr, step)
            continue
        gs, bs = g[:, a:b], buf[:, a:b]
        bs.lerp_(gs, 1 - mu)
        update = to_matrix(gs.lerp(bs, mu.expand_as(bs)).view(p.shape[0], *params.shapes[name]))
        apply_decay(p[:, a:b], gs, lr_m[:, :, 0], wd, tgt, True)
        matrices.setdefault(tuple(update.shape[1:]), []).append((name, a, b, update))
    for (n_in, n_out), items in matrices.items():
        O = newton_schulz(torch.stack([u for *_, u in items]))  # (k, E, in, out)
        scale = lr_m * max(1.0, n_out / n_in) ** 0.5
        for (name, a, b, _), o in zip(items, O):
            step_m = (scale * o).reshape(p.shape[0], -1)
            index = _muon_index(name, params.shapes[name], str(p.device))
            if index is not None:  # back to the parameter's layout
                step_m = torch.empty_like(step_m).index_copy_(1, index, step_m)
            p[:, a:b].sub_(step_m)


@dataclass(frozen=True)
class BaseRule:
    """A base optimizer: how weight decay enters, its state tensors, its elementwise update and fused kernel.

    ``layout``: the update also takes the parameter layout and the decay target, and applies weight decay
    itself (Muon); ``hparams``: RunConfig fields it reads beyond the base ones."""

    decoupled: bool
    state: tuple[str, ...]
    update: Callable[..., None]
    fused: Callable | None = None
    bias_corrected: bool = False  # Adam: the step along the normalized direction is lr / (1 - beta1^t)
    layout: bool = False
    hparams: tuple[str, ...] = ()

    def step_size(self, lr: float, beta1: float, t: int) -> float:
        """How far update ``t`` (1-based) moves the weights per unit of the rule's direction."""
        return lr / (1 - beta1 ** t) if self.bias_corrected else lr


RULES = {
    "adamw": BaseRule(True, ("exp_avg", "exp_avg_sq"), _adam, torch._fused_adamw_, bias_corrected=True),
    "adam": BaseRule(False, ("exp_avg", "exp_avg_sq"), _adam, torch._fused_adam_, bias_corrected=True),
    "sgd": BaseRule(False, ("exp_avg",), _sgd),
    "muon": BaseRule(True, ("exp_avg", "exp_avg_sq"), _muon, layout=True, hparams=("muon_lr", "muon_momentum")),
}


def _spans(rows: list[int]) -> list[tuple[int, int]]:
    """Sorted row indices as maximal [start, stop) runs: [0, 1, 2, 5] -> [(0, 3), (5, 6)]."""
    spans: list[list[int]] = []
    for r in rows:
        if spans and spans[-1][1] == r:
            spans[-1][1] += 1
        else:
            spans.append([r, r + 1])
    return [(a, b) for a, b in spans]


class Optimizer:
    """One base rule (``RULES``: adamw | adam | sgd) with gradient- and update-stage interventions, for E runs.

    State tensors are (E, P) (moments, intervention state, the decay target) and (E, 1) (step count).
    ``generators`` (one per run) feed the interventions that draw noise.
    """

    def __init__(self, kind: str, params: FlatParams, hp: HyperParams, decay_to_init: list[bool],
                 transforms: list[Intervention] = (), steps: list[int] | None = None,
                 generators: list[torch.Generator] | None = None):
        self.kind, self.rule, self.params, self.hp = kind, RULES[kind], params, hp
        self.transforms = [t for t in transforms if t.stage == "gradient"]
        self.after = [t for t in transforms if t.stage == "update"]
        self.generators = generators
        flat = params.flat
        self.steps = [int(s) for s in (steps or [0] * flat.shape[0])]  # host copy: no device sync
        self.step_count = torch.tensor([[float(s)] for s in self.steps], device=flat.device)
        self.state: dict[str, Tensor] = {name: torch.zeros_like(flat) for name in self.rule.state}
        for t in self.transforms + self.after:
            self.state.update(t.init(flat, hp))
        if any(decay_to_init):  # the point weight decay pulls towards: the initialization, or zero (rows of 0)
            to_init = torch.tensor([[float(d)] for d in decay_to_init], device=flat.device)
            self.state["decay_target"] = flat.detach().clone() * to_init

    def current_lr(self) -> Tensor:
        """The learning rate of the next update, (E, 1): linear warm-up to ``lr``."""
        return self.hp["lr"] * torch.clamp((self.step_count + 1) / self.hp["warmup_steps"].clamp(min=1), max=1.0)

    def _host_lr(self, e: int) -> float:
        """Run e's learning rate of the update being made (``steps`` already counts it), as current_lr before it."""
        warmup = self.hp.host["warmup_steps"][e]
        return self.hp.host["lr"][e] * min(self.steps[e] / max(warmup, 1.0), 1.0)

    @torch.no_grad()
    def step(self, fused: bool = True) -> None:
        """One update of every run. ``fused=False`` makes the same update with elementwise operations."""
        p, g = self.params.flat, self.params.grad
        ctx = StepContext(self.steps, self.generators, params=p, segments=self.params.segments)
        for t in self.transforms:
            g = t.apply(g, self.state, self.hp, ctx)
        fast = fused and self.rule.fused is not None and p.dtype == torch.float32
        lr = None if fast else self.current_lr()
        self.step_count += 1
        self.steps = [s + 1 for s in self.steps]
        if lr is None:
            self._fused_update(p, g)
        else:
            if self.rule.layout:
                self.rule.update(p, g, self.state, self.hp, lr, self.step_count, self.params,
                                 self.state.get("decay_target"))
            else:
                if any(self.hp.host["weight_decay"]):
                    apply_decay(p, g, lr, self.hp["weight_decay"], self.state.get("decay_target"),
                                self.rule.decoupled)
                self.rule.update(p, g, self.state, self.hp, lr, self.step_count)
        if self.after:
            sizes = [self.rule.step_size(self._host_lr(e), self.hp.host["beta1"][e], t)
                     for e, t in enumerate(self.steps)]
            ctx.step_size = sizes
            for t in self.after:
                t.apply(p, self.state, self.hp, ctx)

    def _fused_update(self, p: Tensor, g: Tensor) -> None:
        """Runs sharing (lr now, betas, eps, weight decay) take one fused-kernel call."""
        host, groups = self.hp.host, {}
        for e in range(len(self.steps)):
            key = (self._host_lr(e), host["beta1"][e], host["beta2"][e], host["eps"][e], host["weight_decay"][e])
            groups.setdefault(key, []).append(e)
        target = self.state.get("decay_target")
        m, v = self.state["exp_avg"], self.state["exp_avg_sq"]
        for (lr, b1, b2, eps, wd), rows in groups.items():
            if wd and target is not None:
                for a, b in _spans(rows):
                    apply_decay(p[a:b], g[a:b], lr, wd, target[a:b], self.rule.decoupled)
            self.rule.fused([p[e] for e in rows], [g[e] for e in rows], [m[e] for e in rows], [v[e] for e in rows],
                            [], [self.step_count[e] for e in rows], lr=lr, beta1=b1, beta2=b2,
                            weight_decay=wd if target is None else 0.0, eps=eps, amsgrad=False, maximize=False)

    def select(self, keep: list[int]) -> None:
        """Keep only the runs ``keep`` (call after ``params.select``)."""
        self.hp = self.hp.select(keep)
        self.steps = [self.steps[e] for e in keep]
        if self.generators is not None:
            self.generators = [self.generators[e] for e in keep]
        self.step_count = self.step_count[keep].contiguous()
        self.state = {k: t[keep].contiguous() for k, t in self.state.items()}

    def state_of(self, e: int) -> dict[str, Tensor]:
        """Run e's optimizer state (CPU copies), as a checkpoint stores it."""
        return {"step_count": self.step_count[e].cpu().clone(), **{k: t[e].cpu().clone() for k, t in self.state.items()}}

    def load_state_of(self, e: int, state: dict[str, Tensor]) -> None:
        for name, t in state.items():
            if name == "step_count":
                self.step_count[e].copy_(t)
                self.steps[e] = int(t.reshape(-1)[0].item())
                continue
            if name not in self.state:  # e.g. a decay target only this run has
                self.state[name] = torch.zeros_like(self.params.flat)
            dst = self.state[name][e]
            if dst.shape != t.shape:  # a window sized by its group's longest (Grokfast-MA): the run's own slots
                n = min(dst.shape[0], t.shape[0])
                dst, t = dst[:n], t[:n]
            dst.copy_(t)
