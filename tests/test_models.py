import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from groklab.models import ModelConfig, Transformer, forward, forward_answer, init_params, n_params
from groklab.tasks import tokens

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from reference import ReferenceTransformer, load_groklab_params  # noqa: E402


def test_paper_model_has_about_4e5_non_embedding_parameters():
    n = n_params(ModelConfig(n_symbols=97))
    assert 3.5e5 < n < 4.5e5
    assert n == 2 * (4 * 128 * 128 + 4 * 128 + 2 * 128 * 512 + 512 + 128 + 4 * 128)


@pytest.mark.parametrize("norm", ["post", "pre", "none"])
@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_fast_answer_path_equals_full_forward_logits_and_gradients(norm, n_layers):
    cfg = ModelConfig(n_symbols=13, n_layers=n_layers, d_model=32, n_heads=4, d_mlp=64, norm=norm, act="gelu")
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
    cfg = ModelConfig(n_symbols=17)
    params = {k: v[0] for k, v in init_params(cfg, [5]).items()}
    ref = ReferenceTransformer(19, 17)
    load_groklab_params(ref, params)
    x, y = torch.randint(0, 17, (64,)), torch.randint(0, 17, (64,))
    want = ref(tokens(x, y, 17))
    torch.testing.assert_close(Transformer(cfg, params)(tokens(x, y, 17)), want, atol=1e-5, rtol=1e-5)
    got = forward_answer({k: v[None] for k, v in params.items()}, x[None], y[None], cfg)[0]
    torch.testing.assert_close(got, want[:, -1], atol=1e-5, rtol=1e-5)


def test_attention_is_causal():
    """The logits at position i do not depend on the tokens after i (checked through gradients)."""
    cfg = ModelConfig(n_symbols=7, d_model=32, d_mlp=64)
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
    cfg = ModelConfig(n_symbols=11, d_model=32, d_mlp=64)
    stacked = init_params(cfg, [0, 1, 2])
    x, y = torch.randint(0, 11, (3, 20)), torch.randint(0, 11, (3, 20))
    out = forward_answer(stacked, x, y, cfg)
    for e, seed in enumerate([0, 1, 2]):
        alone = init_params(cfg, [seed])
        torch.testing.assert_close(out[e], forward_answer(alone, x[e:e + 1], y[e:e + 1], cfg)[0])


def test_run_with_cache_exposes_attention_patterns():
    cfg = ModelConfig(n_symbols=7, d_model=32, d_mlp=64)
    logits, cache = Transformer(cfg).run_with_cache(tokens(torch.arange(7), torch.arange(7), 7))
    pattern = cache["blocks.0.attn.pattern"]
    assert pattern.shape == (7, 4, 4, 4)  # batch heads query key
    torch.testing.assert_close(pattern.sum(-1), torch.ones(7, 4, 4))
    assert pattern[:, :, 0, 1:].abs().max() == 0
