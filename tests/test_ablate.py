"""The ablation spec is checked, and results.md reports what the rows say."""

import pytest

from cartoon_vae.ablate import COLUMNS, load_ablation, results_markdown
from cartoon_vae.config import ConfigError

from .conftest import ROOT


def test_shipped_ablation_config_loads():
    spec = load_ablation(ROOT / "configs" / "ablation.yaml")
    assert [v["name"] for v in spec["variants"]][:2] == ["exact", "poly_bound"] and spec["seeds"] == [0, 1, 2]


@pytest.mark.parametrize("text,words", [
    ("base: x\nseeds: [0]\nvariants: [{name: a}]\nbogus: 1\n", "bogus: unknown key"),
    ("base: x\nseeds: []\nvariants: [{name: a}]\n", "non-empty"),
    ("base: x\nseeds: [0]\nvariants: [3]\n", "each needs a name"),
    ("- 1\n", "expected a mapping"),
])
def test_bad_ablation_spec_is_one_line(tmp_path, text, words):
    (tmp_path / "a.yaml").write_text(text)
    with pytest.raises(ConfigError, match=words):
        load_ablation(tmp_path / "a.yaml")


def _row(variant, seed, **values):
    row = {k: 1.0 for k, _, _ in COLUMNS}
    row.update(final_val_reconstruction=0.01, kl_exact_heldout=40.0, kl_poly_heldout=2.0, variance_above_one=0.02)
    row.update(variant=variant, seed=seed, diverged=False, **values)
    return row


def test_results_report_means_stds_divergence_and_verdicts():
    rows = {"exact": [_row("exact", s, seconds_per_epoch=5.0 + 0.1 * s, unevenness=0.20) for s in range(3)],
            "poly_bound": [_row("poly_bound", s, seconds_per_epoch=5.0 + 0.1 * s, unevenness=0.21) for s in range(2)]
            + [{"variant": "poly_bound", "seed": 2, "diverged": True}]}
    md = results_markdown({"base": "b.yaml", "seeds": [0, 1, 2]}, rows, "configs/ablation.yaml")
    assert "| exact | 0/3 | 5.10 +- 0.08 |" in md
    assert "| poly_bound | 1/3 | 5.05 +- 0.05 |" in md          # the diverged run is counted, not averaged
    assert "(a) The bound makes training much faster — not supported" in md
    assert "(b) The bound makes the latent space smoother — not supported" in md
    assert "Recall is 0" not in md  # the fake rows have recall 1
    assert "(c) The bound makes training more stable — not supported" in md and "Diverged runs: exact 0, bound 1" in md
    assert "98.0% of posterior variances are below 1" in md
