"""Looking inside: Fourier norms, key frequencies and Gini, restricted / excluded losses, sharpness, embeddings,
snapshots, and groklab analyze on a run that really grokked."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from groklab import RunConfig, rundir, train
from groklab.analysis import analyze, embeddings, fourier, phases, sharpness
from groklab.cli import main
from groklab.models import Model, get_model


def _wave(p, k, phase=0.0):
    x = torch.arange(p, dtype=torch.float64)
    return torch.cos(2 * math.pi * k * x / p + phase)


def test_fourier_norms_of_a_planted_embedding_find_exactly_its_frequencies():
    p, g = 23, torch.Generator().manual_seed(0)
    waves = torch.stack([_wave(p, 3), _wave(p, 3, math.pi / 2), _wave(p, 7, 0.4), _wave(p, 7, 0.4 + math.pi / 2)], 1)
    W = waves @ torch.randn(4, 16, generator=g, dtype=torch.float64) + 0.05 * torch.randn(p, 16, generator=g,
                                                                                          dtype=torch.float64)
    norms = fourier.frequency_norms(W)
    assert norms.shape == (p // 2 + 1,)
    assert fourier.key_frequencies(norms) == [3, 7]
    random = torch.randn(p, 16, generator=g, dtype=torch.float64)
    assert fourier.fourier_gini(W) > 0.7 > 0.3 > fourier.fourier_gini(random)
    # Parseval: the basis is orthonormal, so the norms add up to the matrix's
    assert torch.isclose((norms ** 2).sum(), W.pow(2).sum())


def test_gini_of_known_vectors():
    assert fourier.gini([1, 1, 1, 1]) == 0.0
    assert fourier.gini([0, 0, 0, 1]) == pytest.approx(0.75)
    assert fourier.gini([0, 0]) == 0.0


def test_restricted_and_excluded_logits_split_a_planted_fourier_circuit():
    """Logits cos(2 pi k (x + y - z) / p) on key k, plus noise: restricting to k keeps the circuit (loss as low as
    the circuit's), excluding k leaves the noise (loss near chance)."""
    p, k = 13, 4
    x, y = (t.flatten() for t in torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij"))
    z = (x + y) % p
    circuit = 40 * torch.cos(2 * math.pi * k * ((x + y)[:, None] - torch.arange(p)[None, :]) / p)
    noise = 0.3 * torch.randn(p * p, p, generator=torch.Generator().manual_seed(0))
    logits = (circuit + noise).float()
    restricted, excluded = fourier.project_logits(logits, "add", [k])
    torch.testing.assert_close(restricted - restricted.mean(1, keepdim=True),
                               (circuit - circuit.mean(1, keepdim=True)).float(), atol=0.15, rtol=0)
    train = torch.rand(p * p, generator=torch.Generator().manual_seed(1)) < 0.5
    r, e = fourier.restricted_excluded_loss(logits, z, train, "add", [k])
    assert r < 0.05 and e > 0.8 * math.log(p)


def _tiny_model(seed=0):
    cfg = RunConfig(task="add", modulus=5, d_model=8, n_heads=2, d_mlp=8, n_layers=1)
    spec = get_model("transformer")
    params = spec.init(spec.config(cfg, 5), [seed])
    return Model(spec, spec.config(cfg, 5), {k: v[0] for k, v in params.items()}), cfg


def test_top_hessian_eigenvalue_matches_a_direct_hessian_on_a_tiny_model():
    model, _ = _tiny_model()
    x, y = (t.flatten() for t in torch.meshgrid(torch.arange(5), torch.arange(5), indexing="ij"))
    z = (x + y) % 5
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat0 = torch.cat([p.detach().flatten() for p in model.parameters()]).double()

    def loss_of(flat):
        params, i = {}, 0
        for n, s in zip(names, shapes):
            params[n.split(".", 1)[1].replace("__", ".")] = flat[i: i + s.numel()].view(s).unsqueeze(0)
            i += s.numel()
        logits = model.spec.answer_logits(params, x[None], y[None], model.cfg)[0]
        return F.cross_entropy(logits, z)

    H = torch.autograd.functional.hessian(loss_of, flat0)
    eig = torch.linalg.eigvalsh(H)
    want = eig[eig.abs().argmax()].item()
    model.double()
    got = sharpness.top_hessian_eigenvalue(model, x, y, z, iters=500, tol=1e-10)
    assert got == pytest.approx(want, rel=1e-4)


def test_perturbation_sharpness_restores_the_weights_and_is_zero_without_noise():
    model, _ = _tiny_model()
    x, y = torch.arange(5), torch.arange(5)
    before = [p.detach().clone() for p in model.parameters()]
    assert sharpness.perturbation_sharpness(model, x, y, (x + y) % 5, relative=0.0) == 0.0
    assert sharpness.perturbation_sharpness(model, x, y, (x + y) % 5, relative=0.5) != 0.0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_frequency_plane_puts_residues_on_a_circle():
    p, k = 17, 5
    g = torch.Generator().manual_seed(0)
    W = torch.stack([_wave(p, k), _wave(p, k, math.pi / 2)], 1) @ torch.randn(2, 12, generator=g, dtype=torch.float64)
    xy = embeddings.frequency_plane(W, k)
    radius = np.linalg.norm(xy, axis=1)
    assert radius.std() / radius.mean() < 0.3
    steps = np.abs(np.diff(np.arctan2(xy[:, 1], xy[:, 0])))  # consecutive residues: 2 pi k / p apart
    assert np.allclose(np.minimum(steps, 2 * np.pi - steps), 2 * np.pi * k / p, atol=0.3)


def test_s5_labels_cosets_and_cycle_types():
    lab = embeddings.labels("s5_mul", 120)
    cosets, types = lab["coset of S4 (sigma(4))"], lab["cycle type"]
    assert sorted(set(cosets)) == [0, 1, 2, 3, 4] and all(cosets.count(c) == 24 for c in range(5))
    assert types[0] == "1+1+1+1+1" and types.count("2+1+1+1") == 10 and types.count("5") == 24


def test_phases_read_off_the_curves():
    steps = [0, 10, 20, 30, 40, 50]
    ph = phases(steps, [0.1, 0.995, 1, 1, 1, 1], [0.0, 0.0, 0.1, 0.4, 0.7, 0.995])
    assert ph == {"memorization": [0, 10], "circuit_formation": [10, 30], "cleanup": [30, 50]}
    assert phases(steps, [0.1] * 6, [0.0] * 6)["circuit_formation"] is None


@pytest.fixture(scope="module")
def grokked(tmp_path_factory):
    """x + y mod 23 on 80% of the table (the quick preset), kept at ~30 log-spaced steps."""
    out = tmp_path_factory.mktemp("run") / "add23"
    cfg = RunConfig.from_dict({"snapshots": 30}, preset="quick")
    result = train(cfg, out=out)
    assert result.summary["status"] == "generalized"
    return out


def test_snapshots_are_log_spaced_and_the_last_is_the_final_model(grokked):
    files = rundir.snapshot_files(grokked)
    steps = [s for s, _ in files]
    summary = rundir.read_summary(grokked)
    assert steps[0] == 0 and steps[-1] == summary["steps_run"] and 15 <= len(steps) <= 31
    assert set(steps[:-1]) <= set(rundir.snapshot_steps(5000, 30))
    last = rundir.load_snapshot(files[-1][1])
    final = rundir.load_model(grokked)
    assert all(torch.equal(last[n], final[n]) for n in final.state())


def test_a_grokked_run_uses_a_few_frequencies_and_its_restricted_loss_falls_first(grokked):
    result = analyze(grokked, sharpness_examples=128, sharpness_iters=10)
    snaps = result["snapshots"]
    keys = result["key_frequencies"]
    assert 1 <= len(keys) <= 6
    first, last = snaps[0], snaps[-1]
    share = lambda s: np.sum(np.array(s["embedding_norms"])[keys] ** 2) / np.sum(np.array(s["embedding_norms"])[1:] ** 2)  # noqa: E731
    assert share(last) > 0.6 and share(last) > share(first) + 0.2
    assert last["fourier_gini"] > 3 * first["fourier_gini"]
    # memorized, validation accuracy still under one half: the restricted loss has fallen, the validation loss not
    before = [s for s in snaps if s["train_acc"] >= 0.99 and s["val_acc"] < 0.5]
    assert before, "no snapshot between memorization and generalization"
    s = before[0]
    assert s["restricted_loss"] < 0.5 * first["restricted_loss"] and s["restricted_loss"] < 0.5 * s["val_loss"]
    assert all(r["zero_loss_frac"] == 0.0 for r in snaps)  # weight decay keeps softmax collapse away
    assert result["phases"]["memorization"][1] < result["phases"]["cleanup"][1]


def test_groklab_analyze_writes_its_files_and_refuses_bad_input(grokked, tmp_path, capsys):
    out = tmp_path / "analysis"
    assert main(["analyze", str(grokked), "--out", str(out), "--no-tsne", "--sharpness-examples", "64",
                 "--quiet"]) == 0
    printed = capsys.readouterr()
    assert "key frequencies" in printed.out and "restricted excluded yes" in printed.err
    data = json.loads((out / "analysis.json").read_text())
    assert {"key_frequencies", "fourier_gini", "sharpness", "phases", "snapshots"} <= set(data)
    assert all({"step", "sharpness", "fourier_gini", "restricted_loss", "excluded_loss"} <= set(s)
               for s in data["snapshots"])
    assert {p.name for p in out.iterdir()} == {"analysis.json", "progress.png", "embeddings.png", "fourier.png",
                                               "embeddings_over_time.png"}
    assert main(["analyze", str(tmp_path / "missing")]) == 2
    assert main(["analyze", str(grokked), "--sharpness-examples", "0"]) == 2
    assert main(["analyze"]) == 2
    assert "give a run directory" in capsys.readouterr().err


@pytest.mark.parametrize("setting", [{"loss": "mse"}, {"loss": "stablemax"},
                                     {"loss": "stablemax", "loss_precision": "fp32", "label_noise": 0.1}])
def test_analysis_at_the_last_snapshot_equals_the_last_metrics_row(tmp_path, setting):
    """analyze measures a run with the run's own loss (in its precision) and the engine's own evaluation: on the
    weights of its last snapshot it reports what metrics.csv logged at that step, bit for bit."""
    cfg = RunConfig(task="add", modulus=11, train_fraction=0.6, d_model=32, n_heads=2, d_mlp=64, lr=3e-3,
                    steps=120, early_stop=False, snapshots=4, **setting)
    train(cfg, out=tmp_path / "run")
    last = analyze(tmp_path / "run", sharpness_examples=16, sharpness_iters=2)["snapshots"][-1]
    row = rundir.read_metrics(tmp_path / "run")[-1]
    assert last["step"] == row["step"] == 120
    columns = ("train_loss", "train_acc", "val_loss", "val_acc", "zero_loss_frac", "weight_norm")
    assert {k: last[k] for k in columns} == {k: row[k] for k in columns}
    assert last["restricted_loss"] > 0 and last["sharpness"] == last["sharpness"]  # measured in the run's loss
