"""The local learning coefficient (LLC) at each snapshot, by Timaeus' devinterp library (``pip install
"groklab[llc]"``, pinned to the version tested with groklab's PyTorch).

Singular learning theory reads grokking as a move between basins of different complexity; the LLC (Lau et al.
2023, "Quantifying degeneracy in singular models via the learning coefficient", arXiv 2308.12108) measures a
basin's: with ``w*`` the snapshot's weights, ``L`` the run's training loss and SGLD chains sampling the tempered,
localized posterior ``exp(-n_beta L(w) - localization / 2 |w - w*|^2)`` from ``w*``,

    LLC = n_beta * (mean loss over the chains' draws - L(w*))

``devinterp.slt.sampling.sample`` runs the chains (SGLD steps of size ``llc_lr`` on minibatches of ``llc_batch``
training examples, the run's own loss function) and ``devinterp.slt.llc.compute_llc`` reduces them. A chain
whose loss leaves the basin (a loss that is not finite, or a draw whose loss rises above the starting loss by
more than a uniform guess's loss: ln(n_symbols) for cross-entropy) has diverged: it is reported, counted and left
out of the mean, never averaged in silently; the LLC is None when every chain diverged.

The defaults (4 chains of 40 draws, step 1e-5, localization 1e4, n_beta = batch / ln(batch), devinterp's own
default) keep every chain in its basin on the quick preset's snapshots and cost about 1.6 s a snapshot on 2 CPU
cores; more draws and chains are options (``--llc-draws``, ``--llc-chains``; ``--llc-chains 0`` skips it).
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import io
import math
import tempfile
from pathlib import Path

from ..fields import Field
from ..lazy import lazy
from ..losses import get_loss, loss_dtype
from .spec import Analysis, Series, Snapshot

torch = lazy("torch")

CHAINS = Field("llc_chains", 4, "SGLD chains of the local learning coefficient (0 skips it)", min=0)
DRAWS = Field("llc_draws", 40, "SGLD draws per chain of the local learning coefficient", min=1)
LR = Field("llc_lr", 1e-5, "SGLD step size of the local learning coefficient", gt=0)
LOCALIZATION = Field("llc_localization", 1e4, "pull of the SGLD chains toward the snapshot's weights (gamma)", min=0)
NBETA = Field("llc_nbeta", 0.0, "inverse temperature n*beta of the local learning coefficient (0: batch / ln(batch), "
              "devinterp's default)", min=0)
BATCH = Field("llc_batch", 64, "training examples per SGLD step of the local learning coefficient", min=2)
SEED = 100  # devinterp's init_seed: the chains' noise and minibatches


def available() -> bool:
    """Whether devinterp (and the datasets library it reads examples through) can be imported."""
    return all(importlib.util.find_spec(m) is not None for m in ("devinterp", "datasets"))


def _wrap(model):
    """The snapshot's model under a module of its own: devinterp takes any module with a ``cfg.n_heads`` for a
    TransformerLens model (and calls ``.to`` with TransformerLens' arguments), which ``groklab.models.Model`` is not."""
    class Held(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

    return Held(model)


def nbeta_of(opts: dict) -> float:
    """The inverse temperature: ``llc_nbeta``, or ``batch / ln(batch)`` when it is 0."""
    b = opts["llc_batch"]
    return opts["llc_nbeta"] or b / math.log(b)


def estimate(model, cfg, data, opts: dict, n_out: int) -> dict:
    """The LLC of one model (``groklab.models.Model``, ``n_out`` logits) on the run's training rows: per chain,
    the chains that diverged, the mean and spread of the others, and the starting loss."""
    from datasets import Dataset  # noqa: PLC0415 - the optional extra, imported when the LLC is asked for
    from devinterp.slt.llc import compute_llc  # noqa: PLC0415
    from devinterp.slt.sampling import sample  # noqa: PLC0415

    rows = data.train.nonzero().squeeze(1)
    fn, dtype = get_loss(cfg.loss), loss_dtype(cfg.loss, cfg.loss_precision)
    z = data.z

    def loss_fn(m, ids):  # devinterp's per-token loss (batch, 1): the run's loss on the rows the ids name
        r = ids[:, 0]
        logits = m.inner.answer_logits(data.table.operands(r), data.y[r]).to(dtype)
        return fn(logits.unsqueeze(0), z[r].unsqueeze(0))[0].float().unsqueeze(1)

    ids = torch.stack([rows, rows], 1)  # devinterp reads "input_ids" rows of at least two tokens
    dataset = Dataset.from_dict({"input_ids": ids.tolist()}).with_format("torch")
    batch = min(opts["llc_batch"], len(rows))
    nbeta = nbeta_of({**opts, "llc_batch": batch})
    uniform = float(fn(torch.zeros(1, 1, n_out, dtype=dtype), z[:1].unsqueeze(0)).item())
    gc.freeze()  # devinterp collects garbage around every chain: over a process full of objects that is 1-2 s each
    try:
        # devinterp's bars to nothing (groklab analyze has its own); its samples to a folder removed after
        with contextlib.redirect_stderr(io.StringIO()), tempfile.TemporaryDirectory() as tmp:
            samples = sample(model=_wrap(model), dataset=dataset, observables={}, lr=opts["llc_lr"], n_beta=nbeta,
                             localization=opts["llc_localization"], num_chains=opts["llc_chains"],
                             num_draws=opts["llc_draws"], batch_size=batch,
                             num_init_loss_batches=max(1, len(rows) // batch),
                             init_seed=SEED, loss_fn=loss_fn, device="cpu", output_path=Path(tmp) / "llc.zarr")
            result = compute_llc(samples).load()
    finally:
        gc.unfreeze()
    init = float(result.init_loss)
    trace = torch.as_tensor(result.loss_trace.values)  # (chains, steps)
    per_chain = [float(v) for v in result.llc_per_chain.values]
    diverged = [i for i in range(len(per_chain))
                if not bool(torch.isfinite(trace[i]).all()) or float(trace[i].max()) > init + uniform]
    kept = torch.tensor([v for i, v in enumerate(per_chain) if i not in diverged], dtype=torch.float64)
    return {"llc": float(kept.mean()) if len(kept) else None,
            "llc_std": float(kept.std()) if len(kept) > 1 else 0.0 if len(kept) else None,
            "llc_chains": per_chain, "llc_diverged": diverged, "llc_init_loss": init}


def _measure(snap: Snapshot, keys) -> dict:
    if snap.options["llc_chains"] == 0:
        return {}
    return estimate(snap.model, snap.cfg, snap.data, snap.options, snap.logits.shape[1])


def _summary(rows, keys, snap) -> dict:
    if "llc_chains" not in rows[-1]:
        return {}
    o = snap.options
    diverged = sum(len(r["llc_diverged"]) for r in rows)
    return {"llc": rows[-1]["llc"], "llc_diverged_chains": diverged, "llc_settings": {
        "chains": o["llc_chains"], "draws": o["llc_draws"], "lr": o["llc_lr"], "localization": o["llc_localization"],
        "nbeta": nbeta_of(o), "batch": o["llc_batch"], "estimator": "devinterp.slt.sampling.sample + compute_llc"}}


def _lines(r: dict) -> list[str]:
    if "llc_settings" not in r:
        return []
    s = r["llc_settings"]
    rows = [x for x in r["snapshots"] if x.get("llc") is not None]
    say = [f"local learning coefficient {_fmt(r['llc'])} at the last snapshot ({s['chains']} chains x {s['draws']} "
           f"draws, step {s['lr']:g}, localization {s['localization']:g}, n*beta {s['nbeta']:.3g})"]
    if rows:
        peak = max(rows, key=lambda x: x["llc"])
        say[0] += f"; highest {peak['llc']:.3g} at step {peak['step']:,}"
    if r["llc_diverged_chains"]:
        where = [f"{x['step']:,}" for x in r["snapshots"] if x.get("llc_diverged")]
        say.append(f"LLC: {r['llc_diverged_chains']} chain(s) diverged (left out of the mean) at step(s) "
                   f"{', '.join(where)}: a smaller --llc-lr or a larger --llc-localization keeps them in the basin")
    return say


def _fmt(v) -> str:
    return "n/a (every chain diverged)" if v is None else f"{v:.3g}"


def draw_llc(ax, steps, rows, result) -> None:
    """The LLC over the snapshots: the mean of the chains that stayed, each chain a dot, a diverged one a cross."""
    pairs = [(s, r) for s, r in zip(steps, rows) if "llc_chains" in r]
    if not pairs:
        ax.text(0.5, 0.5, "LLC skipped (--llc-chains 0)", ha="center", va="center", transform=ax.transAxes)
        return
    xs = [s for s, _ in pairs]
    ax.plot(xs, [float("nan") if r["llc"] is None else r["llc"] for _, r in pairs], "o-", ms=3, color="tab:green",
            label="LLC (mean of chains)")
    for s, r in pairs:
        ok = [v for i, v in enumerate(r["llc_chains"]) if i not in r["llc_diverged"]]
        bad = [v for i, v in enumerate(r["llc_chains"]) if i in r["llc_diverged"]]
        ax.plot([s] * len(ok), ok, ".", ms=2, color="tab:green", alpha=0.4)
        if bad:
            ax.plot([s] * len(bad), bad, "x", ms=4, color="tab:red")
    ax.set(ylabel="local learning coefficient", title="LLC (dots: chains; x: diverged)")


LLC = Analysis(
    "llc", "the local learning coefficient at each snapshot (devinterp's SGLD estimator; diverged chains reported "
    "and left out)",
    applies=lambda cfg: available(), measure=_measure, summary=_summary, lines=_lines,
    series=(Series("llc", "local learning coefficient"),), panel=draw_llc,
    fields=(CHAINS, DRAWS, LR, LOCALIZATION, NBETA, BATCH))
