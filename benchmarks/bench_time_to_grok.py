"""Wall time to 99% validation accuracy: `groklab train` (no arguments) vs the reference loop.

    python benchmarks/bench_time_to_grok.py

Same updates, different engines: the reference loop (benchmarks/reference.py) starts from
groklab's initial weights, draws the same minibatches and evaluates on the full train and
validation sets on the same schedule, so both runs follow the same trajectory up to float
rounding. Printed: the step and the wall time at which each first reached 99% validation
accuracy, and their ratio.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from reference import ReferenceTransformer, load_groklab_params  # noqa: E402

from groklab import RunConfig  # noqa: E402
from groklab.engine import Group  # noqa: E402
from groklab.train import is_eval_step, train  # noqa: E402


def reference_time_to_grok(cfg: RunConfig, max_steps: int) -> tuple[int | None, float]:
    g = Group.build([cfg])  # groklab's split, init and sampler, to replay the same updates
    run, t = g.members[0], g.table
    model = ReferenceTransformer(cfg.modulus + 2, cfg.modulus)
    load_groklab_params(model, g.params.member(0))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                            weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / cfg.warmup_steps))
    T = g.mcfg.layout.tokens(t.x, t.y)
    val_mask = ~run.split.train_mask
    t0 = time.perf_counter()
    for step in range(max_steps + 1):
        if is_eval_step(step, cfg):
            with torch.no_grad():
                logits = torch.cat([model(T[a: a + 1024])[:, -1] for a in range(0, len(T), 1024)])
                correct = logits.argmax(-1) == t.z
                F.cross_entropy(logits, t.z)  # the loss a user's loop would log
                if correct[val_mask].float().mean().item() >= 0.99:
                    return step, time.perf_counter() - t0
        idx = run.sampler.next()
        loss = F.cross_entropy(model(T[idx])[:, -1], t.z[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return None, time.perf_counter() - t0


def main():
    cfg = RunConfig()  # the main job: paper preset, div mod 97, 50%
    # the reference first: groklab's engine changes a process-wide malloc setting on the CPU
    ref_step, ref = reference_time_to_grok(cfg, max_steps=cfg.steps)
    print(f"reference: 99% validation at step {ref_step if ref_step is None else f'{ref_step:,}'} after {ref:.1f} s")
    t = time.perf_counter()
    res = train(cfg)
    ours_total = time.perf_counter() - t
    step = res.summary["step_val_acc_99"]
    ours = next(r["elapsed_s"] for r in res.history if r["step"] == step)
    print(f"groklab:   99% validation at step {step:,} after {ours:.1f} s (whole run incl. stop rule {ours_total:.1f} s)")
    print(f"time to 99% validation: groklab is {ref / ours:.2f}x faster")


if __name__ == "__main__":
    main()
