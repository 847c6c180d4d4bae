"""The ablation spec is checked, and results.md reports paired intervals and the verdicts they support."""

import pytest

from cartoon_vae.ablate import load_ablation, variant_config
from cartoon_vae.config import ConfigError

from .conftest import ROOT


def test_shipped_ablation_config_changes_one_thing_per_variant():
    spec = load_ablation(ROOT / "configs" / "ablation.yaml")
    assert len(spec.seeds) >= 5
    v = {x.name: x for x in spec.variants}
    paper, exact_b, exact = (variant_config(spec, v[n], 0) for n in ("paper", "exact_bounded", "exact"))
    assert (paper.loss.kl, exact_b.loss.kl) == ("poly_bound", "exact")
    assert exact_b.model.bounded_variance is True and exact.model.bounded_variance is False  # the head apart
    assert variant_config(spec, v["paper_variance"], 0).model.reparam == "paper_variance"
    rec = variant_config(spec, v["recommended"], 0)
    assert rec.loss.reconstruction == "calibrated_gaussian"
    assert (rec.train.lr_schedule, rec.train.epochs) == ("constant", 10)  # as docs/results.md measured it
    assert variant_config(spec, v["paper"], 3).train.seed == 3


@pytest.mark.parametrize("text,words", [
    ("base: x\nseeds: [0]\nvariants: [{name: a}]\nbogus: 1\n", "bogus: unknown key"),
    ("base: x\nseeds: []\nvariants: [{name: a}]\n", "non-empty"),
    ("base: x\nseeds: [0]\nvariants: [3]\n", r"variants\[0\]: expected a mapping"),
    ("base: x\nseeds: [0]\nvariants: [{name: a, sett: []}]\n", r"variants\[0\]\.sett: unknown key"),
    ("base: x\nseeds: [0]\nvariants: [{set: []}]\n", r"variants\[0\]\.name: required key missing"),
    ("base: x\nseeds: [0]\nvariants: [{name: a}]\nconfidence: 2\n", r"confidence: must be a number in \(0.5, 1\)"),
    ("base: x\nseeds: [-1]\nvariants: [{name: a}]\n", "seeds"),
    ("base: x\nseeds: [0]\nvariants: [{name: a, evaluate: sometimes}]\n", r"variants\[0\]\.evaluate"),
    ("base: x\nseeds: [0]\nvariants: [{name: a}]\nfid: {variants: {a: some}}\n", "fid.variants.a"),
    ("base: x\nseeds: [0]\nvariants: [{name: a}]\nequivalence: {fd_attr: big}\n", "equivalence.fd_attr"),
    ("- 1\n", "expected a mapping"),
    ("base: x\nseeds: [0, 0, 0]\nvariants: [{name: a}]\n", "seeds: must be a list of distinct"),  # one run, thrice
    ("base: x\nseeds: [0]\nvariants: [{name: ../../escaped}]\n", "variants: must be a list of variants with"),
    ("base: x\nseeds: [0]\nvariants: [{name: .hidden}]\n", "not starting with '.'"),
    ("base: x\nseeds: [0]\nvariants: [{name: a/b}]\n", "variants: must be"),
])
def test_bad_ablation_spec_is_one_line(tmp_path, text, words):
    (tmp_path / "a.yaml").write_text(text)
    with pytest.raises(ConfigError, match=words):
        load_ablation(tmp_path / "a.yaml")


def test_an_ablation_spec_is_read_only_up_to_its_size_limit_and_only_from_a_regular_file(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("base: x\nseeds: [0]\nvariants: [{name: a}]\n" + "#" * (2 << 20) + "\n")
    with pytest.raises(ConfigError, match="over 1,048,576 bytes"):
        load_ablation(big)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_ablation("/dev/zero")
