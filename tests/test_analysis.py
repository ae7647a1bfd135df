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
    # two answers (parity): chance is 1/2, so cleanup starts where validation accuracy passes 3/4, not 1/2
    binary = phases(steps, [0.5, 0.995, 1, 1, 1, 1], [0.5, 0.52, 0.6, 0.7, 0.8, 0.995], chance=0.5)
    assert binary == {"memorization": [0, 10], "circuit_formation": [10, 30], "cleanup": [30, 50]}


@pytest.fixture
def grokked(quick_run):
    """x + y mod 23 on 80% of the table (the quick preset), kept at ~30 log-spaced steps (conftest's run)."""
    summary = rundir.read_summary(quick_run[0])
    assert summary["status"] == "generalized"
    return quick_run[0]


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
                 "--sharpness-iters", "5", "--quiet"]) == 0
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


# -- multiplicative Fourier, group representations, parity (every task's own structure) ---------------------------


def test_a_planted_multiplicative_frequency_is_found_exactly():
    from groklab.analysis import multiplicative

    p, k = 23, 4
    logs = multiplicative.discrete_log(np.arange(p), p)
    angle = 2 * math.pi * k * logs / (p - 1)
    W = torch.tensor(np.stack([np.cos(angle), np.sin(angle)], 1))
    W[0] = 0.0  # the zero residue has no logarithm
    norms = multiplicative.multiplicative_norms(W)
    assert fourier.key_frequencies(norms) == [k]
    assert float(norms[k] ** 2 / (norms ** 2).sum()) == pytest.approx(1.0)
    assert sorted(multiplicative.log_order(p).tolist()) == list(range(1, p))
    assert multiplicative.monomial("custom", {"expression": "3 * x^2 / y", "modulus": 7}) == (2, -1)
    assert multiplicative.monomial("custom", {"expression": "x + y", "modulus": 7}) is None
    assert multiplicative.monomial("mul", {"modulus": 12}) is None  # Z_12^* is not cyclic


GROUPS = ["S3", "S4", "S5", "S6", "A4", "A5", "A6", *[f"D{n}" for n in range(3, 31)], "Z2", "Z7", "Z12", "Z97",
          "Z4xZ6", "S3xZ5", "D4xZ2xZ2", "A4xZ3", "Z10xZ100"]


@pytest.mark.parametrize("name", GROUPS)
def test_characters_of_every_offered_group_are_orthogonal(name):
    from groklab.analysis.representations import character_table, conjugacy_classes, isotypic
    from groklab.groups import get_group

    g = get_group(name)
    t = character_table(g)
    n = g.order
    gram = t.chars @ t.chars.conj().T
    assert np.allclose(gram, n * np.eye(len(t.chars)), atol=1e-6 * n)  # first orthogonality
    assert sum(d * d for d in t.degrees) == n and all(np.allclose(c[0], d) for c, d in zip(t.chars, t.degrees))
    if n <= 200:
        assert len(t.chars) == len(conjugacy_classes(g))
        same_class = np.isclose(t.chars.conj().T @ t.chars, 0, atol=1e-6)  # second orthogonality: 0 across classes
        cls = np.empty(n, int)
        for i, c in enumerate(conjugacy_classes(g)):
            cls[c] = i
        assert np.array_equal(~same_class, cls[:, None] == cls[None, :])
    iso = isotypic(name)
    assert sum(iso.dims) == n and iso.names[0] in ("1a", "k0") or iso.names[0].startswith(("1a", "k0"))


def test_an_embedding_that_lives_in_one_irrep_is_found_in_it():
    from groklab.analysis.representations import irrep_shares, isotypic, key_irreps

    iso = isotypic("S4")
    target = iso.names.index("3a")
    W = iso.projector([target]) @ torch.randn(24, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    shares = irrep_shares(W, iso).numpy()
    assert shares[target] == pytest.approx(1.0) and key_irreps(shares, iso) == [target]
    P = iso.projector([1, 2, 3])
    assert torch.allclose(P @ P, P, atol=1e-10) and torch.allclose(P, P.T, atol=1e-12)


def test_a_grokked_multiplication_uses_a_few_multiplicative_frequencies(tmp_path):
    """x * y mod 23 (the quick setting): most of the embedding's norm ends in its key multiplicative frequencies,
    their Gini rises several-fold, and the additive basis explains far less."""
    cfg = RunConfig.from_dict({"task": "mul", "snapshots": 12}, preset="quick")
    assert train(cfg, out=tmp_path / "run").summary["status"] == "generalized"
    result = analyze(tmp_path / "run", sharpness_examples=16, sharpness_iters=2)
    first, last = result["snapshots"][0], result["snapshots"][-1]
    keys = result["multiplicative"]["key_frequencies"]
    share = lambda s: np.sum(np.array(s["mult_norms"])[keys] ** 2) / np.sum(np.array(s["mult_norms"])[1:] ** 2)  # noqa: E731
    assert 1 <= len(keys) <= 6 and share(last) > 0.6
    assert last["mult_gini"] > 3 * first["mult_gini"] and last["mult_gini"] > 5 * last["fourier_gini"]
    assert last["mult_restricted_loss"] < last["mult_excluded_loss"]


def test_a_grokked_group_composition_uses_a_few_irreps(tmp_path):
    """D12 (the symmetries of a 12-gon, order 24): its embedding ends in a few irreps, whose restricted loss is
    far below the excluded one."""
    cfg = RunConfig(task="group", group="D12", model="mlp", train_fraction=0.8, d_model=64, d_mlp=128, lr=1e-2,
                    steps=5000, stop_patience=100, snapshots=12)
    assert train(cfg, out=tmp_path / "run").summary["status"] == "generalized"
    result = analyze(tmp_path / "run", sharpness_examples=16, sharpness_iters=2)
    first, last = result["snapshots"][0], result["snapshots"][-1]
    keys = [result["irreps"]["names"].index(k) for k in result["irreps"]["key_irreps"]]
    assert keys and sum(last["irrep_shares"][k] for k in keys) > 0.6
    assert last["irrep_gini"] > 3 * first["irrep_gini"]
    assert last["irrep_restricted_loss"] < last["irrep_excluded_loss"]


def test_parity_weight_moves_to_the_relevant_bits_before_test_accuracy_does(tmp_path):
    """Barak et al.'s hidden progress: 3 relevant bits among 30, 500 strings to train on; while test accuracy is
    still at chance, the first layer's weight share on the relevant bits has already grown well past its 3 / 30,
    and the output's Walsh coefficient on their parity has left 0."""
    cfg = RunConfig(task="parity", model="mlp", n_bits=30, parity_k=3, n_examples=1000, d_mlp=256, steps=1500,
                    early_stop=False, snapshots=16)
    train(cfg, out=tmp_path / "run")
    result = analyze(tmp_path / "run", sharpness_examples=16, sharpness_iters=2)
    snaps = result["snapshots"]
    chance = 3 / 30
    assert snaps[0]["relevant_share"] == pytest.approx(chance, rel=0.1) and abs(snaps[0]["walsh_parity"]) < 0.02
    hidden = [s for s in snaps if s["val_acc"] < 0.6 and s["train_acc"] == 1.0]
    assert hidden and max(s["relevant_share"] for s in hidden) > 1.3 * chance
    assert max(s["walsh_parity"] for s in hidden) > 0.05
    assert snaps[-1]["relevant_share"] > max(s["relevant_share"] for s in hidden)
    assert result["parity"]["relevant_bits"] == sorted(result["parity"]["relevant_bits"])


def test_without_snapshots_the_progress_figure_shows_the_curves_and_says_what_needs_snapshots(tmp_path, capsys):
    cfg = RunConfig(task="add", modulus=7, train_fraction=0.6, d_model=32, n_heads=2, d_mlp=64, steps=40)
    train(cfg, out=tmp_path / "run")
    assert main(["analyze", str(tmp_path / "run"), "--no-tsne", "--sharpness-examples", "8"]) == 0
    printed = capsys.readouterr()
    assert "snapshot/s" not in printed.err and "no snapshots: only the final weights" in printed.err
    from groklab.analysis import analysis_figures

    result, figs = analysis_figures(tmp_path / "run", 8, False, 6, None)
    fig = figs["progress.png"]
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert len(fig.axes) == 3 and any("--snapshots" in t and "the final weights (step 40)" in t for t in texts)
    assert all(ax.get_lines() for ax in fig.axes[:2])  # the curves: no empty axes


def test_key_irreps_are_completed_until_they_tell_every_element_apart():
    """S4's 2-dimensional irrep factors through S3 (its kernel is the Klein four-group): a key set of it alone is
    completed with the next irrep by share per dimension, a faithful one."""
    from groklab.analysis.representations import isotypic, kernel_of, key_irreps

    iso = isotypic("S4")
    names = list(iso.names)
    assert [int(kernel_of(iso, c).sum()) for c in range(len(names))] == [24, 12, 4, 1, 1]
    shares = dict(zip(names, [0.002, 0.003, 0.331, 0.245, 0.419]))  # a grokked S4 MLP's embedding
    assert [names[k] for k in key_irreps([shares[n] for n in names], iso)] == ["2a", "3b"]
