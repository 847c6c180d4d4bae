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
from cartoon_vae.train import distribution_strategy, read_history, train
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
