"""Colour fidelity: the generator's regions of each part, and distances that read 0 for the face itself and
another colour for a face redrawn in one."""

import numpy as np
import pytest

from cartoon_vae import load_config
from cartoon_vae.colour import REGIONS, colour_fidelity, region_distances, regions
from cartoon_vae.counterfactual import true_counterfactual
from cartoon_vae.synthetic import sample_attributes

from .conftest import ROOT


@pytest.fixture(scope="module")
def data_cfg():
    return load_config(ROOT / "configs" / "recommended.yaml").data


def _face(**changes):
    a = sample_attributes(np.random.default_rng(4))
    a.update(changes)
    return a


def test_each_part_has_its_own_region_and_a_missing_part_none(data_cfg):
    with_all = regions(_face(glasses=0, facial_hair=0, hair_color=0, face_color=0), data_cfg)
    assert set(with_all) == set(REGIONS)
    for name in ("skin", "hair", "facial_hair", "glasses"):
        assert with_all[name].sum() > 20, name
    assert not (with_all["skin"] & with_all["hair"]).any() and not (with_all["hair"] & with_all["facial_hair"]).any()
    bare = regions(_face(glasses=5, facial_hair=5), data_cfg)  # the last variants: none
    assert not bare["glasses"].any() and not bare["facial_hair"].any()


def test_the_face_itself_is_at_distance_zero_and_a_recoloured_part_is_another_colour(data_cfg):
    face = _face(glasses=0, glasses_color=2, facial_hair=0, hair_color=0)
    masks = regions(face, data_cfg)
    original = true_counterfactual(face, data_cfg)
    same = region_distances(original, original, masks)
    assert all(d == 0 or np.isnan(d) for d in same.values())
    recoloured = region_distances(original, true_counterfactual({**face, "glasses_color": 3}, data_cfg), masks)
    assert recoloured["glasses"] > 10 and recoloured["skin"] < 1 and recoloured["hair"] < 1


def test_colour_fidelity_counts_faces_above_the_threshold_per_region_and_for_the_worst(data_cfg):
    names = list(_face())
    faces = [_face(hair_color=0, glasses=5), _face(hair_color=0, glasses=5)]
    rows = np.array([[f[n] for n in names] for f in faces])
    originals = np.stack([true_counterfactual(f, data_cfg) for f in faces])
    recon = np.stack([originals[0], true_counterfactual({**faces[1], "hair_color": 8}, data_cfg)])  # black -> white
    summary, per = colour_fidelity(data_cfg, rows, names, originals, recon)
    assert summary["faces"] == 2 and summary["regions"]["glasses"]["faces"] == 0
    assert summary["regions"]["hair"]["above_share"] == 0.5 and summary["worst"]["above_share"] == 0.5
    assert summary["worst_main"]["above_share"] == 0.5
    assert per["worst"][0] == 0 and per["hair"][1] > 50
