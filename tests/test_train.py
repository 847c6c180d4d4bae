"""Training's own rules: what --resume may change, where it resumes from, and an epoch without images.

A real training run, its checkpoints, crashes and resumes are tested in tests/test_reliability.py,
tests/test_untrusted_input.py and tests/test_pipeline.py."""

import numpy as np
import pytest

from cartoon_vae import build_vae, load_config
from cartoon_vae.data import DataError
from cartoon_vae.runs import RunError, write_history
from cartoon_vae.train import RESUMABLE, RunKeeper, check_resume_overrides, resume_point

from .conftest import small_overrides


def test_resume_may_change_only_the_resumable_keys():
    check_resume_overrides([f"train.{k}=1" for k in RESUMABLE["train"]])
    with pytest.raises(RunError, match=r"--set data.batch_size: cannot change on --resume"):
        check_resume_overrides(["train.epochs=3", "data.batch_size=4"])


def test_a_fresh_folder_resumes_from_nothing_and_a_trained_one_never_from_nothing(tmp_path):
    assert resume_point(tmp_path, None) == (0, None)
    write_history(tmp_path / "history.csv", [{"epoch": 1, "loss": 1.0}])
    with pytest.raises(RunError, match="history.csv with 1 epoch.*would train again from epoch 1"):
        resume_point(tmp_path, None)
    (tmp_path / "model.keras").write_bytes(b"not a model")
    with pytest.raises(RunError, match="model.keras does not load"):
        resume_point(tmp_path, None)


def test_an_epoch_that_saw_no_image_stops_training(tmp_path):
    keeper = RunKeeper(tmp_path, [])
    keeper.on_epoch_begin(0)
    with pytest.raises(DataError, match="epoch 1 saw no training image"):
        keeper.on_epoch_end(0, {})
    assert not (tmp_path / "history.csv").exists()


def test_a_cosine_schedule_decays_to_zero_and_resumes_where_it_was(tmp_path, paper_config_path):
    import keras

    from cartoon_vae.train import learning_rate

    cfg = load_config(paper_config_path, ["train.lr_schedule=cosine", "train.epochs=4", "train.learning_rate=0.01"])
    schedule = learning_rate(cfg, steps_per_epoch=5)
    assert float(schedule(0)) == pytest.approx(0.01) and float(schedule(10)) == pytest.approx(0.005, rel=1e-4)
    assert float(schedule(20)) == pytest.approx(0.0, abs=1e-9)
    assert learning_rate(load_config(paper_config_path), 5) == load_config(paper_config_path).train.learning_rate
    vae = build_vae(load_config(paper_config_path, small_overrides()), learning_rate=schedule)
    x = np.random.RandomState(0).rand(8, 64, 64, 3).astype("float32")
    vae.fit(x, batch_size=4, epochs=1, verbose=0)
    vae.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert float(loaded.optimizer.learning_rate) == pytest.approx(float(schedule(2)))  # after two steps


def test_the_palette_gives_a_colour_drawn_on_few_pixels_its_own_entry():
    from cartoon_vae.train import fit_palette

    images = np.ones((20, 32, 32, 3), np.float32)  # white, with blended grey edges and a small red patch
    images[:, :16] = np.linspace(0.2, 0.9, 16)[None, :, None, None]
    images[:, 30:, 30:] = [0.8, 0.1, 0.1]
    palette = fit_palette(images, 6, seed=0)
    assert palette.shape == (6, 3) and palette.dtype == np.float32
    assert np.abs(palette - [0.8, 0.1, 0.1]).max(1).min() < 0.02
    few = fit_palette(np.zeros((1, 4, 4, 3), np.float32), 3)  # fewer colours than entries: each repeated
    np.testing.assert_array_equal(few, np.zeros((3, 3), np.float32))
