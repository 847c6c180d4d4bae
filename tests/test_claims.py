"""The claims as data: derived series, contexts, comparisons left out, verdicts combined."""

import math

import numpy as np

from cartoon_vae.claims import CLAIMS, Comparison, combine, compare, context, judge, time_to, val_mse_at


def _run(seed, curve, diverged=False, **values):
    return {"seed": seed, "diverged": diverged, "val_mse_curve": curve, **values}


def test_time_to_and_val_mse_at_read_the_curves():
    rows = {"a": [_run(0, [[10.0, 0.03], [20.0, 0.02], [30.0, 0.01]]), _run(1, [[12.0, 0.05]]),
                  _run(2, [[5.0, 0.001]], diverged=True)]}
    np.testing.assert_array_equal(time_to(rows, "a", 0.02, [0, 1, 2]), [20.0, math.nan, math.nan])
    np.testing.assert_array_equal(val_mse_at(rows, "a", 2, [0, 1, 2]), [0.02, math.nan, math.nan])


def test_the_rise_compares_the_same_epoch_and_is_left_out_without_its_runs():
    curve = [[1.0, 0.05], [2.0, 0.04], [3.0, 0.03]]
    rows = {"paper": [_run(s, curve) for s in range(3)], "exact_bounded": [_run(s, curve) for s in range(3)],
            "paper@lr3x": [_run(s, curve[:2]) for s in range(3)],
            "exact_bounded@lr3x": [_run(s, [[1.0, 0.05], [2.0, 0.06 + 0.001 * s]]) for s in range(3)]}
    three, ten = CLAIMS[2].comparisons
    assert context(rows, three, [0, 1, 2]) == {"epoch": 2, "mult": "3"}
    assert compare(rows, ten, [0, 1, 2], 0.95, {}) is None  # no lr x10 runs
    r = compare(rows, three, [0, 1, 2], 0.95, {})
    assert r["label"] == "rise of val MSE at epoch 2 with lr x3" and r["n"] == 3
    assert r["mean"] < 0 and r["verdict"] == "supported"  # the bound's runs rose less than the exact ones


def test_one_pair_is_inconclusive_and_not_shown():
    rows = {"a": [{"seed": 0, "diverged": False, "m": 1.0}], "b": [{"seed": 0, "diverged": False, "m": 2.0}]}
    r = compare(rows, Comparison("x", "a", "b", "m"), [0], 0.95, {})
    assert r == {"verdict": "inconclusive", "shown": False, "votes": True}


def test_combine():
    assert combine(["supported", "supported"]) == "supported"
    assert combine(["supported", "not supported"]) == "inconclusive (the measures disagree)"
    assert combine(["supported", "inconclusive"]) == "supported by some measures, inconclusive by others"
    assert combine(["inconclusive"]) == "inconclusive"


def test_a_claim_whose_variants_are_missing_is_not_judged():
    assert judge(CLAIMS[0], {"paper": []}, [0], 0.95, {}) is None
