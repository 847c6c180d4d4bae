"""train.distribute: mirrored training on two logical CPU devices matches one device."""

import json
import subprocess
import sys

import pytest

from cartoon_vae import load_config
from cartoon_vae.config import ConfigError
from cartoon_vae.synthetic import make_dataset

from .conftest import ROOT

# Logical devices must be set before TensorFlow starts, so the runs happen in a fresh process.
SCRIPT = r"""
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
from cartoon_vae import load_config
from cartoon_vae.runs import read_history
from cartoon_vae.train import distribution_strategy, train
faces, runs = sys.argv[1], sys.argv[2]
out = {}
for mode in ("none", "mirrored"):
    cfg = load_config("configs/paper.yaml", [
        f"data.dir={faces}", "data.image_size=32", "data.load_size=96", "model.latent_dim=8",
        "model.encoder_filters=[8,8,8,8,8]", "model.decoder_filters=[8,8,8,8]", "data.batch_size=8",
        "train.epochs=2", f"train.distribute={mode}"])
    vae = train(cfg, f"{runs}/{mode}", verbose=0)
    out[mode] = {"replicas": distribution_strategy(mode).num_replicas_in_sync,
                 "history": read_history(f"{runs}/{mode}/history.csv"),
                 "kernels": {w.path: np.asarray(w).tolist() for w in vae.weights if w.path.endswith("kernel")}}
print(json.dumps(out))
"""


def test_mirrored_on_two_logical_devices_matches_one_device(tmp_path):
    faces = tmp_path / "faces"
    make_dataset(faces, n=40, seed=5, workers=1, progress=False)  # 36 train (last batch 4), 4 val
    p = subprocess.run([sys.executable, "-c", SCRIPT, str(faces), str(tmp_path / "runs")], capture_output=True,
                       text=True, timeout=600, cwd=ROOT)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    one, two = out["none"], out["mirrored"]
    assert one["replicas"] == 1 and two["replicas"] == 2
    for a, b in zip(one["history"], two["history"], strict=True):
        for key in ("loss", "reconstruction_loss", "kl_loss"):
            assert b[key] == pytest.approx(a[key], rel=2e-3), (a["epoch"], key)
    # Kernels after 10 Adam steps. (The biases before each BatchNorm are left out: their gradient
    # is zero up to rounding, and Adam turns rounding noise into full-size steps.)
    assert one["kernels"].keys() == two["kernels"].keys() and len(one["kernels"]) == 13
    for path, w in one["kernels"].items():
        import numpy as np

        a, b = np.asarray(w), np.asarray(two["kernels"][path])
        assert np.abs(a - b).max() <= 2e-3 * np.abs(a).max(), path


def test_distribute_key_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="train.distribute"):
        load_config(ROOT / "configs" / "paper.yaml", ["train.distribute=tpu"])


# ---------------------------------------------------------------- multi-worker on 127.0.0.1

TINY_MW = ["--set", "data.image_size=32", "--set", "data.load_size=96", "--set", "model.latent_dim=8",
           "--set", "model.encoder_filters=[8,8,8,8,8]", "--set", "model.decoder_filters=[8,8,8,8]",
           "--set", "data.batch_size=8", "--set", "train.epochs=2"]


def _free_ports(n):
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _workers(faces, runs, extra_env=None, epochs=2):
    import os

    ports = _free_ports(2)
    procs = []
    for i in range(2):
        env = {**os.environ, **(extra_env or {}), "TF_CONFIG": json.dumps(
            {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": i}})}
        cmd = [sys.executable, "-m", "cartoon_vae.cli", "train", "--config", "configs/paper.yaml", "--data",
               str(faces), "--run-dir", str(runs / "mw"), *TINY_MW, "--set", f"train.epochs={epochs}",
               "--set", "train.distribute=multi_worker"]
        procs.append(subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    return procs


def test_two_workers_on_localhost_match_one_process_and_only_the_chief_writes(tmp_path):
    from cartoon_vae.runs import read_history

    faces = tmp_path / "faces"
    make_dataset(faces, n=40, seed=5, workers=1, progress=False)
    one = subprocess.run([sys.executable, "-m", "cartoon_vae.cli", "train", "--config", "configs/paper.yaml",
                          "--data", str(faces), "--run-dir", str(tmp_path / "one"), *TINY_MW], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-2000:]
    procs = _workers(faces, tmp_path)
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["faces", "mw", "one"]  # one run folder, the chief's
    a, b = read_history(tmp_path / "one" / "history.csv"), read_history(tmp_path / "mw" / "history.csv")
    for ra, rb in zip(a, b, strict=True):
        for key in ("loss", "reconstruction_loss", "kl_loss"):
            assert rb[key] == pytest.approx(ra[key], rel=5e-3), (ra["epoch"], key)


def test_a_killed_worker_makes_the_other_exit_nonzero_with_one_line(tmp_path):
    import signal
    import time

    faces = tmp_path / "faces"
    make_dataset(faces, n=40, seed=5, workers=1, progress=False)
    procs = _workers(faces, tmp_path, {"CARTOON_VAE_COLLECTIVE_TIMEOUT": "20"}, epochs=200)
    deadline = time.time() + 300
    while not (tmp_path / "mw" / "history.csv").exists() and time.time() < deadline:  # training has begun
        time.sleep(0.5)
    procs[1].send_signal(signal.SIGKILL)
    _, err = procs[0].communicate(timeout=300)
    procs[1].wait()
    assert procs[0].returncode not in (0, None)
    lines = [line for line in err.splitlines() if line.startswith("cartoon-vae train: error:")]
    assert len(lines) == 1 and "a worker was lost" in lines[0] and "--resume" in lines[0], err[-3000:]
    assert "Traceback" not in err
