"""Where new faces' latent codes come from: one registry of samplers, each fitted to a run's training codes.

A sampler has ``fit(codes)``, ``sample(n, rng)`` and a fitted state of plain arrays that is cached in
the run folder. Four are registered:

* ``minmax`` (the paper's Fig. 5): the per-dimension min and max of the codes, then
  z = min + u * (max - min), u ~ U(0, 1) (:func:`cartoon_vae.latent.sample_minmax`).
* ``normal``: the prior N(0, I); it learns nothing from the codes.
* ``gmm``: a full-covariance Gaussian mixture over the codes, its size chosen by held-out
  likelihood (ex-post density estimation, Ghosh et al. 2020; :func:`cartoon_vae.latent.fit_gmm`).
* ``two_stage``: a small second VAE fitted to the codes, sampled through its decoder (Dai and Wipf
  2019; :func:`cartoon_vae.latent.fit_two_stage`).

:func:`fitted_samplers` is the one place a run's samplers are chosen, read from their caches or
fitted: ``sample``, ``figures``, ``evaluate``, ``ablate`` and the explorer all call it. The codes
are the latent means of up to ``n_images`` training images (never the held-out faces samples are
scored against), encoded once for every fit that needs them. A cache is used only if it reads back
whole, is consistent, and was made by this model (a fingerprint of the encoder's weights) from the
same image count; otherwise it is recomputed with a notice and written under the run folder's
writer lock. Adding a sampler (a flow, say) is a class here and a line in
:data:`SAMPLERS`.

Example:
    >>> samplers = fitted_samplers("runs/demo", vae, config, ["gmm"], 5000)
    >>> z = samplers["gmm"].sample(10, np.random.default_rng(0))
"""

from __future__ import annotations

import abc
from pathlib import Path

import numpy as np

from .latent import (fit_gmm, fit_two_stage, model_fingerprint, sample_gmm, sample_minmax, sample_normal,
                     sample_two_stage)
from .runs import atomic_path, writer

MIN_MIXTURE_CODES = 10  # fewer codes cannot choose a component count on a held-out fifth


def _finite(*arrays) -> bool:
    return all(np.issubdtype(a.dtype, np.number) and np.isfinite(a).all() for a in arrays)


class Sampler(abc.ABC):
    """Base class. ``cache``: the run-folder file of the fitted state (None: nothing to fit);
    ``fingerprint_suffix`` tells caches written under older rules apart."""

    name = ""
    cache: str | None = None
    fingerprint_suffix = ""
    what = "latent fit"

    def __init__(self, latent_dim):
        self.latent_dim = int(latent_dim)
        self.state: dict = {}

    def fit(self, codes) -> "Sampler":
        return self

    @abc.abstractmethod
    def sample(self, n, rng) -> np.ndarray:
        """``n`` codes, (n, latent_dim) float32, drawn with the NumPy generator ``rng``."""

    def valid(self, state) -> bool:
        """Whether a cached state is whole and consistent (shapes, finite values)."""
        return True

    @property
    def count(self) -> int:
        """How many codes it was fitted to."""
        return int(self.state.get("count", 0))


class MinMax(Sampler):
    """The paper's Fig. 5: uniform in the per-dimension box of the codes."""

    name, cache, what = "minmax", "latent_stats.npz", "latent statistics"
    # "-train": statistics of the training split only; a cache written before that rule (training and
    # held-out images) carries the bare fingerprint and is recomputed.
    fingerprint_suffix = "-train"

    def fit(self, codes):
        """``codes``: an (n, d) array, or an iterable of such batches (a running min and max, so
        memory does not grow with the number of images)."""
        lo = hi = None
        count = 0
        for batch in [codes] if isinstance(codes, np.ndarray) else codes:
            lo = batch.min(0) if lo is None else np.minimum(lo, batch.min(0))
            hi = batch.max(0) if hi is None else np.maximum(hi, batch.max(0))
            count += len(batch)
        if not count:
            raise ValueError("no images to compute latent statistics from")
        self.state = {"min": lo, "max": hi, "count": count}
        return self

    def sample(self, n, rng):
        return sample_minmax(self.state["min"], self.state["max"], n, rng)

    def valid(self, s):
        return {"min", "max", "count"} <= set(s) and s["min"].shape == s["max"].shape == (self.latent_dim,) \
            and _finite(s["min"], s["max"])


class Normal(Sampler):
    """The prior N(0, I)."""

    name = "normal"

    def sample(self, n, rng):
        return sample_normal(n, self.latent_dim, rng)


class Mixture(Sampler):
    """A Gaussian mixture fitted to the codes."""

    name, cache, what = "gmm", "latent_gmm.npz", "latent mixture"

    def fit(self, codes):
        codes = np.asarray(codes)
        if len(codes) < MIN_MIXTURE_CODES:
            raise ValueError(f"the Gaussian mixture needs the codes of at least {MIN_MIXTURE_CODES} training "
                             f"images, this run's data has {len(codes)}; use more images")
        g = fit_gmm(codes)
        self.state = {"weights": g["weights"], "means": g["means"], "covariances": g["covariances"],
                      "count": len(codes), "components": g["components"]}
        return self

    def sample(self, n, rng):
        return sample_gmm(self.state, n, rng)

    def valid(self, s):
        if not {"weights", "means", "covariances", "count", "components"} <= set(s):
            return False
        w, m, cov = s["weights"], s["means"], s["covariances"]
        d = self.latent_dim
        return w.ndim == 1 and m.shape == (len(w), d) and cov.shape == (len(w), d, d) and _finite(w, m, cov) \
            and bool(np.all(w >= 0)) and w.sum() > 0


class TwoStage(Sampler):
    """A second VAE fitted to the codes (Dai and Wipf 2019), sampled through its decoder."""

    name, cache, what = "two_stage", "latent_two_stage.npz", "second-stage VAE"

    def fit(self, codes):
        codes = np.asarray(codes)
        self.state = {**fit_two_stage(codes), "count": len(codes)}
        return self

    def sample(self, n, rng):
        return sample_two_stage(self.state, n, rng)

    def valid(self, s):
        keys = {"w0", "b0", "w1", "b1", "w2", "b2", "mean", "std", "count"}
        if not keys <= set(s):
            return False
        d = self.latent_dim
        return s["w0"].shape[0] == d and s["w2"].shape[1] == d and s["mean"].shape == s["std"].shape == (d,) \
            and s["w0"].shape[1] == s["b0"].shape[0] == s["w1"].shape[0] and s["w1"].shape[1] == s["b1"].shape[0] \
            == s["w2"].shape[0] and s["b2"].shape == (d,) and _finite(*(s[k] for k in keys - {"count"}))


SAMPLERS = {cls.name: cls for cls in (MinMax, Normal, Mixture, TwoStage)}


def _read_cache(sampler, path, fingerprint, n_images):
    """The cached state, or None after saying why it cannot be used."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            cached = {k: f[k] for k in f.files}
        if str(cached.get("fingerprint")) != fingerprint:
            why = "of another model"
        elif cached.get("requested", np.array(-1)).shape != () or int(cached["requested"]) != n_images:
            why = "of another image count"
        else:
            why = None if sampler.valid(cached) else "damaged"
    except Exception as e:  # truncated or zeroed: zipfile, OSError, ValueError, EOFError ...
        why = f"unreadable ({type(e).__name__})"
    if why is None:
        return {k: v for k, v in cached.items() if k not in ("fingerprint", "requested")}
    print(f"{path}: {sampler.what} {why}; recomputing them for this model from {n_images} images")
    return None


def fitted_samplers(run_dir, vae, config, names, n_images, codes=None, write=True) -> dict:
    """``{name: fitted sampler}`` for a run, each from its cache or fitted to the latent means of up to
    ``n_images`` training images (encoded once, for all, and only if some fit is needed; ``codes``
    gives them instead) and cached (unless not ``write``). Raises DataError for a data set too small
    for a fit, before anything is written."""
    from .data import DataError
    from .inference import encode_means, training_batches

    run_dir = Path(run_dir)
    unknown = [n for n in names if n not in SAMPLERS]
    if unknown:
        raise ValueError(f"unknown sampler {unknown[0]!r}; registered: {', '.join(SAMPLERS)}")
    samplers = {n: SAMPLERS[n](vae.latent_dim) for n in names}
    fingerprint, to_fit = model_fingerprint(vae), []
    for sampler in samplers.values():
        if sampler.cache is None:
            continue
        state = _read_cache(sampler, run_dir / sampler.cache, fingerprint + sampler.fingerprint_suffix, n_images)
        if state is None:
            to_fit.append(sampler)
        else:
            sampler.state = state
    if not to_fit:
        return samplers
    if codes is None:
        codes = np.concatenate(list(encode_means(vae, training_batches(config), n_images)))
    for sampler in to_fit:
        try:
            sampler.fit(codes)
        except ValueError as e:
            raise DataError(f"{run_dir}: {e}") from None
    for sampler in to_fit if write else ():
        with writer(run_dir), atomic_path(run_dir / sampler.cache) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **sampler.state, requested=n_images, fingerprint=fingerprint + sampler.fingerprint_suffix)
    return samplers


def sample_all(run_dir, vae, config, n, seed) -> dict:
    """``n`` codes from every registered sampler, each drawn with ``np.random.default_rng(seed)``."""
    samplers = fitted_samplers(run_dir, vae, config, list(SAMPLERS), config.sample.stats_images)
    return {name: s.sample(n, np.random.default_rng(seed)) for name, s in samplers.items()}
