"""Latent-space tools over numpy arrays: min-max statistics, the paper's uniform sampling, N(0, I),
a Gaussian mixture fitted to the codes, interpolation.

Min-max sampling (the paper's Fig. 5): take the per-dimension min and max of the
latent codes of ``stats_images`` images, draw u ~ U(0, 1) of shape (n, latent_dim),
and decode z = min + u * (max - min). The codes are the encoder's **means**, not
sampled z: the means are what the encoder says about each image; sampled z adds the
posterior noise, whose extremes would widen the box with values that describe no
image (and make the statistics random from run to run).

Mixture sampling (ex-post density estimation, Ghosh et al. 2020): a VAE's decoder has seen the
*aggregate posterior* (the codes of the training images), which need not fill N(0, I) nor the
min-max box. A Gaussian mixture fitted to the training codes, with its component count chosen by
held-out log-likelihood, samples where the decoder has been trained.

The samplers built on these (fitted to a run's codes, cached in its folder) are in
:mod:`cartoon_vae.samplers`; the loops that encode images to codes are in :mod:`cartoon_vae.inference`.

Example:
    >>> z = sample_minmax(codes.min(0), codes.max(0), 10, np.random.default_rng(0))
"""

from __future__ import annotations

import hashlib

import numpy as np



def sample_minmax(lo, hi, n, rng) -> np.ndarray:
    """z = min + u * (max - min), u ~ U(0, 1) of shape (n, latent_dim): the paper's text, not its code's."""
    lo, hi = np.asarray(lo, np.float32), np.asarray(hi, np.float32)
    u = rng.uniform(size=(n, lo.shape[-1])).astype(np.float32)
    return lo + u * (hi - lo)


def sample_normal(n, latent_dim, rng) -> np.ndarray:
    """z ~ N(0, I), the VAE's prior."""
    return rng.standard_normal((n, latent_dim)).astype(np.float32)


def fit_gmm(codes, components=(1, 2, 4, 8, 16, 32), heldout=0.2, seed=0) -> dict:
    """A full-covariance Gaussian mixture fitted to (n, d) codes (scikit-learn's EM).

    The component count is the one of ``components`` with the highest mean log-likelihood on a
    held-out ``heldout`` fraction of the codes; the mixture of that size is then refitted on all
    codes. Returns plain arrays (``weights``, ``means``, ``covariances``) and the selection table.
    """
    from sklearn.mixture import GaussianMixture

    codes = np.asarray(codes, np.float64)
    if len(codes) < 10:
        raise ValueError(f"need at least 10 codes to fit a mixture, got {len(codes)}")
    order = np.random.default_rng(seed).permutation(len(codes))
    cut = max(1, int(round(len(codes) * heldout)))
    test, train = codes[order[:cut]], codes[order[cut:]]
    scores = {}
    for k in components:
        if k * 2 > len(train):
            break
        g = GaussianMixture(k, covariance_type="full", reg_covar=1e-4, random_state=seed, max_iter=200).fit(train)
        scores[int(k)] = float(g.score(test))
    best = max(scores, key=scores.get)
    g = GaussianMixture(best, covariance_type="full", reg_covar=1e-4, random_state=seed, max_iter=200).fit(codes)
    return {"weights": g.weights_, "means": g.means_, "covariances": g.covariances_,
            "components": best, "heldout_loglik": scores}


def sample_gmm(gmm, n, rng) -> np.ndarray:
    """n draws from a mixture returned by :func:`fit_gmm`: a component by its weight, then its Gaussian."""
    weights = np.asarray(gmm["weights"], np.float64)
    k = rng.choice(len(weights), size=n, p=weights / weights.sum())
    chol = np.linalg.cholesky(np.asarray(gmm["covariances"], np.float64))
    eps = rng.standard_normal((n, chol.shape[-1]))
    z = np.asarray(gmm["means"])[k] + np.einsum("nij,nj->ni", chol[k], eps)
    return z.astype(np.float32)


def interpolate(z0, z1, steps) -> np.ndarray:
    """``steps`` points on the straight line from z0 to z1, both ends included."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return (1 - t) * np.asarray(z0, np.float32)[None] + t * np.asarray(z1, np.float32)[None]


def model_fingerprint(vae) -> str:
    """A short hash of the encoder's weights: latent statistics belong to one model."""
    h = hashlib.sha1()
    for w in vae.encoder.weights:
        h.update(np.ascontiguousarray(np.asarray(w)).tobytes())
    return h.hexdigest()[:16]
