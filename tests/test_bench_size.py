"""One size's row: medians, paired ratios and FLOP/s from interleaved rates; configs and weights for a child."""

import numpy as np
import pytest

from cartoon_vae import load_config
from cartoon_vae.bench_size import _to_files, _training_row

from .conftest import ROOT


def test_training_row_from_interleaved_rates():
    config = load_config(ROOT / "configs" / "demo-paper.yaml")
    rates = {"project": [200.0, 100.0, 220.0], "reference": [100.0, 50.0, 110.0], "auto": [300.0, 150.0, 330.0]}
    row = _training_row(config, "configs/demo-paper.yaml", 1000, rates, 80.0, 1e9, "mixed_bfloat16", 1e12, 2e12)
    assert row["speedup"] == pytest.approx(2.0) and row["speedup_interval"] == [pytest.approx(2.0)] * 2
    assert row["project_img_s"] == 200.0 and row["auto_vs_float32"] == pytest.approx(1.5)
    assert row["project_gflop_s"] == 200.0 and row["fraction_of_matmul"] == 0.2
    assert row["speedup_vs_tf_defaults"] == 2.5 and row["rounds"] == 3


def test_config_and_weights_go_to_files_a_child_reads(tmp_path):
    config = load_config(ROOT / "configs" / "demo-paper.yaml")
    weights = [np.arange(3, dtype=np.float32), np.ones((2, 2), np.float32)]
    config_path, weights_path = _to_files(config, weights, tmp_path / "x")
    assert load_config(config_path) == config
    with np.load(weights_path) as w:
        np.testing.assert_array_equal(w["w1"], weights[1])
