"""Edit directions on a toy latent table; the attribute probe learns generated faces above chance."""

import json

import numpy as np
import pytest

from cartoon_vae import load_config
from cartoon_vae.edit import attribute_direction, edit_latents, edit_scores
from cartoon_vae.probe import Probe, train_probe
from cartoon_vae.synthetic import make_dataset

from .conftest import ROOT


def test_direction_is_the_difference_of_labelled_means():
    means = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 4.0], [9.0, 9.0]])
    labels = np.array([1, 1, 0, 2, -1])  # the last face is unlabelled and ignored
    np.testing.assert_allclose(attribute_direction(means, labels, to=1), [2.0, 0.0] - np.array([0.0, 3.0]))
    np.testing.assert_allclose(attribute_direction(means, labels, to=1, from_=0), [2.0, -2.0])
    with pytest.raises(ValueError):
        attribute_direction(means, labels, to=7)


def test_edit_latents_moves_each_code_by_each_strength():
    z = edit_latents(np.zeros((2, 3)), np.array([1.0, 0.0, -1.0]), [-1, 0, 2])
    assert z.shape == (2, 3, 3)
    np.testing.assert_allclose(z[1, 2], [2.0, 0.0, -2.0])


def test_edit_scores():
    base = {"hair": np.array([0, 0, 1, 2]), "glasses": np.array([0, 1, 1, 1]), "eye": np.array([2, 2, 2, 2])}
    edited = {"hair": np.array([3, 3, 3, 1]), "glasses": np.array([0, 1, 0, 1]), "eye": np.array([2, 2, 2, 2])}
    assert edit_scores(edited, base, "hair", 3) == {"success": 0.75, "preservation": (0.75 + 1.0) / 2}


def test_probe_trains_above_chance_on_generated_faces(tmp_path):
    make_dataset(tmp_path / "faces", n=200, seed=4, workers=2, progress=False)
    cfg = load_config(ROOT / "configs" / "demo.yaml", [f"data.dir={tmp_path / 'faces'}", "data.image_size=32",
                                                        "data.load_size=128", "data.val_fraction=0.25"])
    info = train_probe(cfg, tmp_path / "probe", epochs=12, learning_rate=3e-3, verbose=0)
    saved = json.loads((tmp_path / "probe" / "probe.json").read_text())
    assert saved["heldout_accuracy"] == info["heldout_accuracy"] and len(saved["names"]) == 18
    # Large, easy attributes must be read well above chance by a tiny probe on 150 faces.
    for name in ("face_shape", "hair", "chin_length"):
        assert info["heldout_accuracy"][name] > 2 * info["chance"][name], (name, info["heldout_accuracy"][name])
    probe = Probe.load(tmp_path / "probe")
    feats, preds = probe.features_and_predictions(np.random.default_rng(0).random((3, 64, 64, 3), np.float32))
    assert feats.shape == (3, 128) and set(preds) == set(saved["names"]) and preds["hair"].shape == (3,)
