"""The engine's optimizer: a base update rule (``groklab.rules``) and the interventions around it, over a flat
parameter buffer, vectorized over an ensemble of runs.

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
3. the base rule (``rules.RULES``): Adam's moments for ``adamw`` and ``adam`` (PyTorch's fused kernel, one
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

from typing import TYPE_CHECKING

from .interventions import Intervention, StepContext
from .lazy import lazy
from .models.stacked import ParamInit, Params
from .rules import RULES, apply_decay

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")

BASE_FIELDS = ("lr", "weight_decay", "warmup_steps")  # every rule reads these; a rule's own fields come with it


class FlatParams:
    """Named parameter views into one ``(E, P)`` buffer, with gradients in a second one. ``matrix[name]``: how the
    model reads that parameter as a hidden weight matrix (``ParamInit.matrix``), or None."""

    def __init__(self, stacked: Params, device: torch.device | str = "cpu", inits: dict[str, ParamInit] | None = None):
        self.names = list(stacked)
        self.shapes = {k: tuple(v.shape[1:]) for k, v in stacked.items()}
        self.inits = inits or {}
        self.matrix = {k: self.inits[k].matrix if k in self.inits else None for k in self.names}
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
        return FlatParams({k: v.detach()[keep] for k, v in self.views.items()}, self.flat.device, self.inits)


class HyperParams:
    """Per-run hyper-parameters by RunConfig field name: ``hp["lr"]`` is an (E, 1) float32 column on the device,
    ``hp.host["lr"]`` the same float32 values as Python floats (for the fused kernels, without a device sync)."""

    def __init__(self, values: dict[str, list[float]], device: torch.device | str = "cpu"):
        cols = {k: torch.tensor([[v] for v in vals]) for k, vals in values.items()}
        self.host = {k: v[:, 0].tolist() for k, v in cols.items()}
        self.cols = {k: v.to(device) for k, v in cols.items()}

    @classmethod
    def from_configs(cls, cfgs, names, device) -> "HyperParams":
        """The ``names`` settings of each config, as per-run columns on ``device``."""
        return cls({n: [float(getattr(c, n)) for c in cfgs] for n in names}, device)

    def __getitem__(self, name: str) -> Tensor:
        return self.cols[name]

    def select(self, keep: list[int]) -> "HyperParams":
        """The columns of the runs ``keep`` (a group after some of its runs finished)."""
        out = HyperParams.__new__(HyperParams)
        out.host = {k: [v[e] for e in keep] for k, v in self.host.items()}
        out.cols = {k: v[keep] for k, v in self.cols.items()}
        return out


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
    """One base rule (``rules.RULES``) with gradient- and update-stage interventions, for E runs.

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

    def step(self, fused: bool = True) -> None:
        """One update of every run. ``fused=False`` makes the same update with elementwise operations."""
        with torch.no_grad():
            self._update(fused)

    def _update(self, fused: bool) -> None:
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
        elif self.rule.layout:
            self.rule.update(p, g, self.state, self.hp, lr, self.step_count, self.params,
                             self.state.get("decay_target"))
        else:
            if any(self.hp.host["weight_decay"]):
                apply_decay(p, g, lr, self.hp["weight_decay"], self.state.get("decay_target"), self.rule.decoupled)
            self.rule.update(p, g, self.state, self.hp, lr, self.step_count)
        if self.after:
            beta1 = self.hp.host["beta1"] if self.rule.bias_corrected else [0.0] * len(self.steps)
            ctx.step_size = [self.rule.step_size(self._host_lr(e), beta1[e], t) for e, t in enumerate(self.steps)]
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
        kernel = self.rule.kernel()
        for (lr, b1, b2, eps, wd), rows in groups.items():
            if wd and target is not None:
                for a, b in _spans(rows):
                    apply_decay(p[a:b], g[a:b], lr, wd, target[a:b], self.rule.decoupled)
            kernel([p[e] for e in rows], [g[e] for e in rows], [m[e] for e in rows], [v[e] for e in rows],
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
        """Load one member's optimizer state (from its checkpoint) into row ``e``."""
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
