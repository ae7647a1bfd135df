"""The local learning coefficient (``analysis.llc``, devinterp's estimator): stable at the defaults on every snapshot
of the quick preset's run, rising from initialization to the grokked network; a diverged chain reported and left
out of the mean; what ``groklab analyze`` writes and says."""

import json

import pytest

from groklab import rundir
from groklab.analysis import llc
from groklab.analysis.progress import Data, options
from groklab.cli import main

pytestmark = pytest.mark.skipif(not llc.available(), reason='needs the llc extra (pip install "groklab[llc]")')


def _estimate(run, step_file, cfg, data, **opts):
    model = rundir.load_snapshot(step_file, run)
    return llc.estimate(model, cfg, data, options(opts), cfg.modulus)


def test_no_chain_diverges_on_the_quick_runs_snapshots_and_the_llc_grows_with_structure(quick_run):
    run = quick_run[0]
    cfg, files = rundir.load_config(run), rundir.snapshot_files(run)
    data = Data.of(cfg)
    got = [(s, _estimate(run, f, cfg, data)) for s, f in files]
    assert all(r["llc_diverged"] == [] for _, r in got), [(s, r["llc_diverged"]) for s, r in got]
    for _, r in got:  # the mean is the chains' (none left out), each nbeta * (mean draw loss - starting loss)
        assert r["llc"] == pytest.approx(sum(r["llc_chains"]) / len(r["llc_chains"]), rel=1e-5, abs=1e-6)
        assert len(r["llc_chains"]) == 4
    first, last = got[0][1]["llc"], got[-1][1]["llc"]
    peak = max(r["llc"] for _, r in got)
    assert first < 0.5 and last > 5 * first and peak > last  # flat at initialization, then a basin


def test_a_chain_that_leaves_its_basin_is_reported_and_left_out(quick_run):
    run = quick_run[0]
    cfg, files = rundir.load_config(run), rundir.snapshot_files(run)
    r = _estimate(run, files[-1][1], cfg, Data.of(cfg), llc_lr=3e-3, llc_localization=0.0, llc_draws=20)
    assert r["llc_diverged"]  # a step this large leaves the basin
    kept = [v for i, v in enumerate(r["llc_chains"]) if i not in r["llc_diverged"]]
    assert r["llc"] is None if not kept else r["llc"] == pytest.approx(sum(kept) / len(kept), rel=1e-5)


def test_groklab_analyze_draws_the_llc_beside_the_curves(tiny, tmp_path, capsys):
    from groklab import train

    train(tiny.replace(steps=300, early_stop=False, snapshots=4), tmp_path / "run")
    assert main(["analyze", str(tmp_path / "run"), "--no-tsne", "--quiet", "--llc-draws", "10",
                 "--llc-chains", "2", "--sharpness-iters", "2"]) == 0
    out = capsys.readouterr().out
    assert "local learning coefficient" in out and "compressed size" in out
    data = json.loads((tmp_path / "run" / "analysis" / "analysis.json").read_text())
    assert data["llc_settings"]["chains"] == 2 and data["llc_settings"]["draws"] == 10
    assert all(len(s["llc_chains"]) == 2 for s in data["snapshots"])
    assert (tmp_path / "run" / "analysis" / "complexity.png").stat().st_size > 10_000
    assert main(["analyze", str(tmp_path / "run"), "--llc-lr", "0"]) == 2
    assert "llc_lr" in capsys.readouterr().err
