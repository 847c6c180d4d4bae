"""FD, KID, precision/recall, TV, active units and interpolation evenness on hand-computed cases."""

import numpy as np
import pytest

from cartoon_vae.metrics import (active_units, delta_e, frechet_distance, srgb_to_lab, interpolation_unevenness,
                                 kernel_inception_distance, mmd2_unbiased, precision_recall, total_variation)


def test_frechet_distance_of_identical_sets_is_zero():
    x = np.random.default_rng(0).normal(size=(500, 8))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_with_fewer_images_than_dimensions_equals_the_covariance_formula():
    from scipy import linalg

    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(12, 40)), rng.normal(1.0, 2.0, size=(9, 40)) @ rng.normal(size=(40, 40)) / 6
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = (np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(s_a + s_b)
                - 2 * np.trace(linalg.sqrtm(s_a @ s_b).real))  # pytorch-fid's formula
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)  # the n x n path (12, 9 < 40 dimensions)
    assert frechet_distance(a[:, :8], b[:, :8]) == pytest.approx(  # the d x d path, against the same formula
        np.sum((a[:, :8].mean(0) - b[:, :8].mean(0)) ** 2) + np.trace(s_a[:8, :8] + s_b[:8, :8])
        - 2 * np.trace(linalg.sqrtm(s_a[:8, :8] @ s_b[:8, :8]).real), rel=1e-6)


def test_frechet_distance_closed_form_for_shifted_and_scaled_gaussians():
    # N(0, I) vs N(m, 4I) in d dims: |m|^2 + d(1 + 4 - 2*2) = |m|^2 + d
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200_000, 3))
    b = 2.0 * rng.normal(size=(200_000, 3)) + np.array([1.0, 2.0, 0.0])
    assert frechet_distance(a, b) == pytest.approx(5.0 + 3.0, rel=0.02)


def test_mmd2_is_unbiased_on_a_known_case():
    # Two samples from the same distribution: the unbiased estimate averages to 0 (a biased one would not).
    rng = np.random.default_rng(2)
    values = [mmd2_unbiased(rng.normal(size=(20, 4)), rng.normal(size=(20, 4))) for _ in range(400)]
    assert abs(np.mean(values)) < 3 * np.std(values) / np.sqrt(len(values))
    # Hand-computed: 1-d points, kernel (xy + 1)^3. x = {0, 1}, y = {2}: y has n = 1, so use n = 2 copies.
    x, y = np.array([[0.0], [1.0]]), np.array([[2.0], [2.0]])
    kxx, kyy, kxy = 1.0, 125.0, (1 + 27 + 1 + 27) / 4  # k(0,1) = 1, k(2,2) = 125, k(0,2) = 1, k(1,2) = 27
    assert mmd2_unbiased(x, y) == pytest.approx(kxx + kyy - 2 * kxy)


def test_kid_reports_subset_settings():
    rng = np.random.default_rng(3)
    k = kernel_inception_distance(rng.normal(size=(50, 4)), rng.normal(size=(60, 4)) + 3, subsets=5, subset_size=40)
    assert k["subset_size"] == 40 and k["subsets"] == 5 and k["mean"] > 0.5


def test_precision_recall_on_toy_clouds():
    rng = np.random.default_rng(4)
    real = rng.normal(size=(300, 2))
    assert precision_recall(real, real.copy(), k=3) == (1.0, 1.0)
    collapsed = real[:300] * 0.05                       # realistic but covers only the centre
    p, r = precision_recall(real, collapsed, k=3)
    assert p > 0.9 and r < 0.3
    far = rng.normal(size=(300, 2)) + 20                 # neither realistic nor covering
    assert precision_recall(real, far, k=3) == (0.0, 0.0)


def test_total_variation_and_active_units():
    assert total_variation([1, 1, 0], [0, 1, 1]) == pytest.approx(0.5)
    assert total_variation([2, 2], [5, 5]) == 0.0
    means = np.zeros((100, 4))
    means[:, 0] = np.linspace(-1, 1, 100)   # variance 0.34: active
    means[:, 1] = np.linspace(-0.1, 0.1, 100)  # variance 0.0034: inactive
    assert active_units(means) == 1


def test_interpolation_unevenness():
    even = np.linspace(0, 1, 10)[:, None] * np.ones((10, 5))
    assert interpolation_unevenness(even) == pytest.approx(0.0, abs=1e-9)
    jump = np.concatenate([np.zeros((5, 5)), np.ones((5, 5))])
    assert interpolation_unevenness(jump) == pytest.approx(np.sqrt(8))  # one step of 9 carries everything


# Disentanglement scores: toy codes whose answer is known, and hand computations on tiny cases.

def _toy(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, 2, n), rng.integers(0, 3, n), rng.integers(0, 2, n)], 1)
    copy = factors + rng.normal(0, 0.05, factors.shape)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return factors, copy, copy @ q, rng.normal(size=(n, 3))


def test_mig_copy_scores_one_rotation_lower_noise_zero():
    from cartoon_vae.metrics import mig

    factors, copy, rotated, noise = _toy()
    assert mig(copy, factors) > 0.95
    assert mig(rotated, factors) < 0.6
    assert mig(noise, factors) < 0.05


def test_mig_hand_computed():
    from cartoon_vae.metrics import mig, mutual_information_matrix

    factors = np.array([[0], [0], [1], [1]])
    codes = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])  # dim 0 is the factor, dim 1 independent
    mi = mutual_information_matrix(codes, factors, bins=2)
    np.testing.assert_allclose(mi[:, 0], [np.log(2), 0.0], atol=1e-12)
    assert mig(codes, factors, bins=2) == pytest.approx(1.0)


def test_dci_from_importance_hand_computed():
    from cartoon_vae.metrics import dci_from_importance

    assert dci_from_importance(np.eye(2)) == {"disentanglement": 1.0, "completeness": 1.0}
    assert dci_from_importance(np.ones((2, 2))) == pytest.approx({"disentanglement": 0.0, "completeness": 0.0})
    h = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))  # code 0 splits 3:1 over the factors, code 1 unused
    assert dci_from_importance([[3, 1], [0, 0]]) == pytest.approx({"disentanglement": 1 - h, "completeness": 1.0})


@pytest.mark.parametrize("estimator", ["linear", "gbt"])
def test_dci_copy_scores_high_rotation_lower_noise_uninformative(estimator):
    from cartoon_vae.metrics import dci

    factors, copy, rotated, noise = _toy()
    t, v = slice(0, 1000), slice(1000, None)
    c, r, z = (dci(x[t], factors[t], x[v], factors[v], estimator=estimator) for x in (copy, rotated, noise))
    assert c["disentanglement"] > 0.9 and c["completeness"] > 0.9 and c["informativeness"] > 0.95
    assert r["disentanglement"] < c["disentanglement"] - 0.2
    assert z["informativeness"] < 0.6 and z["disentanglement"] < 0.3


def test_sap_copy_high_noise_zero_and_hand_computed():
    from cartoon_vae.metrics import sap

    factors, copy, rotated, noise = _toy()
    t, v = slice(0, 1000), slice(1000, None)
    assert sap(copy[t], factors[t], copy[v], factors[v]) > 0.3
    assert sap(noise[t], factors[t], noise[v], factors[v]) < 0.05
    # Hand case: dimension 0 is a binary factor, dimension 1 is constant: accuracies 1 and 1/2, gap 1/2.
    f = np.array([[0], [1], [0], [1]] * 5)
    codes = np.c_[f[:, 0] * 2.0 - 1.0, np.zeros(len(f))]
    assert sap(codes, f, codes, f) == pytest.approx(0.5)


def test_cielab_of_white_black_and_red_and_the_distance_between_them():
    np.testing.assert_allclose(srgb_to_lab([1.0, 1.0, 1.0]), [100, 0, 0], atol=0.01)
    np.testing.assert_allclose(srgb_to_lab([0.0, 0.0, 0.0]), [0, 0, 0], atol=1e-9)
    np.testing.assert_allclose(srgb_to_lab([1.0, 0.0, 0.0]), [53.24, 80.09, 67.20], atol=0.02)  # published sRGB red
    assert delta_e([1.0, 1.0, 1.0], [0.0, 0.0, 0.0]) == pytest.approx(100, abs=0.01)
    assert delta_e(np.zeros((4, 3)), np.zeros((4, 3))).shape == (4,)
