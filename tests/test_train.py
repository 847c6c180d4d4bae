"""Training's own rules: what --resume may change, where it resumes from, and an epoch without images.

A real training run, its checkpoints, crashes and resumes are tested in tests/test_reliability.py,
tests/test_untrusted_input.py and tests/test_pipeline.py."""

import pytest

from cartoon_vae.data import DataError
from cartoon_vae.runs import RunError, write_history
from cartoon_vae.train import RESUMABLE, RunKeeper, check_resume_overrides, resume_point


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
