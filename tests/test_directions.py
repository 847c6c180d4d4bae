"""Classifier edit directions on toy latent tables: where they point, how far they move, what they hold."""

import numpy as np
import pytest

from cartoon_vae.directions import (edit_by_strength, edit_to_class, edit_to_probability, fit_direction, hold, logits,
                                    probability)


def _toy(n=400, seed=0):
    """Codes whose dimension 0 (scaled by 5) carries attribute a and dimension 1 attribute b."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(2, size=n), rng.integers(3, size=n)
    z = rng.normal(size=(n, 10))
    z[:, 0] += 5 * (2 * a - 1)
    z[:, 1] += 2 * b
    return z, a, b


def test_direction_finds_the_dimension_that_carries_the_attribute():
    z, a, b = _toy()
    d = fit_direction(z, a, to=1)
    assert abs(d["u"][0]) > 0.95 and d["u"][0] > 0 and d["train_accuracy"] > 0.95
    labels = a.copy()
    labels[:10] = -1  # unlabelled rows are ignored
    assert fit_direction(z, labels, to=1)["train_accuracy"] > 0.95
    assert abs(fit_direction(z, b, to=2)["u"][1]) > 0.9  # a three-valued attribute: its own dimension
    with pytest.raises(ValueError):
        fit_direction(z, a, to=7)


@pytest.mark.parametrize("attribute,to", [("a", 1), ("b", 0), ("b", 2)])
def test_edit_to_probability_reaches_the_target_reading(attribute, to):
    z, a, b = _toy()
    labels = {"a": a, "b": b}[attribute]
    d = fit_direction(z, labels, to=to)
    start = z[labels != to][:20]
    edited = edit_to_probability(start, d, p=0.9)
    np.testing.assert_allclose(probability(d, edited), 0.9, atol=2e-3)
    already = z[labels == to][:10]
    stay = probability(d, already) >= 0.9  # faces the classifier reads at >= 0.9 stay where they are
    assert stay.any()
    np.testing.assert_allclose(edit_to_probability(already, d, 0.9)[stay], already[stay], atol=1e-5)


def test_edit_by_strength_is_in_standard_deviations_along_the_direction():
    z, a, _ = _toy()
    d = fit_direction(z, a, to=1)
    moved = edit_by_strength(z[:3], d, [0.0, 1.0, 2.0])
    assert moved.shape == (3, 3, 10)
    np.testing.assert_allclose(moved[:, 0], z[:3], atol=1e-5)
    step = ((moved[:, 2] - moved[:, 0]) / d["scale"]) @ d["u"]  # in standardised units along the direction
    np.testing.assert_allclose(step, 2 * d["spread"], rtol=1e-4)


def test_hold_leaves_the_other_classifiers_readings_unchanged():
    z, a, b = _toy()
    d = fit_direction(z, a, to=1)
    other = fit_direction(z, b, to=0)
    held = hold(d, [other])
    starts = z[a == 0][:10]
    before = logits(other, starts)
    for moved in (edit_by_strength(starts, held, [3.0])[:, 0], edit_to_probability(starts, held, 0.9)):
        after = logits(other, moved)  # softmax ignores a common shift of the logits
        np.testing.assert_allclose(after - after.mean(1, keepdims=True), before - before.mean(1, keepdims=True),
                                   atol=1e-3)
    assert np.all(probability(held, edit_to_probability(starts, held, 0.9)) > 0.89)  # the edit still works


def test_edit_to_class_moves_only_the_classifier_subspace_to_the_target_mean():
    z, a, b = _toy()
    d = fit_direction(z, b, to=2)
    assert 2 <= d["subspace"].shape[1] <= 4  # three classes: two directions of weights, two of means
    moved = edit_to_class(z[b == 0][:30], d)
    xs = (moved - d["center"]) / d["scale"]
    np.testing.assert_allclose(xs @ d["subspace"], np.tile(d["target_mean"] @ d["subspace"], (30, 1)), atol=1e-5)
    outside = np.eye(10) - d["subspace"] @ d["subspace"].T  # what the classifier cannot see stays
    x0 = (z[b == 0][:30] - d["center"]) / d["scale"]
    np.testing.assert_allclose(xs @ outside, x0 @ outside, atol=1e-5)
    assert np.mean(probability(d, moved) > 0.5) > 0.9
    half = edit_to_class(z[b == 0][:30], d, amount=0.5)
    np.testing.assert_allclose(half, (z[b == 0][:30] + moved) / 2, atol=1e-4)


def test_companions_widen_the_subspace():
    z, a, b = _toy()
    alone = fit_direction(z, a, to=0)
    with_b = fit_direction(z, a, to=0, companions=[b])
    assert alone["subspace"].shape[1] <= 2 and with_b["subspace"].shape[1] > alone["subspace"].shape[1]
