"""Optimizers over a flat parameter buffer, vectorized over an ensemble of runs.

All parameters of ``E`` models live in one ``(E, P)`` tensor ``flat`` (the
model's named tensors are views into it), and their gradients in another.
An update is then a handful of elementwise operations on two tensors, with
each run's hyper-parameters as an ``(E, 1)`` column: one run and sixty-four
runs cost the same number of kernel launches, and runs may differ in learning
rate, weight decay, betas or Grokfast settings.

Implemented: AdamW (decoupled weight decay, as ``torch.optim.AdamW``), Adam
(L2 penalty added to the gradient, as ``torch.optim.Adam``), SGD with
momentum; weight decay towards zero or towards the initialization; a linear
learning-rate warm-up; and the Grokfast-EMA gradient filter (Lee et al. 2024):
``g <- g + lamb * ema(g)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from .models import Params


# Gradients are views into one flat buffer; PyTorch warns that such strides are not its
# preferred layout, but accumulates into them in place all the same (tests check the result).
warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")


class FlatParams:
    """Named parameter views into one ``(E, P)`` buffer, with gradients in a second one."""

    def __init__(self, stacked: Params, device: torch.device | str = "cpu"):
        self.names = list(stacked)
        self.shapes = {k: tuple(v.shape[1:]) for k, v in stacked.items()}
        E = next(iter(stacked.values())).shape[0]
        self.flat = torch.cat([v.reshape(E, -1) for v in stacked.values()], dim=1).to(device).contiguous()
        self.grad = torch.zeros_like(self.flat)
        self.views: Params = {}
        offset = 0
        for name in self.names:
            size = int(torch.Size(self.shapes[name]).numel())
            view = self.flat[:, offset: offset + size].view(E, *self.shapes[name])
            view.requires_grad_(True)
            # backward accumulates in place into a pre-set .grad, i.e. into self.grad
            view.grad = self.grad[:, offset: offset + size].view(E, *self.shapes[name])
            self.views[name] = view
            offset += size

    @property
    def n_models(self) -> int:
        return self.flat.shape[0]

    def member(self, e: int) -> Params:
        """One model's parameters (copies, no ensemble axis, on the CPU)."""
        return {k: v[e].detach().cpu().clone() for k, v in self.views.items()}

    def select(self, keep: list[int]) -> "FlatParams":
        """A new buffer with only the models ``keep`` (runs that finished drop out)."""
        return FlatParams({k: v.detach()[keep] for k, v in self.views.items()}, self.flat.device)


@dataclass
class HyperParams:
    """Per-run hyper-parameters, each an (E, 1) tensor."""

    lr: Tensor
    weight_decay: Tensor
    beta1: Tensor
    beta2: Tensor
    eps: Tensor
    momentum: Tensor
    warmup: Tensor
    grokfast_lamb: Tensor
    grokfast_alpha: Tensor

    @classmethod
    def from_configs(cls, cfgs, device) -> "HyperParams":
        def col(name):
            return torch.tensor([[float(getattr(c, name))] for c in cfgs], device=device)

        return cls(col("lr"), col("weight_decay"), col("beta1"), col("beta2"), col("eps"), col("momentum"),
                   col("warmup_steps"), col("grokfast_lamb"), col("grokfast_alpha"))

    def select(self, keep: list[int]) -> "HyperParams":
        return HyperParams(**{k: v[keep] for k, v in vars(self).items()})


class Optimizer:
    """One optimizer kind (adamw | adam | sgd) for E runs; state tensors are (E, P) and (E, 1)."""

    def __init__(self, kind: str, params: FlatParams, hp: HyperParams, decay_to_init: list[bool],
                 steps: list[int] | None = None):
        self.kind, self.params, self.hp = kind, params, hp
        flat = params.flat
        self.step_count = torch.tensor([[float(s)] for s in (steps or [0] * flat.shape[0])], device=flat.device)
        # host copies of what the fused kernels take as numbers (known without a device sync)
        self.steps = [int(s) for s in (steps or [0] * flat.shape[0])]
        self._host = self._host_hp()
        self.exp_avg = torch.zeros_like(flat)
        self.exp_avg_sq = torch.zeros_like(flat) if kind != "sgd" else None
        self.ema = torch.zeros_like(flat) if bool((hp.grokfast_lamb > 0).any()) else None
        to_init = torch.tensor([[float(d)] for d in decay_to_init], device=flat.device)
        # the point weight decay pulls towards: zero, or the initialization
        self.decay_target = flat.detach().clone() * to_init if any(decay_to_init) else None

    def current_lr(self) -> Tensor:
        """The learning rate of the next update, (E, 1): linear warm-up to ``lr``."""
        return self.hp.lr * torch.clamp((self.step_count + 1) / self.hp.warmup.clamp(min=1), max=1.0)

    def _host_hp(self) -> list[tuple[float, ...]]:
        """Per run: (lr, warmup, beta1, beta2, eps, weight_decay) as Python floats."""
        hp = self.hp
        cols = [hp.lr, hp.warmup, hp.beta1, hp.beta2, hp.eps, hp.weight_decay]
        return [tuple(row) for row in torch.cat(cols, dim=1).tolist()]

    @torch.no_grad()
    def step(self, fused: bool = True) -> None:
        """One update of every run. Adam and AdamW use PyTorch's fused kernels (one call per set of runs
        sharing hyper-parameters and step); ``fused=False`` runs the same update as elementwise ops."""
        hp, p, g = self.hp, self.params.flat, self.params.grad
        lr = self.current_lr() if not fused or self.kind == "sgd" or self.decay_target is not None else None
        self.step_count += 1
        self.steps = [s + 1 for s in self.steps]
        if self.ema is not None:
            self.ema.mul_(hp.grokfast_alpha).add_(g * (1 - hp.grokfast_alpha))
            g = g + hp.grokfast_lamb * self.ema
        if fused and self.kind != "sgd" and p.dtype == torch.float32:
            if self.decay_target is not None:  # decay towards the init here; the kernels decay towards zero
                if self.kind == "adamw":
                    p.sub_(lr * hp.weight_decay * (p - self.decay_target))
                else:
                    g = g + hp.weight_decay * (p - self.decay_target)
            self._fused(g, self.decay_target is None)
            return
        decay = p if self.decay_target is None else p - self.decay_target
        if self.kind == "adamw":
            p.sub_(lr * hp.weight_decay * decay)
        else:  # Adam and SGD: L2 penalty in the gradient
            g = g + hp.weight_decay * decay
        if self.kind == "sgd":
            self.exp_avg.mul_(hp.momentum).add_(g)
            p.sub_(lr * self.exp_avg)
            return
        self.exp_avg.lerp_(g, 1 - hp.beta1)
        self.exp_avg_sq.mul_(hp.beta2).addcmul_(g, g * (1 - hp.beta2))
        bc1 = 1 - hp.beta1 ** self.step_count
        bc2 = 1 - hp.beta2 ** self.step_count
        denom = (self.exp_avg_sq / bc2).sqrt_().add_(hp.eps)
        p.sub_(lr / bc1 * self.exp_avg / denom)

    def _fused(self, g: Tensor, with_decay: bool) -> None:
        groups: dict[tuple, list[int]] = {}
        for e, ((lr, warmup, b1, b2, eps, wd), s) in enumerate(zip(self._host, self.steps)):
            lr_now = lr * min(s / max(warmup, 1.0), 1.0)  # s counts this update: as current_lr before it
            groups.setdefault((lr_now, b1, b2, eps, wd if with_decay else 0.0), []).append(e)
        kernel = torch._fused_adamw_ if self.kind == "adamw" else torch._fused_adam_
        p = self.params.flat
        for (lr_now, b1, b2, eps, wd), rows in groups.items():
            kernel([p[e] for e in rows], [g[e] for e in rows], [self.exp_avg[e] for e in rows],
                   [self.exp_avg_sq[e] for e in rows], [], [self.step_count[e] for e in rows],
                   lr=lr_now, beta1=b1, beta2=b2, weight_decay=wd, eps=eps, amsgrad=False, maximize=False)

    def select(self, keep: list[int]) -> None:
        """Keep only the runs ``keep`` (call after ``params.select``)."""
        self.hp = self.hp.select(keep)
        self.steps = [self.steps[e] for e in keep]
        self._host = [self._host[e] for e in keep]
        for name in ("step_count", "exp_avg", "exp_avg_sq", "ema", "decay_target"):
            t = getattr(self, name)
            if t is not None:
                setattr(self, name, t[keep].contiguous())

    def state_of(self, e: int) -> dict[str, Tensor]:
        out = {"step_count": self.step_count[e].cpu().clone()}
        for name in ("exp_avg", "exp_avg_sq", "ema", "decay_target"):
            t = getattr(self, name)
            if t is not None:
                out[name] = t[e].cpu().clone()
        return out

    def load_state_of(self, e: int, state: dict[str, Tensor]) -> None:
        if "step_count" in state:
            self.steps[e] = int(state["step_count"].reshape(-1)[0].item())
        for name, t in state.items():
            target = getattr(self, name)
            if target is None:
                target = torch.zeros_like(self.params.flat)
                setattr(self, name, target)
            target[e].copy_(t)
