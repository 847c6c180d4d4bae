"""Evaluation settings are typed and checked.

The full evaluation runs end to end in tests/test_pipeline.py and tests/test_untrusted_input.py."""

import numpy as np
import pytest

from cartoon_vae.config import ConfigError
from cartoon_vae.evaluate import evaluation_settings


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
