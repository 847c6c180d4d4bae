"""Edit scores: the probe's verdict on edit columns and pooled rates (the whole evaluation of edits runs end to
end in tests/test_pipeline.py)."""

import numpy as np

from cartoon_vae.edit_scores import _pooled, probe_edit_columns


class Probe:
    """Reads attribute "a" as 1 where the image's mean is above 0.5."""

    def features_and_predictions(self, images):
        means = np.asarray(images).reshape(len(images), -1).mean(1)
        return None, {"a": (means > 0.5).astype(int), "b": np.zeros(len(images), int)}


def test_probe_edit_columns_scores_each_edited_column_against_the_reconstructions():
    dark, light = np.zeros((2, 4, 4, 3)), np.ones((2, 4, 4, 3))
    scores = probe_edit_columns(Probe(), {"original": dark, "reconstruction": dark, "+1 sd": light,
                                          "class mean": dark}, "a", 1)
    assert list(scores) == ["+1 sd", "class mean"]
    assert scores["+1 sd"]["succeeded"] == 2 and scores["class mean"]["succeeded"] == 0
    assert scores["+1 sd"]["gain"] == 1.0


def test_pooled_rates_weigh_each_edit_by_its_faces():
    edits = {"a->1": {"m": {"faces": 10, "worked": 9, "x": 1.0}}, "b->0": {"m": {"faces": 30, "worked": 15, "x": 0.0}},
             "c->2": {"other": {"faces": 5, "worked": 5}}}
    assert _pooled(edits, "m") == 24 / 40 and _pooled(edits, "m", "x") == 10 / 40
    assert np.isnan(_pooled(edits, "missing"))


def test_recoloured_against_composited_pools_colour_and_shape_edits_apart():
    from cartoon_vae.edit_scores import _recolour_against_composite

    yes, no = np.ones(4, bool), np.zeros(4, bool)
    verdicts = {"hair_color->1": {"label_swap_recolour": yes, "label_swap_composite": no, "label_swap": no},
                "face_color->0": {"label_swap_recolour": yes, "label_swap_composite": yes},
                "glasses->5": {"label_swap_recolour": no, "label_swap_composite": yes}}
    r = _recolour_against_composite(verdicts)
    assert set(r) == {"label_swap colour", "label_swap shape"}
    colour, shape = r["label_swap colour"], r["label_swap shape"]
    assert (colour["edits"], colour["items"], colour["only_a"], colour["only_b"]) == (2, 8, 4, 0)
    assert (shape["edits"], shape["items"], shape["only_a"], shape["only_b"]) == (1, 4, 0, 4)
    assert colour["p"] == shape["p"] == 0.125  # 4 disagreements, all one way: 2 / 2^4
