"""The ablation spec is checked, and results.md reports paired intervals and the verdicts they support."""

import pytest

from cartoon_vae.ablate import load_ablation, variant_config
from cartoon_vae.config import ConfigError

from .conftest import ROOT


def test_shipped_ablation_config_changes_one_thing_per_variant():
    spec = load_ablation(ROOT / "configs" / "ablation.yaml")
    assert len(spec["seeds"]) >= 5
    v = {x["name"]: x for x in spec["variants"]}
    paper, exact_b, exact = (variant_config(spec, v[n], 0) for n in ("paper", "exact_bounded", "exact"))
    assert (paper.loss.kl, exact_b.loss.kl) == ("poly_bound", "exact")
    assert exact_b.model.bounded_variance is True and exact.model.bounded_variance is False  # the head apart
    assert variant_config(spec, v["paper_variance"], 0).model.reparam == "paper_variance"
    assert variant_config(spec, v["recommended"], 0).loss.reconstruction == "calibrated_gaussian"
    assert variant_config(spec, v["paper"], 3).train.seed == 3


@pytest.mark.parametrize("text,words", [
    ("base: x\nseeds: [0]\nvariants: [{name: a}]\nbogus: 1\n", "bogus: unknown key"),
    ("base: x\nseeds: []\nvariants: [{name: a}]\n", "non-empty"),
    ("base: x\nseeds: [0]\nvariants: [3]\n", "each needs a name"),
    ("base: x\nseeds: [0]\nvariants: [{name: a, sett: []}]\n", "a: sett: unknown key"),
    ("base: x\nseeds: [0]\nvariants: [{name: a}]\nconfidence: 2\n", "confidence"),
    ("- 1\n", "expected a mapping"),
])
def test_bad_ablation_spec_is_one_line(tmp_path, text, words):
    (tmp_path / "a.yaml").write_text(text)
    with pytest.raises(ConfigError, match=words):
        load_ablation(tmp_path / "a.yaml")
