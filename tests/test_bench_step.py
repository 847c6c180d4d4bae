"""The training step alone under each variant, and where its time goes."""

import pytest

from cartoon_vae import load_config
from cartoon_vae.bench_step import STEP_VARIANTS, op_profile, step_runner

from .conftest import ROOT


def test_op_profile_attributes_the_step_time_to_op_groups():
    tiny = load_config(ROOT / "configs" / "demo-paper.yaml", ["data.image_size=32", "model.encoder_filters=[8,8,8,8,8]",
                                                              "model.decoder_filters=[8,8,8,8]"])
    p = op_profile(tiny, batch_size=4, steps=2)
    assert p["step_ms"] > 0 and p["groups_ms"]["convolution"] > 0 and p["groups_ms"]["batch norm"] > 0
    # each figure is rounded to 0.01 ms once, at the end: the sum can be off by half a hundredth per group
    assert sum(p["groups_ms"].values()) == pytest.approx(p["op_ms_per_step"], abs=0.005 * (len(p["groups_ms"]) + 1))
    assert any("Conv2D" in name for name in p["top_ops_ms"])


@pytest.mark.parametrize("variant", [v for v in STEP_VARIANTS if v != "xla"])
def test_every_step_variant_builds_and_steps(variant):
    tiny = load_config(ROOT / "configs" / "demo-paper.yaml", ["data.image_size=32", "model.encoder_filters=[8,8,8,8,8]",
                                                              "model.decoder_filters=[8,8,8,8]"])
    images, seconds = step_runner(tiny, variant, batch_size=4, images=128)()  # one batch of the largest variant
    assert images == 128 and seconds > 0


def test_much_faster_needs_the_whole_interval_beyond_the_margin():
    from cartoon_vae.bench_step import much_faster

    assert much_faster([-0.30, -0.12]) == "supported"
    assert much_faster([-0.077, -0.001]) == "not supported"  # faster, but by less than 10% for sure
    assert much_faster([0.01, 0.05]) == "not supported"
    assert much_faster([-0.12, 0.09]) == "inconclusive"
