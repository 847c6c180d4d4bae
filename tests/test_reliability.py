"""Crash safety (real SIGKILLs, then --resume), NaN handling, and one clear error for every bad input."""

import csv
import errno
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from cartoon_vae import load_config
from cartoon_vae.cli import main
from cartoon_vae.synthetic import make_dataset
from cartoon_vae.train import NonFiniteLoss, checkpoints, train

from .conftest import ROOT

PAPER = str(ROOT / "configs" / "paper.yaml")
TINY = ["data.image_size=32", "data.load_size=96", "model.latent_dim=4", "model.encoder_filters=[4,4,4,4,4]",
        "model.decoder_filters=[4,4,4,4]", "data.batch_size=8", "data.val_fraction=0.25", "train.epochs=4",
        "sample.stats_images=8", "sample.reconstructions=2"]
SETS = [a for kv in TINY for a in ("--set", kv)]


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    out = tmp_path_factory.mktemp("rel") / "faces"
    make_dataset(out, n=24, seed=2, workers=1, progress=False)
    return out


def _history(run):
    with open(run / "history.csv") as fh:
        return list(csv.DictReader(fh))


def _train_process(faces, run, fault=None, resume=False):
    env = {k: v for k, v in os.environ.items() if k != "CARTOON_VAE_FAULT"}
    if fault:
        env["CARTOON_VAE_FAULT"] = fault
    cmd = [sys.executable, "-m", "cartoon_vae.cli", "train", "--run-dir", str(run)]
    cmd += ["--resume"] if resume else ["--config", PAPER, "--data", str(faces), *SETS]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_sigkill_at_three_moments_then_resume_matches_an_uninterrupted_run(faces, tmp_path):
    base = _train_process(faces, tmp_path / "straight")
    assert base.returncode == 0, base.stderr[-2000:]

    run = tmp_path / "killed"
    moments = [("step:2", False, ["1"], [1]),         # killed inside a training step of epoch 2
               ("checkpoint:3", True, ["1", "2", "3"], [1, 2]),  # while epoch 3's checkpoint is being written
               ("history:4", True, ["1", "2", "3", "4"], [2, 3])]  # between epoch 4's history row and checkpoint
    for fault, resume, epochs_logged, ckpts in moments:
        p = _train_process(faces, run, fault=fault, resume=resume)
        assert p.returncode == -9, (fault, p.returncode, p.stderr[-2000:])
        assert [r["epoch"] for r in _history(run)] == epochs_logged, fault
        assert [int(c.stem[-4:]) for c in checkpoints(run)] == ckpts, fault
        for c in checkpoints(run):
            keras.models.load_model(c)  # every checkpoint left behind is whole
        if fault.startswith("checkpoint"):  # the kill during the write left only its temporary file
            assert list((run / "checkpoints").glob(".tmp-*epoch_0003.keras"))

    done = _train_process(faces, run, resume=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not list(run.rglob(".tmp-*"))
    rows, ref = _history(run), _history(tmp_path / "straight")
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"]
    keras.models.load_model(run / "model.keras")
    for key in ["loss", "reconstruction_loss", "kl_exact", "val_loss", "val_kl_exact"]:
        got, want = [float(r[key]) for r in rows], [float(r[key]) for r in ref]
        np.testing.assert_allclose(got, want, rtol=1e-4, err_msg=key)  # in practice bit-identical on CPU


class _PoisonAt(keras.callbacks.Callback):
    """Sets a decoder weight to NaN at the start of an epoch (a stand-in for a diverging run)."""

    def __init__(self, epoch):
        super().__init__()
        self.at = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch + 1 == self.at:
            w = self.model.decoder.get_layer("dense").kernel
            w.assign(np.full(w.shape, np.nan, "float32"))


def test_nan_loss_stops_with_epoch_and_step_and_keeps_last_good_checkpoint(faces, tmp_path):
    cfg = load_config(PAPER, [f"data.dir={faces}", *TINY])
    with pytest.raises(NonFiniteLoss, match=r"epoch 2, step 1; the last good checkpoint \(epoch 1\)"):
        train(cfg, tmp_path / "run", verbose=0, callbacks=[_PoisonAt(2)])
    assert [c.name for c in checkpoints(tmp_path / "run")] == ["epoch_0001.keras"]
    vae = keras.models.load_model(checkpoints(tmp_path / "run")[0])
    assert all(np.isfinite(np.asarray(w)).all() for w in vae.weights)
    assert [r["epoch"] for r in _history(tmp_path / "run")] == ["1"]
    assert not (tmp_path / "run" / "model.keras").exists()


class _HeldOutOverflow(keras.callbacks.Callback):
    """Makes the held-out KL of the given epochs infinite, as unsettled BatchNorm statistics did at 256x256 (training
    is finite)."""

    def __init__(self, epochs=(1,)):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 in self.epochs:
            logs["val_kl_exact"] = float("inf")


def test_an_overflowing_held_out_metric_warns_and_training_goes_on_unless_it_stays(faces, tmp_path, capsys):
    cfg = load_config(PAPER, [f"data.dir={faces}", *TINY])
    train(cfg, tmp_path / "run", verbose=0, callbacks=[_HeldOutOverflow()])
    rows = _history(tmp_path / "run")
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"] and rows[0]["val_kl_exact"] == "inf"
    assert "epoch 1: held-out val_kl_exact not finite (training is; kept going)" in capsys.readouterr().out
    assert (tmp_path / "run" / "model.keras").exists()
    with pytest.raises(NonFiniteLoss, match=r"epoch 4, step end \(held-out val_kl_exact not finite 3 epochs running\)"):
        train(cfg, tmp_path / "broken", verbose=0, callbacks=[_HeldOutOverflow(epochs=(2, 3, 4))])
    assert [r["epoch"] for r in _history(tmp_path / "broken")] == ["1", "2", "3"]


def test_cli_exits_nonzero_on_nan_without_traceback(monkeypatch, capsys, tmp_path):
    import cartoon_vae.train as t

    def diverge(*a, **k):
        raise NonFiniteLoss("runs/x: loss became NaN/Inf at epoch 3, step 7; ...")

    monkeypatch.setattr(t, "train", diverge)
    assert main(["train", "--config", PAPER, "--run-dir", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert "epoch 3, step 7" in err and "Traceback" not in err and err.count("\n") == 1


def test_disk_full_while_writing_a_checkpoint_keeps_the_previous_one(faces, tmp_path, monkeypatch, capsys):
    real_save = keras.Model.save
    calls = []

    def save(self, path, *a, **k):
        calls.append(path)
        if len(calls) == 2:
            Path(path).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(self, path, *a, **k)

    monkeypatch.setattr(keras.Model, "save", save)
    run = tmp_path / "run"
    code = main(["train", "--config", PAPER, "--data", str(faces), "--run-dir", str(run), *SETS])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "epoch_0002.keras: No space left on device" in err
    assert [c.name for c in checkpoints(run)] == ["epoch_0001.keras"] and not list(run.rglob(".tmp-*"))
    monkeypatch.setattr(keras.Model, "save", real_save)
    keras.models.load_model(checkpoints(run)[0])


# ---------------------------------------------------------------- bad input, one line each

@pytest.fixture(scope="module")
def ws(tmp_path_factory, faces):
    """A workspace: configs, data folders and a trained run that bad commands must not touch."""
    w = tmp_path_factory.mktemp("ws")
    (w / "syntax.yaml").write_text("data:\n  image_size: 64\n  batch_size: : 2\n")
    (w / "unknown.yaml").write_text("model:\n  latent_dims: 3\n")
    (w / "type.yaml").write_text("train:\n  epochs: many\n")
    (w / "range.yaml").write_text("data:\n  val_fraction: 2\n")
    (w / "empty").mkdir()
    (w / "a_file.png").write_bytes(b"x")
    bad = w / "bad_images"
    bad.mkdir()
    (bad / "zero.png").write_bytes(b"")
    (bad / "text.png").write_text("hello")
    (bad / "trunc.png").write_bytes((faces / "cs000000.png").read_bytes()[:1500])
    (bad / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(300))
    csvs = w / "bad_csv"
    make_dataset(csvs, n=3, seed=0, workers=1, progress=False)
    (csvs / "cs000001.csv").write_text('"eye_angle", 1, 3\n"eye_lashes", two, 2\n')
    assert main(["train", "--config", PAPER, "--data", str(faces), "--run-dir", str(w / "run"), *SETS,
                 "--set", "train.epochs=1"]) == 0
    (w / "no_ckpt").mkdir()
    (w / "no_ckpt" / "config.yaml").write_text((w / "run" / "config.yaml").read_text())
    (w / "broken").mkdir()
    (w / "broken" / "config.yaml").write_text((w / "run" / "config.yaml").read_text())
    (w / "broken" / "model.keras").write_bytes(b"not a zip")
    (w / "huge.yaml").write_text("# padding\n" * 120_000)
    (w / "aliases.yaml").write_text("a: &x [1, 2]\nb: &y [*x, *x]\nc: [*y, *y]\n")
    (w / "all_damaged").mkdir()
    (w / "all_damaged" / "config.yaml").write_text((w / "run" / "config.yaml").read_text())
    (w / "all_damaged" / "checkpoints").mkdir()
    (w / "all_damaged" / "checkpoints" / "epoch_0001.keras").write_bytes(b"\0" * 1000)
    (w / "mine").mkdir()
    (w / "mine" / "photo.png").write_bytes(b"my photo")
    return w


def _snapshot(root):
    """Every file's hash and every folder (None), so a half-made run folder shows too."""
    return {p: hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else None for p in Path(root).rglob("*")}


BAD_INPUT = [
    # (argv with {w} for the workspace and {faces} for the data set, words the one line must contain)
    (["train", "--config", "{w}/missing.yaml"], ["missing.yaml", "not found"]),
    (["train", "--config", "{w}/syntax.yaml"], ["syntax.yaml", "YAML syntax error at line 3"]),
    (["train", "--config", "{w}/unknown.yaml"], ["model.latent_dims", "did you mean latent_dim"]),
    (["train", "--config", "{w}/type.yaml"], ["train.epochs", "must be an integer", "many"]),
    (["train", "--config", "{w}/range.yaml"], ["data.val_fraction", "(0, 1)"]),
    (["train", "--config", PAPER, "--set", "model.nope=1"], ["--set model.nope", "unknown key"]),
    (["train", "--config", PAPER, "--set", "train.epochs=0"], ["train.epochs", "[1, 1,000,000]"]),
    (["train", "--config", PAPER, "--data", "{w}/nowhere", "--run-dir", "{w}/r1"], ["nowhere", "not found"]),
    (["train", "--config", PAPER, "--data", "{w}/empty", "--run-dir", "{w}/r2"], ["empty", "no images"]),
    (["train", "--config", PAPER, "--data", "{w}/a_file.png", "--run-dir", "{w}/r3"], ["a_file.png", "not a folder"]),
    (["train", "--config", PAPER, "--data", "{w}/bad_images", "--run-dir", "{w}/r4"],
     ["bad_images", "none of the 4 image files is readable"]),
    (["check-data", "--data", "{w}/bad_csv"], ["cs000001.csv:2", "variant_index"]),
    (["train", "--config", PAPER, "--data", "{faces}", "--run-dir", "{w}/run"], ["run", "already exists", "--resume"]),
    (["train", "--resume", "--run-dir", "{w}/empty"], ["empty", "nothing to resume"]),
    (["train", "--resume"], ["--config is required", "--run-dir"]),
    (["figures", "--run", "{w}/no_such_run"], ["no_such_run", "run folder not found"]),
    (["figures", "--run", "{w}/no_ckpt"], ["no_ckpt", "no model.keras and no checkpoint"]),
    (["figures", "--run", "{w}/broken"], ["broken/model.keras", "cannot load the model"]),
    (["sample", "--run", "{w}/run", "--out", "{w}/a_file.png/samples"], ["a_file.png/samples"]),
    (["sample", "--run", "{w}/run", "--n", "0", "--out", "{w}/s"], ["--n", "[1, 1,000,000]"]),
    (["sample", "--run", "{w}/run", "--n", "10000000", "--out", "{w}/s"], ["--n", "[1, 1,000,000]", "10000000"]),
    (["sample", "--run", "{w}/run", "--n", "ten", "--out", "{w}/s"], ["--n", "must be an integer", "'ten'"]),
    (["sample", "--run", "{w}/run", "--mode", "uniform", "--out", "{w}/s"], ["--mode", "uniform"]),
    (["make-data", "--out", "{w}/mine", "--n", "2"], ["mine", "not a generated set"]),
    (["download-cartoonset", "--variant", "10k", "--out", "{w}/dl", "--url", "http://127.0.0.1:9/x.tgz"],
     ["127.0.0.1:9", "cannot connect"]),
    # bounds before memory is spent, and no run folder left behind
    (["train", "--config", "{w}/huge.yaml", "--run-dir", "{w}/r5"], ["huge.yaml", "at most 1,048,576"]),
    (["train", "--config", "{w}/aliases.yaml", "--run-dir", "{w}/r6"], ["aliases.yaml", "aliases", "line 2"]),
    (["train", "--config", PAPER, "--set", "train.learning_rate=inf", "--run-dir", "{w}/r7"],
     ["train.learning_rate", "finite", "inf"]),
    (["train", "--config", PAPER, "--set", "data.image_size=1048576", "--run-dir", "{w}/r8"],
     ["data.image_size", "[1, 2,048]"]),
    (["train", "--config", PAPER, "--set", "model.latent_dim=5000000", "--run-dir", "{w}/r9"],
     ["model.latent_dim", "[1, 8,192]"]),
    (["train", "--config", PAPER, "--set", "data.batch_size=8192", "--set", "data.image_size=512",
      "--run-dir", "{w}/r10"], ["data.batch_size x data.image_size^2", "GiB"]),
    (["train", "--config", PAPER, "--set", "model.latent_dim=8192", "--set", "data.image_size=2048",
      "--set", "data.batch_size=1", "--run-dir", "{w}/r11"], ["model: about", "weights"]),
    (["train", "--resume", "--run-dir", "{w}/run", "--set", "data.batch_size=4"],
     ["--set data.batch_size", "cannot change on --resume", "train.epochs, train.learning_rate"]),
    (["train", "--resume", "--run-dir", "{w}/all_damaged"], ["all_damaged", "none of the 1 checkpoints loads"]),
]


@pytest.mark.parametrize("argv,words", BAD_INPUT, ids=[" ".join(a[:3]) for a, _ in BAD_INPUT])
def test_bad_input_exits_2_with_one_line_and_loses_nothing(ws, faces, capsys, argv, words):
    before = _snapshot(ws)
    assert _exit_code([a.format(w=ws, faces=faces) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w.format(w=ws) in err, (w, err)
    after = _snapshot(ws)
    assert {p: h for p, h in after.items() if p in before} == before  # nothing changed or deleted
    assert not [p for p in after if p not in before and p.name != ".lock"], set(after) - set(before)  # nor made


def _exit_code(argv):
    """main's return value, or the code of the SystemExit that argparse raises for a usage error."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def test_debug_shows_the_traceback(ws):
    with pytest.raises(Exception):
        main(["--debug", "figures", "--run", str(ws / "no_such_run")])


def test_latent_statistics_of_another_model_are_recomputed(ws, tmp_path, capsys):
    run = ws / "run"
    assert main(["sample", "--run", str(run), "--n", "2", "--out", str(tmp_path / "a")]) == 0
    stats = dict(np.load(run / "latent_stats.npz"))
    stats["fingerprint"] = np.array("0123456789abcdef")
    stats["min"] = stats["min"] + 100.0
    np.savez(run / "latent_stats.npz", **stats)
    capsys.readouterr()
    assert main(["sample", "--run", str(run), "--n", "2", "--out", str(tmp_path / "b")]) == 0
    assert "statistics of another model; recomputing" in capsys.readouterr().out
    z = np.load(tmp_path / "b" / "latents.npy")
    assert np.all(z < 50)  # drawn from the recomputed range, not the planted one


def test_console_command_prints_only_the_error_line(tmp_path):
    """A real process: TensorFlow's start-up logging must not add lines around the error."""
    p = subprocess.run([sys.executable, "-m", "cartoon_vae.cli", "figures", "--run", str(tmp_path / "nope")],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert p.returncode == 2
    assert p.stderr == f"cartoon-vae figures: error: {tmp_path / 'nope'}: run folder not found\n"


# ---------------------------------------------------------------- one writer per run folder

def _claim(path, barrier, results, hold):
    """In a child process: wait for the other, then try to create the run folder and hold it."""
    import time

    from cartoon_vae.runs import RunError, writer

    barrier.wait()
    try:
        with writer(path, new=True):
            (Path(path) / "config.yaml").write_text(str(os.getpid()))
            time.sleep(hold)
        results.put("owner")
    except RunError as e:
        results.put(str(e))


def test_two_writers_started_at_the_same_instant_never_both_own_a_new_folder(tmp_path):
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    for round_ in range(25):
        path = tmp_path / f"run{round_}"
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_claim, args=(path, barrier, results, 0.05)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        outcomes = sorted(results.get(timeout=5) for _ in procs)
        assert outcomes.count("owner") == 1, outcomes
        loser = next(o for o in outcomes if o != "owner")
        assert "already exists" in loser or "another process (PID" in loser, loser


def test_a_second_writer_exits_2_naming_the_holder_and_a_killed_holder_releases_the_lock(ws, tmp_path):
    import signal
    import time

    run = ws / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from cartoon_vae.runs import writer\n"
                               "with writer(sys.argv[1]):\n    print('held', flush=True); time.sleep(120)",
                               str(run)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = _snapshot(ws)
        for argv in (["train", "--resume", "--run-dir", str(run), "--set", "train.epochs=2"],
                     ["figures", "--run", str(run)]):
            p = subprocess.run([sys.executable, "-m", "cartoon_vae.cli", *argv], capture_output=True, text=True,
                               timeout=120, cwd=ROOT)
            assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
            assert f"another process (PID {holder.pid}) is writing this run folder" in p.stderr
        assert _snapshot(ws) == before  # the refused commands rewrote nothing
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    time.sleep(0.1)
    from cartoon_vae.runs import writer
    with writer(run):  # the kernel released the dead holder's lock
        pass


# ---------------------------------------------------------------- damaged checkpoints

@pytest.fixture(scope="module")
def two_epochs(faces, tmp_path_factory):
    """A run trained for two epochs, copied by each test that damages it."""
    run = tmp_path_factory.mktemp("two") / "run"
    assert main(["train", "--config", PAPER, "--data", str(faces), "--run-dir", str(run), *SETS,
                 "--set", "train.epochs=2"]) == 0
    return run


@pytest.mark.parametrize("damage", ["truncate", "zero"])
def test_resume_falls_back_past_a_damaged_newest_checkpoint(two_epochs, tmp_path, damage, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(two_epochs, run, ignore=shutil.ignore_patterns(".lock"))
    newest = checkpoints(run)[-1]
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\0" * len(data))
    config_before = (run / "config.yaml").read_text()
    capsys.readouterr()
    assert main(["train", "--resume", "--run-dir", str(run), "--set", "train.epochs=3"]) == 0
    out = capsys.readouterr().out
    assert "epoch_0002.keras: damaged checkpoint" in out and "resuming" in out and "after epoch 1" in out
    assert [r["epoch"] for r in _history(run)] == ["1", "2", "3"]
    assert (run / "config.yaml").read_text() == config_before.replace("epochs: 2", "epochs: 3")
    keras.models.load_model(run / "model.keras")


def test_nan_in_the_first_epoch_of_a_new_run_leaves_no_folder_and_says_so(faces, tmp_path):
    cfg = load_config(PAPER, [f"data.dir={faces}", *TINY])
    with pytest.raises(NonFiniteLoss, match="no epoch had finished, so nothing was kept"):
        train(cfg, tmp_path / "run", verbose=0, callbacks=[_PoisonAt(1)])
    assert not (tmp_path / "run").exists()
