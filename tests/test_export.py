import json

import pytest
import torch

from groklab import RunConfig, rundir
from groklab.cli import main
from groklab.data import TokenLayout
from groklab.errors import ConfigError
from groklab.export import hook_names, load_hooked_transformer, load_safetensors, to_safetensors
from groklab.train import train


def _table(p: int):
    x, y = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    return x.flatten(), y.flatten()


@pytest.fixture(scope="module")
def pre_run(tmp_path_factory):
    """x - y mod 13, norm pre, trained 150 updates (snapshots kept), gelu: a run TransformerLens can take."""
    out = tmp_path_factory.mktemp("runs") / "pre"
    cfg = RunConfig(task="sub", modulus=13, train_fraction=0.6, d_model=32, n_heads=4, d_mlp=64, norm="pre",
                    act="gelu", steps=150, early_stop=False, snapshots=3)
    train(cfg, out)
    return out


@pytest.mark.parametrize("norm", ["pre", "none"])
def test_hooked_transformer_computes_groklabs_logits_on_the_whole_table(norm, pre_run, tmp_path):
    pytest.importorskip("transformer_lens")
    if norm == "pre":
        run = pre_run
    else:
        run = tmp_path / "none"
        train(RunConfig(task="add", modulus=11, train_fraction=0.5, n_layers=1, d_model=16, n_heads=2, d_mlp=32,
                        norm="none", steps=60, early_stop=False), run)
    cfg = rundir.load_config(run)
    model = rundir.load_model(run)
    p = cfg.modulus
    x, y = _table(p)
    tokens = TokenLayout(p).tokens(x, y)
    assert main(["export", str(run), "--to", "transformer-lens", str(tmp_path / "tl")]) == 0
    tl = load_hooked_transformer(tmp_path / "tl")
    with torch.no_grad():
        ours, cache = model.run_with_cache(tokens)
        theirs, tl_cache = tl.run_with_cache(tokens)
    assert theirs.shape == ours.shape == (p * p, 4, p)
    torch.testing.assert_close(theirs, ours, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(theirs[:, -1], model.answer_logits(x, y), rtol=1e-4, atol=1e-4)
    names = hook_names(cfg.n_layers)
    assert set(cache) == set(names)  # every cached activation has its TransformerLens hook
    for ours_name, tl_name in names.items():
        torch.testing.assert_close(tl_cache[tl_name], cache[ours_name], rtol=1e-4, atol=1e-4)


def test_post_layernorm_and_the_mlp_say_in_one_line_they_do_not_export(tiny, tmp_path, capsys):
    train(tiny.replace(steps=5), tmp_path / "post")
    assert main(["export", str(tmp_path / "post"), "--to", "transformer-lens", str(tmp_path / "tl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "norm 'post'" in err and "'pre' or 'none'" in err
    assert not (tmp_path / "tl").exists()
    train(RunConfig(task="add", modulus=7, model="mlp", steps=5), tmp_path / "mlp")
    assert main(["export", str(tmp_path / "mlp"), "--to", "transformer-lens", str(tmp_path / "tl")]) == 2
    assert "model 'mlp' has no TransformerLens equivalent" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "mlp"), "--to", "onnx", str(tmp_path / "o")]) == 2
    assert "export format 'onnx' is not allowed" in capsys.readouterr().err


def test_safetensors_export_loads_back_into_the_same_model(pre_run, tmp_path):
    model = rundir.load_model(pre_run)
    assert main(["export", str(pre_run), "--to", "safetensors", str(tmp_path / "st")]) == 0
    assert sorted(p.name for p in (tmp_path / "st").iterdir()) == ["config.json", "model.safetensors"]
    assert (tmp_path / "st").stat().st_mode & 0o777 == pre_run.stat().st_mode & 0o777  # as a run directory is
    meta = json.loads((tmp_path / "st" / "config.json").read_text())
    assert meta["step"] == 150 and meta["config"]["norm"] == "pre"
    back = load_safetensors(tmp_path / "st")
    assert all(torch.equal(back[k], model[k]) for k in model.state())
    x, y = _table(13)
    assert torch.equal(back.answer_logits(x, y), model.answer_logits(x, y))
    # a snapshot's weights, and an export folder that is not empty is refused
    step = rundir.snapshot_files(pre_run)[1][0]
    first = load_safetensors(to_safetensors(pre_run, tmp_path / "snap", step=step))
    assert not torch.equal(first["W_E"], model["W_E"])
    with pytest.raises(ConfigError, match="not an empty folder"):
        to_safetensors(pre_run, tmp_path / "st")
    with pytest.raises(ConfigError, match="not a snapshot"):
        to_safetensors(pre_run, tmp_path / "x", step=7)
