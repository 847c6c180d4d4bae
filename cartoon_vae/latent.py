"""Latent-space tools over numpy arrays: min-max statistics, the paper's uniform sampling, N(0, I), interpolation.

Min-max sampling (the paper's Fig. 5): take the per-dimension min and max of the
latent codes of ``stats_images`` images, draw u ~ U(0, 1) of shape (n, latent_dim),
and decode z = min + u * (max - min). The codes are the encoder's **means**, not
sampled z: the means are what the encoder says about each image; sampled z adds the
posterior noise, whose extremes would widen the box with values that describe no
image (and make the statistics random from run to run).

Example:
    >>> stats = minmax_stats(vae, images)          # streamed over batches
    >>> z = sample_minmax(stats["min"], stats["max"], 10, np.random.default_rng(0))
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .runs import RunError, atomic_path


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


def cached_minmax_stats(run_dir, vae, batches_fn, n_images, refresh=False) -> dict:
    """The run's min-max statistics, computed once and cached in ``latent_stats.npz``.

    The cache is used only if it was made by this model (weights fingerprint) from
    the same number of images; otherwise it is recomputed and replaced.
    """
    path = Path(run_dir) / "latent_stats.npz"
    fingerprint = model_fingerprint(vae)
    if path.exists() and not refresh:
        try:
            with np.load(path) as f:
                cached = {k: f[k] for k in f.files}
        except (OSError, ValueError) as e:
            raise RunError(f"{path}: unreadable latent statistics ({e}); delete it to recompute") from None
        if str(cached.get("fingerprint")) == fingerprint and int(cached.get("requested", -1)) == n_images:
            return {"min": cached["min"], "max": cached["max"], "count": int(cached["count"])}
        why = "another model" if str(cached.get("fingerprint")) != fingerprint else "another image count"
        print(f"{path}: statistics of {why}; recomputing them for this model from {n_images} images")
    stats = minmax_stats(vae, batches_fn(), n_images)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, min=stats["min"], max=stats["max"], count=stats["count"], requested=n_images,
                     fingerprint=fingerprint)
    return stats
