"""Interventions as plug-ins: what a run does to its weights, gradients and updates, by name.

Each intervention acts at one stage of an update:

- ``weights``: the weights the forward and backward pass of this update see
  (weight noise); the stored weights stay clean, evaluation uses them.
  ``apply(views, state, hp, ctx) -> views``.
- ``gradient``: the flat gradient before the base optimizer (Grokfast-EMA).
  ``apply(g, state, hp, ctx) -> g``.
- ``update``: the weights after the base optimizer's step (update noise).
  ``apply(p, state, hp, ctx) -> None``, in place.

``g`` and ``p`` are the flat tensors of a group of runs ``(E, P)``; ``views``
the named parameter tensors (leading axis E); ``state`` holds the
intervention's tensors with a leading E axis (checkpointed per run, dropped
with a run that finishes); ``hp[field]`` is an (E, 1) column of that RunConfig
field and ``hp.host[field]`` the same values as floats; ``ctx`` (``StepContext``)
gives each run's update count, its own random generator and the base rule's
step size. Runs of one group may differ in every setting, and a run for which
an intervention is off (``active(cfg)`` False) must come out bit for bit as
without it (and draw nothing from its generator).

Adding one: a function, an ``Intervention`` entry in ``INTERVENTIONS``, its
RunConfig fields (off by default), and a test against its definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

STAGES = ("weights", "gradient", "update")


@dataclass
class StepContext:
    """What an intervention may need about the update being made, per run of the group."""

    steps: list[int]  # each run's updates before this one
    generators: list[torch.Generator] | None = None  # each run's own noise stream (on the device)
    step_size: list[float] | None = None  # update stage: how far the base rule moved along its direction
    params: Tensor | None = None  # gradient stage: the flat weights (E, P) the gradient was taken at
    segments: list[tuple[int, int]] | None = None  # each weight tensor's [start, stop) columns (FlatParams order)


@dataclass(frozen=True)
class Intervention:
    name: str
    doc: str
    stage: str  # one of STAGES
    hparams: tuple[str, ...]  # the RunConfig fields it reads, per run
    active: Callable[[object], bool]  # on for this RunConfig
    apply: Callable
    init: Callable[..., dict[str, Tensor]] = lambda flat, hp: {}  # flat parameters (E, P), hp -> its state


def _grokfast_ema_init(flat: Tensor, hp) -> dict[str, Tensor]:
    return {"ema": torch.zeros_like(flat)}


def grokfast_ema(g: Tensor, state: dict[str, Tensor], hp, ctx: StepContext) -> Tensor:
    """Grokfast-EMA (Lee et al. 2024, ``gradfilter_ema``): ``ema <- alpha ema + (1 - alpha) g``, the average
    starting at the first gradient; then ``g <- g + lamb ema``."""
    ema, alpha = state["ema"], hp["grokfast_alpha"]
    first = [e for e, s in enumerate(ctx.steps) if s == 0]
    if first:
        ema[first] = g[first]
    ema.mul_(alpha).add_(g * (1 - alpha))
    return g + hp["grokfast_lamb"] * ema


def _grokfast_ma_init(flat: Tensor, hp) -> dict[str, Tensor]:
    window = int(max(hp.host["grokfast_ma_window"]))  # runs with a shorter window use its first slots
    return {"ma_window": flat.new_zeros(flat.shape[0], window, flat.shape[1]), "ma_sum": torch.zeros_like(flat)}


def grokfast_ma(g: Tensor, state: dict[str, Tensor], hp, ctx: StepContext) -> Tensor:
    """Grokfast-MA (Lee et al. 2024, ``gradfilter_ma`` with ``filter_type="mean"``, ``warmup=True``): keep each
    run's last ``window`` gradients; once the window is full, ``g <- g + lamb * mean(window)`` (the window
    includes the current gradient). A ring buffer per run and a running sum: one add and one subtract per update."""
    buf, total = state["ma_window"], state["ma_sum"]
    out = g.clone()
    lamb, windows = hp.host["grokfast_ma_lamb"], hp.host["grokfast_ma_window"]
    for e, step in enumerate(ctx.steps):
        if lamb[e] == 0:
            continue
        window = int(windows[e])
        slot = step % window
        total[e].sub_(buf[e, slot]).add_(g[e])
        buf[e, slot].copy_(g[e])
        if step + 1 >= window:
            out[e].add_(total[e], alpha=lamb[e] / window)
    return out


def orthograd(g: Tensor, state: dict[str, Tensor], hp, ctx: StepContext) -> Tensor:
    """The orthogonal gradient (⊥Grad, Prieto et al. 2025, their ``orthograd.py``): for each weight tensor w with
    gradient g, remove the component along w, ``g_perp = g - (w.g / (w.w + 1e-30)) w``, then rescale it to g's
    norm, ``g_perp * ||g|| / (||g_perp|| + 1e-30)``. Per tensor (not per row), for every tensor, per run."""
    on = hp["orthograd"] > 0  # (E, 1): the runs it is on for
    out = g.clone()
    for a, b in ctx.segments:
        w, gs = ctx.params[:, a:b], g[:, a:b]
        proj = (w * gs).sum(1, keepdim=True) / ((w * w).sum(1, keepdim=True) + 1e-30)
        perp = gs - proj * w
        perp = perp * (gs.norm(dim=1, keepdim=True) / (perp.norm(dim=1, keepdim=True) + 1e-30))
        out[:, a:b] = torch.where(on, perp, gs)
    return out


def _normal_rows(n: int, device, std: list[float], generators: list[torch.Generator]) -> list[tuple[int, Tensor]]:
    """(run, N(0, std^2) noise of n values) for every run whose std is > 0, drawn from that run's generator."""
    return [(e, torch.randn(n, generator=generators[e], device=device).mul_(s)) for e, s in enumerate(std) if s > 0]


def update_noise(p: Tensor, state: dict[str, Tensor], hp, ctx: StepContext) -> None:
    """Gaussian noise of standard deviation ``grad_noise`` added to the base rule's update direction, as in
    the paper's code (openai/grok ``CustomAdamW``: ``upd += randn_like(upd) * noise_factor`` on Adam's
    normalized step, before ``p -= step_size * upd``). The weights therefore move by an extra
    ``-step_size * N(0, grad_noise^2)`` per coordinate, ``step_size`` being the learning rate of this update
    (warm-up included) divided, for Adam, by the bias correction ``1 - beta1^t``."""
    for e, noise in _normal_rows(p.shape[1], p.device, hp.host["grad_noise"], ctx.generators):
        p[e].sub_(noise, alpha=ctx.step_size[e])


def weight_noise(views: dict[str, Tensor], state: dict[str, Tensor], hp, ctx: StepContext) -> dict[str, Tensor]:
    """Gaussian noise of standard deviation ``weight_noise`` on every weight, drawn afresh for each update
    (the paper's code adds ``randn_like(weight) * weight_noise`` to every Linear, LayerNorm and Embedding
    weight in training mode). The gradient is taken at the noisy weights and applied to the clean ones."""
    first = next(iter(views.values()))
    rows = _normal_rows(ctx.segments[-1][1], first.device, hp.host["weight_noise"], ctx.generators)
    if not rows:
        return views
    noise = first.new_zeros(first.shape[0], ctx.segments[-1][1])
    for e, n in rows:
        noise[e] = n
    return {name: v + noise[:, a:b].view(v.shape) for (name, v), (a, b) in zip(views.items(), ctx.segments)}


INTERVENTIONS: dict[str, Intervention] = {
    "grokfast_ema": Intervention(
        "grokfast_ema", "amplify the slow (EMA) component of the gradient", "gradient",
        ("grokfast_lamb", "grokfast_alpha"), lambda cfg: cfg.grokfast_lamb > 0, grokfast_ema, _grokfast_ema_init),
    "grokfast_ma": Intervention(
        "grokfast_ma", "amplify the moving average of the last grokfast_ma_window gradients", "gradient",
        ("grokfast_ma_lamb", "grokfast_ma_window"), lambda cfg: cfg.grokfast_ma_lamb > 0, grokfast_ma,
        _grokfast_ma_init),
    "orthograd": Intervention(
        "orthograd", "remove each weight tensor's gradient component along the tensor (norm kept)", "gradient",
        ("orthograd",), lambda cfg: cfg.orthograd, orthograd),
    "weight_noise": Intervention(
        "weight_noise", "Gaussian noise on the weights of each update's forward and backward pass", "weights",
        ("weight_noise",), lambda cfg: cfg.weight_noise > 0, weight_noise),
    "grad_noise": Intervention(
        "grad_noise", "Gaussian noise on the update direction (the paper's gradient noise)", "update",
        ("grad_noise",), lambda cfg: cfg.grad_noise > 0, update_noise),
}


def active_transforms(cfgs, stage: str | None = None) -> list[Intervention]:
    """The interventions some run of ``cfgs`` switches on (of one ``stage``, or all), in registry order."""
    return [t for t in INTERVENTIONS.values() if (stage is None or t.stage == stage) and any(t.active(c) for c in cfgs)]
