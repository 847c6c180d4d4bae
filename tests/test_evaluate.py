"""Evaluation settings are typed and checked; the probe's verdict on edit columns.

The full evaluation runs end to end in tests/test_pipeline.py and tests/test_untrusted_input.py."""

import numpy as np
import pytest

from cartoon_vae.config import ConfigError
from cartoon_vae.evaluate import evaluation_settings, probe_edit_columns


def test_settings_defaults_overrides_and_json_values():
    s = evaluation_settings({"samples": 12})
    assert s["samples"] == 12 and s["bootstrap"] == 200 and s["showcase"]["glasses"] == [-1]
    assert list(s)[:3] == ["samples", "sample_seed", "kid_subsets"]  # metrics.json keeps its order


@pytest.mark.parametrize("overrides,words", [({"sampels": 3}, "sampels: unknown key (did you mean samples?)"),
                                             ({"samples": 3}, "samples: must be an integer in [10, 1,000,000]"),
                                             ({"confidence": 1.5}, "confidence: must be a number in (0.5, 1)"),
                                             ({"edit_mode": "far"}, "edit_mode: must be one of class, probability"),
                                             ({"showcase": {"glasses": "none"}}, "showcase.glasses")])
def test_bad_settings_are_one_line(overrides, words):
    with pytest.raises(ConfigError) as e:
        evaluation_settings(overrides)
    assert words in str(e.value) and "\n" not in str(e.value)


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
