"""The two training loops and the time-to-quality race, on a tiny set."""

import pytest

from cartoon_vae import load_config
from cartoon_vae.bench_loops import first_reach, time_to_quality
from cartoon_vae.synthetic import make_dataset

from .conftest import ROOT


def test_first_reach_is_the_first_time_at_or_below_the_target():
    curve = [(1.0, 0.5), (2.0, 0.2), (3.0, 0.3), (4.0, 0.1)]
    assert first_reach(curve, 0.2) == 2.0 and first_reach(curve, 0.05) is None


def test_time_to_quality_sets_the_target_from_the_paper_recipe_and_races_to_it(tmp_path):
    faces = tmp_path / "faces"
    make_dataset(faces, n=24, seed=4, workers=1, progress=False)
    tiny = [f"data.dir={faces}", "data.image_size=32", "data.load_size=96", "data.batch_size=8",
            "data.val_fraction=0.25"]
    paper = load_config(ROOT / "configs" / "demo-paper.yaml", tiny + ["model.encoder_filters=[8,8,8,8,8]",
                                                                      "model.decoder_filters=[8,8,8,8]"])
    rec = load_config(ROOT / "configs" / "recommended.yaml", tiny + ["model.encoder_filters=[8,8,8]",
                                                                     "model.decoder_filters=[8,8]", "train.epochs=3"])
    assert rec.train.lr_schedule == "cosine"  # the recommended recipe races with its own schedule
    r = time_to_quality(paper, rec, paper_epochs=1, max_epochs=2, log=lambda *_: None)
    assert r["recommended_lr_schedule"] == "cosine"
    assert r["recommended_final_learning_rate"] < 0.99 * rec.train.learning_rate  # decayed: the schedule ran
    assert len(r["paper_curve"]) == 1 and r["target_mse"] == pytest.approx(r["paper_curve"][-1][1], abs=1e-6)
    assert 1 <= r["recommended_epochs"] <= 2
    reached = [m for _, m in r["recommended_curve"] if m <= r["target_mse"]]
    assert (r["speedup"] is not None) == bool(reached)
    if reached:  # it stops at the first epoch that reaches the target
        assert r["recommended_curve"][-1][1] <= r["target_mse"]
