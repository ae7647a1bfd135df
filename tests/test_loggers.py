import pytest
from helpers import train_interrupted

from groklab import RunConfig, rundir
from groklab.cli import main
from groklab.errors import ConfigError
from groklab.train import train


def _scalars(log_dir):
    """Every scalar of a TensorBoard log folder, read by TensorBoard's own reader: tag -> {step: value}."""
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    mux = EventMultiplexer({"run": str(log_dir)}).Reload()  # reads every event file, purges applied
    acc = mux.GetAccumulator("run")
    return {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}


def _wandb_records(path):
    """The protobuf records of a W&B run file: a 7-byte header, then LevelDB log blocks of 32 KiB whose records
    (4-byte checksum, 2-byte length, 1-byte type: full, first, middle, last) carry ``Record`` messages."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    b, pos, part, out = path.read_bytes(), 7, b"", []
    assert b[:4] == b":W&B"
    while pos + 7 <= len(b):
        if 32768 - pos % 32768 < 7:
            pos += 32768 - pos % 32768
            continue
        _, n, kind = struct.unpack("<IHB", b[pos:pos + 7])
        data, pos = b[pos + 7:pos + 7 + n], pos + 7 + n
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(part + data)
            out.append(rec)
            part = b""
        elif kind in (2, 3):
            part += data
    return out


def test_tensorboard_logger_holds_every_metric_at_each_evaluation(tiny, tmp_path):
    pytest.importorskip("tensorboard")
    cfg = tiny.replace(steps=120, early_stop=False, logger="tensorboard")
    train(cfg, tmp_path / "run")
    rows = rundir.read_metrics(tmp_path / "run")
    got = _scalars(tmp_path / "run" / "tensorboard")
    columns = [k for k in rows[0] if k != "step"]
    assert sorted(got) == sorted(columns)
    for k in columns:
        assert sorted(got[k]) == [r["step"] for r in rows]
        for r in rows:
            assert got[k][r["step"]] == pytest.approx(r[k], rel=1e-6, abs=1e-12)


def test_a_resumed_run_logs_each_step_once(tiny, tmp_path):
    pytest.importorskip("tensorboard")
    cfg = tiny.replace(steps=200, early_stop=False, checkpoint_every=50, logger="tensorboard")
    train_interrupted(cfg, tmp_path / "run", after=130)
    train(cfg, tmp_path / "run", resume=True)
    rows = rundir.read_metrics(tmp_path / "run")
    got = _scalars(tmp_path / "run" / "tensorboard")
    # the evaluations after the checkpoint at 100 were logged, purged and logged again: one value each, the new one
    assert sorted(got["val_acc"]) == [r["step"] for r in rows]
    assert all(got["val_loss"][r["step"]] == pytest.approx(r["val_loss"], rel=1e-6) for r in rows)


def test_wandb_offline_writes_its_run_files_without_network(tiny, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # any network use would fail here
    cfg = tiny.replace(steps=60, early_stop=False, logger="tensorboard+wandb")
    train(cfg, tmp_path / "run")
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    files = list(runs[0].glob("run-*.wandb"))
    assert files and files[0].stat().st_size > 0
    logged = {}
    for rec in _wandb_records(files[0]):
        if rec.WhichOneof("record_type") == "history":
            items = {i.key or "/".join(i.nested_key): i.value_json for i in rec.history.item}
            logged[int(items["_step"])] = items
    rows = rundir.read_metrics(tmp_path / "run")
    assert sorted(logged) == [r["step"] for r in rows]
    assert float(logged[60]["val_acc"]) == pytest.approx(rows[-1]["val_acc"])
    assert (tmp_path / "run" / "tensorboard").is_dir()


def test_a_bad_logger_is_refused_in_one_line(tmp_path, capsys):
    with pytest.raises(ConfigError, match="logger 'tensorbord' is not allowed"):
        RunConfig(logger="tensorbord")
    assert main(["train", "--logger", "csv", "--out", str(tmp_path / "r"), "--steps", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "logger 'csv' is not allowed" in err
    assert not (tmp_path / "r").exists()


def test_the_logger_is_not_part_of_a_runs_identity():
    assert RunConfig(logger="tensorboard").hash() == RunConfig().hash()


def test_analyze_adds_its_measures_to_the_runs_tensorboard_log(tiny, tmp_path):
    pytest.importorskip("tensorboard")
    import json

    cfg = tiny.replace(modulus=11, steps=100, early_stop=False, snapshots=3, logger="tensorboard")
    train(cfg, tmp_path / "run")
    assert main(["analyze", str(tmp_path / "run"), "--quiet", "--no-tsne", "--llc-chains", "0",
                 "--sharpness-examples", "32"]) == 0
    got = _scalars(tmp_path / "run" / "tensorboard")
    snaps = json.loads((tmp_path / "run" / "analysis" / "analysis.json").read_text())["snapshots"]
    assert sorted(got["analysis/fourier_gini"]) == [s["step"] for s in snaps]
    assert got["analysis/sharpness"][snaps[-1]["step"]] == pytest.approx(snaps[-1]["sharpness"], rel=1e-5)
    assert sorted(got["val_acc"]) == [r["step"] for r in rundir.read_metrics(tmp_path / "run")]  # training's kept
