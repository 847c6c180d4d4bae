"""Equations 1-6: values, where eq. 5 is a bound, and numerical safety."""

import numpy as np
import pytest
import tensorflow as tf

from cartoon_vae.losses import (kl_exact, kl_poly_bound, palette_index, palette_mode, palette_nll, reconstruction_mse,
                                reparameterize)


def _np(x):
    return np.asarray(x)


def test_reconstruction_mse_is_per_image_mean():
    x = np.zeros((2, 4, 4, 3), "float32")
    x_hat = np.stack([np.full((4, 4, 3), 0.5), np.full((4, 4, 3), 1.0)]).astype("float32")
    np.testing.assert_allclose(_np(reconstruction_mse(x, x_hat)), [0.25, 1.0])


def test_kl_exact_matches_closed_form():
    mean = np.array([[1.0, -2.0]], "float32")
    log_var = np.log(np.array([[0.5, 3.0]], "float32"))
    s = np.exp(log_var)
    expected = 0.5 * np.sum(mean**2 + s - 1 - log_var)
    np.testing.assert_allclose(_np(kl_exact(mean, log_var)), [expected], rtol=1e-6)


def test_forms_agree_at_the_prior():
    mean = np.zeros((3, 200), "float32")
    log_var = np.zeros((3, 200), "float32")  # sigma^2 = 1
    np.testing.assert_allclose(_np(kl_exact(mean, log_var)), 0.0, atol=1e-6)
    np.testing.assert_allclose(_np(kl_poly_bound(mean, log_var)), 0.0, atol=1e-6)


def test_bound_is_below_exact_kl_only_for_variance_at_most_one():
    var = np.concatenate([np.linspace(1e-3, 1.0, 200), np.linspace(1.0 + 1e-3, 1.999, 200)]).astype("float32")
    mean = np.random.RandomState(0).normal(size=(400, 1)).astype("float32")
    log_var = np.log(var)[:, None]
    exact, poly = _np(kl_exact(mean, log_var)), _np(kl_poly_bound(mean, log_var))
    below = var <= 1.0
    assert np.all(poly[below] <= exact[below] + 1e-5)   # a lower bound here ...
    assert np.all(poly[~below] >= exact[~below] - 1e-5)  # ... and an upper bound on 1 < sigma^2 < 2
    assert np.all(poly[~below][50:] > exact[~below][50:])  # strictly, away from sigma^2 = 1


@pytest.mark.parametrize("fn", [kl_exact, kl_poly_bound])
def test_losses_and_gradients_finite_for_extreme_log_var(fn):
    log_var = tf.Variable(np.linspace(-30, 30, 61, dtype="float32")[None, :])
    mean = tf.Variable(np.linspace(-5, 5, 61, dtype="float32")[None, :])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(fn(mean, log_var))
    g_mean, g_log_var = tape.gradient(loss, [mean, log_var])
    assert np.isfinite(loss.numpy())
    assert np.all(np.isfinite(g_mean.numpy())) and np.all(np.isfinite(g_log_var.numpy()))


def test_reparameterize_std_and_paper_variance():
    mean = np.array([[1.0]], "float32")
    log_var = np.log(np.array([[4.0]], "float32"))
    eps = np.array([[0.5]], "float32")
    assert _np(reparameterize(mean, log_var, eps, "std"))[0, 0] == pytest.approx(1.0 + 2.0 * 0.5)
    assert _np(reparameterize(mean, log_var, eps, "paper_variance"))[0, 0] == pytest.approx(1.0 + 4.0 * 0.5)
    with pytest.raises(ValueError):
        reparameterize(mean, log_var, eps, "sigma")


def test_the_palette_likelihood_is_the_cross_entropy_of_each_pixels_nearest_colour():
    palette = np.array([[1, 1, 1], [0, 0, 0], [1, 0, 0]], "float32")
    x = np.array([[[[0.9, 0.95, 1.0], [0.8, 0.1, 0.1]], [[0.1, 0.1, 0.0], [0.6, 0.6, 0.6]]]], "float32")
    np.testing.assert_array_equal(_np(palette_index(x, palette)), [[[0, 2], [1, 0]]])
    logits = np.random.default_rng(0).normal(size=(1, 2, 2, 3)).astype("float32")
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -(log_p[0, 0, 0, 0] + log_p[0, 0, 1, 2] + log_p[0, 1, 0, 1] + log_p[0, 1, 1, 0])
    np.testing.assert_allclose(_np(palette_nll(x, logits, palette)), [expected], rtol=1e-5)
    np.testing.assert_array_equal(_np(palette_mode(logits, palette)), palette[logits.argmax(-1)])
