import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from groklab.data import tokens
from groklab.models import MODELS, Model, Transformer, TransformerConfig, get_model
from groklab.models.stacked import Dropout, gather_rows, layer_norm, linear
from groklab.models.transformer import forward, forward_answer

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from reference import ReferenceTransformer, load_groklab_params  # noqa: E402

SPEC = get_model("transformer")


def init_params(cfg, seeds):
    return SPEC.init(cfg, seeds)


def test_paper_model_has_about_4e5_non_embedding_parameters():
    n = SPEC.n_params(TransformerConfig(n_symbols=97))
    assert 3.5e5 < n < 4.5e5
    assert n == 2 * (4 * 128 * 128 + 4 * 128 + 2 * 128 * 512 + 512 + 128 + 4 * 128)


@pytest.mark.parametrize("norm", ["post", "pre", "none"])
@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_fast_answer_path_equals_full_forward_logits_and_gradients(norm, n_layers):
    cfg = TransformerConfig(n_symbols=13, n_layers=n_layers, d_model=32, n_heads=4, d_mlp=64, norm=norm, act="gelu")
    p_full = init_params(cfg, [0, 1])
    p_fast = {k: v.clone().requires_grad_(True) for k, v in p_full.items()}
    for v in p_full.values():
        v.requires_grad_(True)
    g = torch.Generator().manual_seed(0)
    x, y, z = (torch.randint(0, 13, (2, 40), generator=g) for _ in range(3))
    full = forward(p_full, tokens(x, y, 13), cfg)[:, :, -1]
    fast = forward_answer(p_fast, x, y, cfg)
    torch.testing.assert_close(fast, full, atol=1e-5, rtol=1e-5)
    F.cross_entropy(full.flatten(0, 1), z.flatten()).backward()
    F.cross_entropy(fast.flatten(0, 1), z.flatten()).backward()
    for k in p_full:
        torch.testing.assert_close(p_fast[k].grad, p_full[k].grad, atol=1e-5, rtol=1e-4, msg=k)


def test_matches_a_plain_pytorch_reference_transformer():
    cfg = TransformerConfig(n_symbols=17)
    params = {k: v[0] for k, v in init_params(cfg, [5]).items()}
    ref = ReferenceTransformer(19, 17)
    load_groklab_params(ref, params)
    x, y = torch.randint(0, 17, (64,)), torch.randint(0, 17, (64,))
    want = ref(tokens(x, y, 17))
    torch.testing.assert_close(Transformer(cfg, params)(tokens(x, y, 17)), want, atol=1e-5, rtol=1e-5)
    got = forward_answer({k: v[None] for k, v in params.items()}, x[None], y[None], cfg)[0]
    torch.testing.assert_close(got, want[:, -1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(Transformer(cfg, params).answer_logits(x, y), want[:, -1], atol=1e-5, rtol=1e-5)


def test_attention_is_causal():
    """The logits at position i do not depend on the tokens after i (checked through gradients)."""
    cfg = TransformerConfig(n_symbols=7, d_model=32, d_mlp=64)
    model = Transformer(cfg)
    emb = model["W_E"]
    toks = tokens(torch.tensor([1, 2]), torch.tensor([3, 4]), 7)
    logits = model(toks)
    for pos in range(3):
        grad = torch.autograd.grad(logits[:, pos].sum(), emb, retain_graph=True)[0]
        later = toks[:, pos + 1:].unique()
        earlier = toks[:, : pos + 1].unique()
        only_later = [t for t in later.tolist() if t not in earlier.tolist()]
        assert grad[only_later].abs().max() == 0


def test_ensemble_members_are_independent_models():
    cfg = TransformerConfig(n_symbols=11, d_model=32, d_mlp=64)
    stacked = init_params(cfg, [0, 1, 2])
    x, y = torch.randint(0, 11, (3, 20)), torch.randint(0, 11, (3, 20))
    out = forward_answer(stacked, x, y, cfg)
    for e, seed in enumerate([0, 1, 2]):
        alone = init_params(cfg, [seed])
        torch.testing.assert_close(out[e], forward_answer(alone, x[e:e + 1], y[e:e + 1], cfg)[0])


def test_run_with_cache_exposes_attention_patterns():
    cfg = TransformerConfig(n_symbols=7, d_model=32, d_mlp=64)
    logits, cache = Transformer(cfg).run_with_cache(tokens(torch.arange(7), torch.arange(7), 7))
    pattern = cache["blocks.0.attn.pattern"]
    assert pattern.shape == (7, 4, 4, 4)  # batch heads query key
    torch.testing.assert_close(pattern.sum(-1), torch.ones(7, 4, 4))
    assert pattern[:, :, 0, 1:].abs().max() == 0


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registered_model_stacks_members_independently_and_answers_like_its_full_forward(name):
    """The contract the engine relies on, for each model in the registry."""
    spec = MODELS[name]
    from groklab import RunConfig

    mcfg = spec.config(RunConfig(model=name, modulus=11, d_model=32, n_heads=4, d_mlp=64), 11)
    stacked = spec.init(mcfg, [0, 1, 2], [1.0, 1.0, 2.0])
    x, y = torch.randint(0, 11, (3, 20)), torch.randint(0, 11, (3, 20))
    out = spec.answer_logits(stacked, x, y, mcfg)
    assert out.shape == (3, 20, 11)
    full = spec.forward(stacked, tokens(x, y, 11), mcfg)[:, :, -1]
    torch.testing.assert_close(out, full, atol=1e-5, rtol=1e-5)
    alone = spec.init(mcfg, [2], [2.0])
    torch.testing.assert_close(out[2], spec.answer_logits(alone, x[2:], y[2:], mcfg)[0])
    assert {k: v.shape[1:] for k, v in stacked.items()} == {k: p.shape for k, p in spec.param_shapes(mcfg).items()}


def test_init_scale_multiplies_the_random_initialization_only():
    cfg = TransformerConfig(n_symbols=7, d_model=16, n_heads=2, d_mlp=16)
    one, three = SPEC.init(cfg, [4], [1.0]), SPEC.init(cfg, [4], [3.0])
    torch.testing.assert_close(three["blocks.0.mlp.W_in"], 3 * one["blocks.0.mlp.W_in"])
    torch.testing.assert_close(three["W_E"], 3 * one["W_E"])
    assert torch.equal(three["blocks.0.ln1.w"], one["blocks.0.ln1.w"])  # LayerNorm gains stay 1


def test_stacked_primitives_equal_per_member_computation():
    g = torch.Generator().manual_seed(0)
    h, W, b = torch.randn(3, 5, 4, generator=g), torch.randn(3, 4, 6, generator=g), torch.randn(3, 6, generator=g)
    w, c = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    for e in range(3):
        torch.testing.assert_close(linear(h, W, b)[e], h[e] @ W[e] + b[e])
        torch.testing.assert_close(layer_norm(h, w, c)[e], torch.nn.functional.layer_norm(h[e], (4,), w[e], c[e]))
    table, index = torch.randn(3, 7, 2, generator=g), torch.randint(0, 7, (3, 5), generator=g)
    for e in range(3):
        assert torch.equal(gather_rows(table, index)[e], table[e][index[e]])


def test_dropout_masks_are_per_member_and_the_same_alone_or_in_a_group():
    def gens(*seeds):
        return [torch.Generator().manual_seed(s) for s in seeds]

    h = torch.ones(2, 1000, 8)
    out = Dropout(0.25, gens(1, 2))(h)
    zeros = (out == 0).float()
    assert 0.2 < zeros[0].mean() < 0.3 and 0.2 < zeros[1].mean() < 0.3
    torch.testing.assert_close(out[0].unique(), torch.tensor([0.0, 1 / 0.75]))  # kept ones scaled by 1 / (1 - p)
    alone = Dropout(0.25, gens(2))(torch.ones(1, 1000, 8))
    assert torch.equal(alone[0], out[1])
    assert not torch.equal(out[0], out[1])


def test_models_load_through_the_registry(tmp_path):
    from groklab import RunConfig
    from groklab.rundir import load_model
    from groklab.train import train

    train(RunConfig(task="add", modulus=7, d_model=32, d_mlp=32, steps=20), tmp_path / "R")
    model = load_model(tmp_path / "R")
    assert isinstance(model, Model) and model.spec is MODELS["transformer"]
    assert model["W_E"].shape == (9, 32)


class PlainMLP(torch.nn.Module):
    """The MLP written as a user would in plain PyTorch, one model, for comparison."""

    def __init__(self, n_symbols, d_model, d_mlp, n_layers, act, embed):
        super().__init__()
        self.embed = embed
        self.E = torch.nn.Embedding(n_symbols, d_model)
        self.E_y = torch.nn.Embedding(n_symbols, d_model) if embed == "sum" else None
        d_in = 2 * d_model if embed == "concat" else d_model
        self.layers = torch.nn.ModuleList(torch.nn.Linear(d_in if i == 0 else d_mlp, d_mlp) for i in range(n_layers))
        self.out = torch.nn.Linear(d_mlp, n_symbols)
        self.act = {"relu": torch.relu, "gelu": F.gelu, "quadratic": lambda h: h * h}[act]

    def forward(self, x, y):
        h = self.E(x) + self.E_y(y) if self.embed == "sum" else torch.cat([self.E(x), self.E(y)], -1)
        for layer in self.layers:
            h = self.act(layer(h))
        return self.out(h)


@pytest.mark.parametrize("embed,act,n_layers", [("concat", "relu", 2), ("sum", "quadratic", 1), ("concat", "gelu", 3)])
def test_mlp_matches_a_plain_pytorch_mlp(embed, act, n_layers):
    from groklab.models import MLPConfig

    cfg = MLPConfig(n_symbols=13, n_layers=n_layers, d_model=8, d_mlp=24, act=act, mlp_embed=embed)
    spec = get_model("mlp")
    params = {k: v[0] for k, v in spec.init(cfg, [3]).items()}
    ref = PlainMLP(13, 8, 24, n_layers, act, embed)
    with torch.no_grad():
        ref.E.weight.copy_(params["W_E"])
        if embed == "sum":
            ref.E_y.weight.copy_(params["W_E_y"])
        for i, layer in enumerate(ref.layers):
            layer.weight.copy_(params[f"layers.{i}.W"].T)
            layer.bias.copy_(params[f"layers.{i}.b"])
        ref.out.weight.copy_(params["W_U"].T)
        ref.out.bias.copy_(params["b_U"])
    x, y = torch.randint(0, 13, (50,)), torch.randint(0, 13, (50,))
    model = Model("mlp", cfg, params)
    torch.testing.assert_close(model.answer_logits(x, y), ref(x, y), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model(tokens(x, y, 13))[:, -1], ref(x, y), atol=1e-5, rtol=1e-5)


def test_mlp_run_memorizes_then_generalizes():
    from groklab import RunConfig
    from groklab.train import train

    s = train(RunConfig(task="add", modulus=23, model="mlp", train_fraction=0.8, d_model=64, d_mlp=256, n_layers=1,
                        lr=3e-3, steps=3000, stop_patience=100)).summary
    assert s["status"] == "generalized" and s["step_train_acc_99"] < s["step_val_acc_99"]
