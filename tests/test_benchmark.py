"""Pieces of the benchmark that decide its headline numbers, on a tiny set (the benchmark itself prints
numbers; no test times anything)."""

import pytest

from cartoon_vae import load_config
from cartoon_vae.benchmark import (STEP_VARIANTS, first_reach, interleave, matmul_flops, op_profile, rate_ratio,
                                   step_runner, time_to_quality)
from cartoon_vae.hardware import FLAGS, cpu_flags, resolve_precision, steal_fraction
from cartoon_vae.synthetic import make_dataset

from .conftest import ROOT


def test_first_reach_is_the_first_time_at_or_below_the_target():
    curve = [(1.0, 0.5), (2.0, 0.2), (3.0, 0.3), (4.0, 0.1)]
    assert first_reach(curve, 0.2) == 2.0 and first_reach(curve, 0.05) is None


def test_interleave_rotates_the_order_and_drops_the_warm_up_round():
    calls = []

    def contender(name, seconds):
        def run():
            calls.append(name)
            return 10, seconds
        return run

    rates = interleave({"a": contender("a", 1.0), "b": contender("b", 2.0), "c": contender("c", 5.0)}, rounds=3)
    assert calls == ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"]
    assert rates == {"a": [10.0] * 3, "b": [5.0] * 3, "c": [2.0] * 3}


def test_rate_ratio_is_the_paired_geometric_mean_with_a_t_interval():
    drift = [1.0, 0.6, 1.3, 0.8]  # the machine's speed in each round: cancels within a pair
    r = rate_ratio([2 * d for d in drift], drift)
    assert r["ratio"] == pytest.approx(2.0) and r["interval"] == [pytest.approx(2.0)] * 2 and r["rounds"] == 4
    noisy = rate_ratio([2.2, 1.2, 2.4, 1.7], drift)
    assert noisy["interval"][0] < noisy["ratio"] < noisy["interval"][1]
    assert rate_ratio([2.0], [1.0])["interval"] == [None, None]  # one round: no interval


def test_steal_fraction_reads_the_share_of_stolen_ticks():
    assert steal_fraction((1000, 10), (2000, 310)) == 0.3
    assert steal_fraction(None, (2000, 310)) is None and steal_fraction((1000, 10), (1000, 10)) is None


def test_auto_precision_follows_the_cpu_flags(monkeypatch):
    from cartoon_vae import hardware

    assert set(cpu_flags()) == set(FLAGS)
    monkeypatch.setattr(hardware, "_gpu_bf16", lambda: False)
    for flags, expected in (({"avx512_bf16": True}, "mixed_bfloat16"), ({"amx_bf16": True}, "mixed_bfloat16"),
                            ({"avx2": True, "avx512f": True}, "float32")):
        monkeypatch.setattr(hardware, "cpu_flags", lambda f=flags: {k: f.get(k, False) for k in FLAGS})
        assert resolve_precision("auto") == expected
        assert resolve_precision("float32") == "float32"


def test_matmul_roofline_in_both_precisions_is_positive():
    assert matmul_flops(n=128, seconds=0.05) > 0 and matmul_flops(n=128, seconds=0.05, dtype="bfloat16") > 0


def test_time_to_quality_sets_the_target_from_the_paper_recipe_and_races_to_it(tmp_path):
    faces = tmp_path / "faces"
    make_dataset(faces, n=24, seed=4, workers=1, progress=False)
    tiny = [f"data.dir={faces}", "data.image_size=32", "data.load_size=96", "data.batch_size=8",
            "data.val_fraction=0.25"]
    paper = load_config(ROOT / "configs" / "demo-paper.yaml", tiny + ["model.encoder_filters=[8,8,8,8,8]",
                                                                      "model.decoder_filters=[8,8,8,8]"])
    rec = load_config(ROOT / "configs" / "recommended.yaml", tiny + ["model.encoder_filters=[8,8,8]",
                                                                     "model.decoder_filters=[8,8]"])
    r = time_to_quality(paper, rec, paper_epochs=2, max_epochs=3, log=lambda *_: None)
    assert len(r["paper_curve"]) == 2 and r["target_mse"] == pytest.approx(r["paper_curve"][-1][1], abs=1e-6)
    assert 1 <= r["recommended_epochs"] <= 3
    reached = [m for _, m in r["recommended_curve"] if m <= r["target_mse"]]
    assert (r["speedup"] is not None) == bool(reached)
    if reached:  # it stops at the first epoch that reaches the target
        assert r["recommended_curve"][-1][1] <= r["target_mse"]


def test_op_profile_attributes_the_step_time_to_op_groups():
    tiny = load_config(ROOT / "configs" / "demo-paper.yaml", ["data.image_size=32", "model.encoder_filters=[8,8,8,8,8]",
                                                              "model.decoder_filters=[8,8,8,8]"])
    p = op_profile(tiny, batch_size=4, steps=2)
    assert p["step_ms"] > 0 and p["groups_ms"]["convolution"] > 0 and p["groups_ms"]["batch norm"] > 0
    assert sum(p["groups_ms"].values()) == pytest.approx(p["op_ms_per_step"], rel=0.01)
    assert any("Conv2D" in name for name in p["top_ops_ms"])


@pytest.mark.parametrize("variant", [v for v in STEP_VARIANTS if v != "xla"])
def test_every_step_variant_builds_and_steps(variant):
    tiny = load_config(ROOT / "configs" / "demo-paper.yaml", ["data.image_size=32", "model.encoder_filters=[8,8,8,8,8]",
                                                              "model.decoder_filters=[8,8,8,8]"])
    images, seconds = step_runner(tiny, variant, batch_size=4, images=256)()
    assert images == 256 and seconds > 0
