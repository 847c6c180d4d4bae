"""The attribute probe learns generated faces above chance, and a damaged probe folder is named in one line."""

import json

import numpy as np
import pytest

from cartoon_vae import load_config
from cartoon_vae.probe import Probe, read_info, train_probe
from cartoon_vae.runs import RunError
from cartoon_vae.synthetic import make_dataset

from .conftest import ROOT


def test_probe_trains_above_chance_on_generated_faces(tmp_path):
    make_dataset(tmp_path / "faces", n=200, seed=4, workers=2, progress=False)
    cfg = load_config(ROOT / "configs" / "demo-paper.yaml", [f"data.dir={tmp_path / 'faces'}", "data.image_size=32",
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


GOOD = {"names": ["hair", "glasses"], "n_variants": [3, 2], "image_size": 32, "crop": 1.0}


@pytest.mark.parametrize("change,words", [({"names": "hair"}, "'names' and 'n_variants'"),
                                          ({"n_variants": [3]}, "'names' and 'n_variants'"),
                                          ({"n_variants": [3, True]}, "'names' and 'n_variants'"),
                                          ({"image_size": 4}, "'image_size' must be an integer in [8, 2048]"),
                                          ({"crop": 0}, "'crop' must be a number in (0, 1]")])
def test_probe_json_is_checked(tmp_path, change, words):
    (tmp_path / "probe.json").write_text(json.dumps(GOOD))
    assert read_info(tmp_path / "probe.json") == GOOD
    (tmp_path / "probe.json").write_text(json.dumps({**GOOD, **change}))
    with pytest.raises(RunError) as e:
        read_info(tmp_path / "probe.json")
    assert words in str(e.value) and "probe.json" in str(e.value)
