"""One run set-up: a run opened with its config, attributes and datasets, each split encoded when first used."""

import numpy as np
import pytest
import yaml

from cartoon_vae import build_vae, load_config
from cartoon_vae.loaded import open_run
from cartoon_vae.synthetic import make_dataset

from .conftest import ROOT


def _run(tmp_path, *extra, label_sizes=None):
    faces = tmp_path / "faces"
    if not faces.exists():
        make_dataset(faces, n=12, seed=4, workers=1, progress=False)
    cfg = load_config(ROOT / "configs" / "paper.yaml", [f"data.dir={faces}", "data.image_size=32", "data.batch_size=4",
                                                         "data.val_fraction=0.25", "data.load_size=64",
                                                         "model.latent_dim=4", "model.encoder_filters=[8,8]",
                                                         "model.decoder_filters=[8]", *extra])
    run = tmp_path / ("cond" if label_sizes else "run")
    run.mkdir()
    build_vae(cfg, label_sizes=label_sizes).save(run / "model.keras")
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    return run


def test_a_run_opens_without_encoding_then_each_split_is_encoded_once_in_its_order(tmp_path):
    run = open_run(_run(tmp_path), heldout_limit=2)
    assert "heldout" not in vars(run) and "train" not in vars(run)  # nothing encoded yet
    held, train = run.heldout, run.train
    assert held.images.shape == (2, 32, 32, 3) and held.means.shape == held.log_vars.shape == (2, 4)
    assert train.images is None and len(train.means) == 9 and run.heldout is held  # cached
    assert held.rows.tolist() == run.attrs.values[held.index].tolist() and held.labels is None
    assert not set(held.index) & set(train.index)


def test_a_conditional_run_carries_each_faces_one_hot_labels_and_data_can_be_redirected(tmp_path):
    path = _run(tmp_path, "model.conditional=[glasses]", "model.conditional_variants=[6]", label_sizes=[6])
    run = open_run(path)
    glasses = run.attrs.names.index("glasses")
    assert run.heldout.labels.shape == (3, 6)
    assert run.heldout.labels.argmax(1).tolist() == run.heldout.rows[:, glasses].tolist()
    with pytest.raises(Exception, match="nowhere"):
        open_run(path, data=tmp_path / "nowhere")
    np.testing.assert_array_equal(run.train.labels.sum(1), 1.0)
