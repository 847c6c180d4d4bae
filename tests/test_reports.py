"""results.md reports paired intervals and the verdicts they support; metrics.md renders a run's numbers."""

import math

import numpy as np

from cartoon_vae.ablate import AblationSpec, Variant
from cartoon_vae.reports import SAMPLERS, results_markdown


def _row(variant, seed, rng, **values):
    row = {"variant": variant, "seed": seed, "diverged": False, "seconds_per_epoch": 5.0 + rng.normal(0, 0.05),
           "final_val_mse": 0.01, "val_mse_curve": [[5.0 * (e + 1), 0.02 / (e + 1)] for e in range(6)],
           "ssim": 0.8, "kl_exact_heldout": 40.0, "kl_poly_heldout": 2.0 + rng.normal(0, 0.1),
           "variance_above_one": 0.02, "active_units": 7, "unevenness": 0.2 + rng.normal(0, 0.01),
           "midpoint_fd_attr": 50 + rng.normal(0, 1), "mig": 0.01, "dci_disentanglement": 0.1, "sap": 0.01}
    for m in SAMPLERS:
        row.update({f"fd_attr_{m}": 100.0 + rng.normal(0, 1), f"fd_attr_{m}_interval": [95.0, 105.0],
                    f"recall_{m}": 0.0})
    row.update(values)
    return row


def test_report_pairs_by_seed_and_reads_verdicts_off_the_interval():
    rng = np.random.default_rng(0)
    seeds = [0, 1, 2, 3, 4]
    rows = {"paper": [_row("paper", s, rng, fd_attr_minmax=80.0 + s, fd_attr_normal=120.0 + s) for s in seeds],
            "exact_bounded": [_row("exact_bounded", s, rng) for s in seeds[:4]]
            + [{"variant": "exact_bounded", "seed": 4, "diverged": True}]}
    md = results_markdown(AblationSpec("b.yaml", tuple(seeds), (Variant("paper"), Variant("exact_bounded")),
                                       equivalence={"seconds_per_epoch": 0.1}),
                          {"rows": rows, "evaluation_seconds": 60, "machine": "test CPU"}, "configs/ablation.yaml")
    assert "| exact_bounded | 1/5 |" in md                               # the diverged run is counted, not averaged
    # equal speed within 10%: "much faster" is not supported (the interval sits inside the margin)
    assert "### (a) The bound makes training much faster — not supported" in md
    # min-max beats N(0, I) by 40 on every seed: a tight interval below 0
    row = next(line for line in md.splitlines() if line.startswith("| paper: fd_attr min-max vs normal"))
    assert "| -40.0 | [-40.0, -40.0] |" in row and row.endswith("| supported |") and "| 5 |" in row
    assert "### (e) Min-max uniform sampling gives realistic faces (better than N(0, I)) — supported" in md
    # paired over the 4 seeds both variants finished
    row = next(line for line in md.splitlines() if line.startswith("| interpolation unevenness"))
    assert "| 4 |" in row
    assert "### (d) Eq. 5 is a lower bound of the KL — not supported as stated" in md


def test_verdict_is_inconclusive_when_the_interval_straddles_zero():
    rng = np.random.default_rng(1)
    seeds = [0, 1, 2, 3, 4]
    noise = [-6.0, 5.0, -4.0, 7.0, -3.0]
    rows = {"paper": [_row("paper", s, rng, fd_attr_minmax=100.0 + noise[s]) for s in seeds]}
    md = results_markdown(AblationSpec("b.yaml", tuple(seeds), (Variant("paper"),)), {"rows": rows}, "a.yaml")
    row = next(line for line in md.splitlines() if line.startswith("| paper: fd_attr min-max vs normal"))
    assert row.endswith("| inconclusive |") and not math.isnan(float(row.split("|")[4]))


def test_the_editing_report_stays_importable_from_here():
    from cartoon_vae import editing_report, reports

    assert all(getattr(reports, n) is getattr(editing_report, n) for n in ("EDIT_TARGET", "edit_verdict",
                                                                           "editing_markdown"))
