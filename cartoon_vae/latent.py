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

Example:
    >>> stats = minmax_stats(vae, images)          # streamed over batches
    >>> z = sample_minmax(stats["min"], stats["max"], 10, np.random.default_rng(0))
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .runs import atomic_path, writer

MIN_MIXTURE_CODES = 10  # fewer codes cannot choose a component count on a held-out fifth


def encode_means(vae, batches, limit=None):
    """Yield latent means batch by batch for up to ``limit`` images (memory does not grow)."""
    seen = 0
    for batch in batches:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        if limit is not None:
            x = x[: limit - seen]
        mean, _ = vae.encode(x, training=False)
        mean = np.asarray(mean)
        seen += len(mean)
        yield mean
        if limit is not None and seen >= limit:
            return


def minmax_stats(vae, batches, limit=None) -> dict:
    """Running per-dimension min and max of the latent means: ``{"min", "max", "count"}``."""
    lo = hi = None
    count = 0
    for mean in encode_means(vae, batches, limit):
        lo = mean.min(0) if lo is None else np.minimum(lo, mean.min(0))
        hi = mean.max(0) if hi is None else np.maximum(hi, mean.max(0))
        count += len(mean)
    if count == 0:
        raise ValueError("no images to compute latent statistics from")
    return {"min": lo, "max": hi, "count": count}


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
    if len(codes) < MIN_MIXTURE_CODES:
        raise ValueError(f"need at least {MIN_MIXTURE_CODES} codes to fit a mixture, got {len(codes)}")
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


def _cached(path, fingerprint, requested, compute, what, valid):
    """A fit of this model's latent codes kept in an .npz: reused only if it reads back whole, passes
    ``valid`` (shapes and finite values), and its fingerprint and requested image count match;
    otherwise computed by ``compute()`` (a dict of arrays) and replaced, under the run folder's
    writer lock (:func:`cartoon_vae.runs.writer`), so a run being trained is never written to."""
    path = Path(path)
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                cached = {k: f[k] for k in f.files}
            if str(cached.get("fingerprint")) != fingerprint:
                why = "of another model"
            elif cached.get("requested", np.array(-1)).shape != () or int(cached["requested"]) != requested:
                why = "of another image count"
            else:
                why = None if valid(cached) else "damaged"
        except Exception as e:  # truncated or zeroed: zipfile, OSError, ValueError, EOFError ...
            why = f"unreadable ({type(e).__name__})"
        if why is None:
            return {k: v for k, v in cached.items() if k not in ("fingerprint", "requested")}
        print(f"{path}: {what} {why}; recomputing them for this model from {requested} images")
    result = compute()
    with writer(path.parent), atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **result, requested=requested, fingerprint=fingerprint)
    return result


def _finite(*arrays) -> bool:
    return all(np.issubdtype(a.dtype, np.number) and np.isfinite(a).all() for a in arrays)


def _valid_stats(c) -> bool:
    return {"min", "max", "count"} <= set(c) and c["min"].ndim == 1 and c["min"].shape == c["max"].shape \
        and _finite(c["min"], c["max"]) and bool(np.all(c["min"] <= c["max"]))


def _valid_gmm(c) -> bool:
    if not {"weights", "means", "covariances", "count", "components"} <= set(c):
        return False
    w, m, cov = c["weights"], c["means"], c["covariances"]
    return w.ndim == 1 and m.ndim == 2 and cov.ndim == 3 and len(w) == len(m) == len(cov) \
        and cov.shape[1:] == (m.shape[1], m.shape[1]) and _finite(w, m, cov) and bool(np.all(w >= 0)) \
        and w.sum() > 0


def cached_minmax_stats(run_dir, vae, batches_fn, n_images, refresh=False) -> dict:
    """The run's min-max statistics, computed once and cached in ``latent_stats.npz``.

    The cache is used only if it was made by this model (weights fingerprint) from
    the same number of images; otherwise it is recomputed and replaced.
    """
    path = Path(run_dir) / "latent_stats.npz"
    if refresh and path.exists():
        path.unlink()
    # "-train": statistics of the training split only; a cache written before that rule (training and
    # held-out images) carries the bare fingerprint and is recomputed.
    stats = _cached(path, model_fingerprint(vae) + "-train", n_images,
                    lambda: minmax_stats(vae, batches_fn(), n_images), "latent statistics", _valid_stats)
    return {"min": stats["min"], "max": stats["max"], "count": int(stats["count"])}


def cached_gmm(run_dir, vae, batches_fn, n_images) -> dict:
    """The run's Gaussian mixture over the latent means of up to ``n_images`` training images
    (:func:`fit_gmm`), cached in ``latent_gmm.npz`` like the min-max statistics."""
    def compute():
        codes = np.concatenate(list(encode_means(vae, batches_fn(), n_images)))
        if len(codes) < MIN_MIXTURE_CODES:
            from .data import DataError
            raise DataError(f"{run_dir}: the Gaussian mixture needs the codes of at least {MIN_MIXTURE_CODES} "
                            f"training images, this run's data has {len(codes)}; use more images")
        g = fit_gmm(codes)
        return {"weights": g["weights"], "means": g["means"], "covariances": g["covariances"],
                "count": len(codes), "components": g["components"]}

    return _cached(Path(run_dir) / "latent_gmm.npz", model_fingerprint(vae), n_images, compute, "latent mixture",
                   _valid_gmm)
