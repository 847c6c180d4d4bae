"""The latent-space maths over numpy arrays: min-max sampling, interpolation, the Gaussian mixture."""

import numpy as np
import pytest

from cartoon_vae.latent import interpolate, model_fingerprint, sample_minmax, sample_normal


def test_minmax_sampler_hand_computed():
    lo, hi = np.array([0.0, -1.0]), np.array([2.0, 1.0])
    u = np.random.default_rng(7).uniform(size=(3, 2))
    z = sample_minmax(lo, hi, 3, np.random.default_rng(7))
    np.testing.assert_allclose(z, [[2 * u[0, 0], -1 + 2 * u[0, 1]], [2 * u[1, 0], -1 + 2 * u[1, 1]],
                                   [2 * u[2, 0], -1 + 2 * u[2, 1]]], rtol=1e-6)
    # The reference code's u * (max - |min|) would give u * (1 - 1) = 0 in the second dimension.
    assert np.all(np.abs(z[:, 1]) > 0)


def test_interpolate_includes_both_ends():
    z = interpolate([0.0, 0.0], [1.0, 2.0], 3)
    np.testing.assert_allclose(z, [[0, 0], [0.5, 1], [1, 2]])


def test_gmm_fit_chooses_components_by_heldout_likelihood_and_samples_them():
    from cartoon_vae.latent import fit_gmm, sample_gmm

    rng = np.random.default_rng(0)
    centres = np.array([[-6.0, 0.0, 0.0], [6.0, 0.0, 0.0], [0.0, 8.0, 0.0]])
    codes = centres[rng.integers(3, size=600)] + rng.normal(scale=0.5, size=(600, 3))
    g = fit_gmm(codes, components=(1, 2, 3, 4), seed=0)
    assert g["components"] >= 3 and g["heldout_loglik"][3] > g["heldout_loglik"][1] + 1
    z = sample_gmm(g, 3000, np.random.default_rng(1))
    assert z.shape == (3000, 3) and z.dtype == np.float32
    nearest = np.argmin(((z[:, None] - centres[None]) ** 2).sum(-1), 1)
    assert np.allclose(np.bincount(nearest, minlength=3) / 3000, 1 / 3, atol=0.05)
    assert np.abs(z - centres[nearest]).std() < 0.7  # draws stay near a component, not between them


def test_normal_samples_are_standard():
    z = sample_normal(20_000, 3, np.random.default_rng(0))
    assert z.dtype == np.float32 and np.allclose(z.mean(0), 0, atol=0.03) and np.allclose(z.std(0), 1, atol=0.03)


def test_fingerprint_changes_with_the_encoder_weights():
    class Encoder:
        def __init__(self, w):
            self.weights = [np.array(w, np.float32)]

    class Vae:
        def __init__(self, w):
            self.encoder = Encoder(w)

    assert model_fingerprint(Vae([1, 2])) == model_fingerprint(Vae([1, 2])) != model_fingerprint(Vae([1, 3]))


def test_two_stage_vae_learns_the_codes_distribution_and_samples_it_deterministically():
    from cartoon_vae.latent import fit_two_stage, sample_two_stage

    rng = np.random.default_rng(0)
    centres = np.array([[-4.0, 0.0, 1.0, 0.0], [4.0, 2.0, -1.0, 0.0]])
    codes = (centres[rng.integers(2, size=400)] + rng.normal(scale=0.4, size=(400, 4))).astype(np.float32)
    state = fit_two_stage(codes, hidden=64, epochs=150, seed=0)
    assert state["log_gamma"] < -0.2  # its decoder explains the codes better than their spread (gamma = 1) does
    z = sample_two_stage(state, 2000, np.random.default_rng(1))
    assert z.shape == (2000, 4) and z.dtype == np.float32
    np.testing.assert_array_equal(z, sample_two_stage(state, 2000, np.random.default_rng(1)))
    nearest = np.argmin(((z[:, None] - centres[None]) ** 2).sum(-1), 1)
    assert 0.3 < nearest.mean() < 0.7  # both clusters drawn ...
    assert np.median(np.abs(z - centres[nearest]).max(1)) < 1.5  # ... and draws land near one, not between
    with pytest.raises(ValueError, match="at least 2"):
        fit_two_stage(codes[:1])
