"""A trained run's weights in other tools' formats.

- **safetensors** (``to_safetensors``, ``groklab export RUN --to safetensors OUT``): ``OUT/model.safetensors``
  (the parameters by their groklab names, float32) and ``OUT/config.json`` (the run's config, the step, and
  the groklab version); ``load_safetensors(OUT)`` gives back the ``groklab.models.Model``.
- **TransformerLens** (``hooked_transformer``, ``groklab export RUN --to transformer-lens OUT``): a
  ``HookedTransformer`` with the same weights and the same function (logits over the answer symbols), so
  TransformerLens's hooks and tools work on a groklab model. ``OUT`` holds ``model.pt`` (its state dict) and
  ``hooked_transformer_config.json``; ``load_hooked_transformer(OUT)`` builds it again. TransformerLens has
  pre-LayerNorm and no-LayerNorm transformers, so norm ``pre`` and ``none`` export; ``post`` (the paper's) and
  the MLP model do not, and the quadratic activation has no TransformerLens counterpart. Needs
  ``pip install groklab[interp]`` (TransformerLens 2.x-3.x: 4.0 removed ``HookedTransformer``).

``hook_names(n_layers)`` maps the names of groklab's activation cache (``Model.run_with_cache``) to
TransformerLens's hook names.

    from groklab.export import hooked_transformer
    model = hooked_transformer("runs/add97-pre")
    logits, cache = model.run_with_cache(tokens)        # tokens: groklab.data.TokenLayout(n).tokens(x, y)
    cache["blocks.0.attn.hook_pattern"]
"""

from __future__ import annotations

import io
import json
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from . import rundir
from ._version import __version__
from .config import RunConfig
from .data import TokenLayout
from .errors import ConfigError
from .lazy import lazy
from .models import get_model
from .tasks import shape_of

if TYPE_CHECKING:
    from .models.module import Model

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy("torch")
safetensors_torch = lazy("safetensors.torch")

FORMATS = ("safetensors", "transformer-lens")
TL_ACT = {"relu": "relu", "gelu": "gelu"}  # F.relu, F.gelu (exact): TransformerLens's relu and gelu
TL_NORM = {"pre": "LN", "none": None}


def _weights(run_dir: Path, step: int | None) -> tuple[RunConfig, "Model", int]:
    """A run's config, and its model at ``step`` (a snapshot's step; None: the final checkpoint)."""
    run_dir = Path(run_dir)
    cfg = rundir.load_config(run_dir)  # refuses a folder that is not a run directory
    if step is None:
        ckpt = rundir.load_checkpoint(run_dir, cfg)
        return cfg, rundir.model_of(cfg, ckpt["params"]), int(ckpt["step"])
    files = dict(rundir.snapshot_files(run_dir))
    if step not in files:
        raise ConfigError(f"step {step} is not a snapshot of {str(run_dir)!r}; its snapshots: "
                          f"{', '.join(map(str, files)) or 'none (train with --snapshots N)'}")
    return cfg, rundir.load_snapshot(files[step], run_dir), step


def _check_out(out: Path) -> Path:
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{str(out)!r} exists and is not an empty folder; choose a new one")
    return out


def _write(out: Path, files: dict[str, bytes]) -> None:
    """Write every file into a new folder, or nothing: a failure leaves no half-written export."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = rundir.folder_beside(out)
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# -- safetensors --------------------------------------------------------------------------


def to_safetensors(run_dir, out, step: int | None = None) -> Path:
    """Write ``out/model.safetensors`` and ``out/config.json`` from a run (its final weights, or a snapshot)."""
    out = _check_out(out)
    cfg, model, at = _weights(run_dir, step)
    tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in model.state().items()}
    meta = {"format": "groklab-safetensors-1", "groklab_version": __version__, "step": at, "model": cfg.model,
            "n_symbols": shape_of(cfg).n_symbols, "config": cfg.to_dict()}
    _write(out, {"model.safetensors": safetensors_torch.save(tensors, metadata={"groklab": json.dumps({"step": at})}),
                 "config.json": (json.dumps(meta, indent=2) + "\n").encode()})
    return out


def load_safetensors(folder) -> "Model":
    """The ``groklab.models.Model`` of an export written by ``to_safetensors``."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "config.json").read_text())
        params = safetensors_torch.load_file(str(folder / "model.safetensors"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{str(folder)!r} is not a groklab safetensors export: {e}") from None
    cfg = RunConfig.from_dict(meta["config"])
    model = rundir.model_of(cfg, params)
    if set(model.state()) != set(params):
        raise ConfigError(f"{str(folder)!r}: its tensors do not match a {cfg.model} of its config")
    return model


# -- TransformerLens ----------------------------------------------------------------------


def tl_config_dict(cfg: RunConfig) -> dict:
    """The ``HookedTransformerConfig`` arguments of a run, or a one-line ConfigError where TransformerLens has no
    equivalent."""
    if cfg.model != "transformer":
        raise ConfigError(f"model {cfg.model!r} has no TransformerLens equivalent; only the transformer exports")
    if cfg.norm not in TL_NORM:
        raise ConfigError(f"norm {cfg.norm!r} (LayerNorm after each sublayer) has no TransformerLens equivalent; "
                          "transformers trained with norm 'pre' or 'none' export")
    if cfg.act not in TL_ACT:
        raise ConfigError(f"act {cfg.act!r} has no TransformerLens equivalent; allowed: {', '.join(TL_ACT)}")
    mcfg = get_model("transformer").config(cfg, shape_of(cfg))
    n = mcfg.n_symbols
    return {"n_layers": cfg.n_layers, "d_model": cfg.d_model, "n_ctx": mcfg.n_ctx,
            "d_head": cfg.d_model // cfg.n_heads, "n_heads": cfg.n_heads, "d_mlp": cfg.d_mlp,
            "d_vocab": TokenLayout(n).d_vocab, "d_vocab_out": n, "act_fn": TL_ACT[cfg.act],
            "normalization_type": TL_NORM[cfg.norm], "positional_embedding_type": "standard",
            "default_prepend_bos": False, "seed": cfg.seed, "device": "cpu"}


def _tl_state(model: "Model") -> dict[str, Tensor]:
    """groklab's parameter names are TransformerLens's but for the embeddings' module prefixes."""
    rename = {"W_E": "embed.W_E", "W_pos": "pos_embed.W_pos", "W_U": "unembed.W_U", "b_U": "unembed.b_U"}
    return {rename.get(k, k): v.detach().clone() for k, v in model.state().items()}


def _build(config: dict, state: dict[str, Tensor]):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from transformer_lens import HookedTransformer, HookedTransformerConfig
    except ImportError:
        raise ConfigError("the TransformerLens export needs TransformerLens 2.x-3.x: "
                          "pip install 'groklab[interp]'") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        tl = HookedTransformer(HookedTransformerConfig(**config))
    missing, unexpected = tl.load_state_dict(state, strict=False)
    left = [k for k in missing if not k.endswith((".attn.mask", ".attn.IGNORE"))]  # TransformerLens's own buffers
    if left or unexpected:
        raise ConfigError(f"the weights do not fit TransformerLens's model: missing {left}, unexpected {unexpected}")
    return tl.eval()


def hooked_transformer(run_or_model, step: int | None = None):
    """A ``transformer_lens.HookedTransformer`` with the weights of a run directory (final, or the snapshot at
    ``step``) or of a ``groklab.models.Model`` together with its ``RunConfig`` (``(model, cfg)``)."""
    if isinstance(run_or_model, tuple):
        model, cfg = run_or_model
    else:
        cfg, model, _ = _weights(run_or_model, step)
    return _build(tl_config_dict(cfg), _tl_state(model))


def to_transformer_lens(run_dir, out, step: int | None = None) -> Path:
    """Write ``out/model.pt`` (a HookedTransformer state dict) and ``out/hooked_transformer_config.json``."""
    config = tl_config_dict(rundir.load_config(run_dir))  # refuse before reading the weights
    out = _check_out(out)
    tl = hooked_transformer(run_dir, step)
    buf = io.BytesIO()
    torch.save(tl.state_dict(), buf)
    _write(out, {"model.pt": buf.getvalue(),
                 "hooked_transformer_config.json": (json.dumps(config, indent=2) + "\n").encode()})
    return out


def load_hooked_transformer(folder):
    """The ``HookedTransformer`` of an export written by ``to_transformer_lens``."""
    folder = Path(folder)
    try:
        config = json.loads((folder / "hooked_transformer_config.json").read_text())
        state = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError) as e:
        raise ConfigError(f"{str(folder)!r} is not a groklab TransformerLens export: {e}") from None
    return _build(config, state)


def hook_names(n_layers: int) -> dict[str, str]:
    """groklab's activation cache names -> TransformerLens hook names (same tensors, same shapes)."""
    out = {"resid_final": f"blocks.{n_layers - 1}.hook_resid_post"}
    for l in range(n_layers):
        out[f"blocks.{l}.resid_pre"] = f"blocks.{l}.hook_resid_pre"
        out[f"blocks.{l}.attn.pattern"] = f"blocks.{l}.attn.hook_pattern"
        out[f"blocks.{l}.mlp.post"] = f"blocks.{l}.mlp.hook_post"
    return out


def export(run_dir, to: str, out, step: int | None = None) -> Path:
    """``groklab export``: write a run's weights in format ``to`` (one of ``FORMATS``)."""
    if to not in FORMATS:
        raise ConfigError(f"export format {to!r} is not allowed; allowed: {', '.join(FORMATS)}")
    return (to_safetensors if to == "safetensors" else to_transformer_lens)(run_dir, out, step)
