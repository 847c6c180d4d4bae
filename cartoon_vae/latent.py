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

Two-stage sampling (Dai and Wipf 2019, "Diagnosing and Enhancing VAE Models"): a small second VAE
is fitted to the training codes, whose own prior N(0, I) its decoder maps onto the aggregate posterior;
a sample is u ~ N(0, I) put through that decoder. Its decoder's weights are plain arrays, so sampling is
NumPy only.

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


TWO_STAGE_HIDDEN = 256   # units of each of the second VAE's two hidden layers (encoder and decoder)
TWO_STAGE_EPOCHS = 200  # passes over the codes (batch TWO_STAGE_BATCH, learning rate TWO_STAGE_RATE halved twice) ...
TWO_STAGE_MAX_STEPS = 10_000  # ... but at most this many Adam steps
TWO_STAGE_BATCH = 128
TWO_STAGE_RATE = 1e-3


def _mlp_weights(sizes, rng):
    """Glorot-uniform weights and zero biases of a fully connected stack of layer ``sizes``."""
    out = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        limit = np.sqrt(6.0 / (a + b))
        out += [rng.uniform(-limit, limit, (a, b)).astype(np.float32), np.zeros(b, np.float32)]
    return out


def fit_two_stage(codes, hidden=TWO_STAGE_HIDDEN, epochs=TWO_STAGE_EPOCHS, batch=TWO_STAGE_BATCH,
                  rate=TWO_STAGE_RATE, seed=0) -> dict:
    """The second stage of Dai and Wipf (2019) fitted to (n, d) codes: an MLP VAE (two hidden ReLU layers
    each way, a d-dimensional latent u) whose Gaussian decoder learns its own variance gamma^2, on the codes
    standardised per dimension, the KL's weight rising from 0 to 1 over the first quarter of the steps (else
    the second VAE can settle on ignoring its latent). Returns plain arrays: the decoder's weights ``w0, b0, w1, b1, w2, b2``, the
    codes' ``mean`` and ``std``, the learned ``log_gamma`` and the final ``loss`` (nats per code)."""
    import tensorflow as tf

    codes = np.asarray(codes, np.float32)
    n, d = codes.shape
    if n < 2:
        raise ValueError(f"the two-stage sampler needs the codes of at least 2 training images, got {n}")
    steps = min(TWO_STAGE_MAX_STEPS, epochs * -(-n // batch))
    mean, std = codes.mean(0), codes.std(0) + 1e-6
    data = (codes - mean) / std
    rng = np.random.default_rng(seed)
    enc = [tf.Variable(w) for w in _mlp_weights([d, hidden, hidden, 2 * d], rng)]
    dec = [tf.Variable(w) for w in _mlp_weights([d, hidden, hidden, d], rng)]
    log_gamma = tf.Variable(0.0)
    weights = enc + dec + [log_gamma]
    schedule = tf.keras.optimizers.schedules.PiecewiseConstantDecay([steps // 2, 3 * steps // 4],
                                                                     [rate, rate / 2, rate / 4])
    optimizer = tf.keras.optimizers.Adam(schedule)

    def mlp(ws, x):
        for i in range(0, len(ws) - 2, 2):
            x = tf.nn.relu(x @ ws[i] + ws[i + 1])
        return x @ ws[-2] + ws[-1]

    @tf.function
    def step(x, eps, beta):
        with tf.GradientTape() as tape:
            mu, log_var = tf.split(mlp(enc, x), 2, axis=-1)
            x_hat = mlp(dec, mu + tf.exp(0.5 * log_var) * eps)
            nll = tf.reduce_sum((x - x_hat) ** 2, -1) / (2 * tf.exp(2 * log_gamma)) + d * log_gamma
            kl = 0.5 * tf.reduce_sum(tf.exp(log_var) + mu ** 2 - 1.0 - log_var, -1)
            loss = tf.reduce_mean(nll + beta * kl)
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        return loss

    loss = float("nan")
    for i in range(steps):  # the KL's weight warms up over the first quarter, so the codes are not ignored
        rows = rng.integers(0, n, min(batch, n))
        loss = float(step(tf.constant(data[rows]), tf.constant(rng.standard_normal((len(rows), d)), tf.float32),
                          tf.constant(min(1.0, 4.0 * (i + 1) / steps))))
    return {**_layer_arrays(dec), "mean": mean, "std": std, "log_gamma": np.float32(log_gamma.numpy()),
            "loss": np.float32(loss)}


def _layer_arrays(weights) -> dict:
    """A fully connected stack's weights and biases, in turn, as plain arrays ``w0, b0, w1, b1, ...``."""
    return {f"{'wb'[j % 2]}{j // 2}": np.asarray(w) for j, w in enumerate(weights)}


def sample_two_stage(state, n, rng) -> np.ndarray:
    """n codes from a second stage fitted by :func:`fit_two_stage`: u ~ N(0, I) through its decoder (its mean:
    the learned gamma is small, and adding its noise only blurs), back to the codes' scale."""
    x = rng.standard_normal((n, state["w0"].shape[0])).astype(np.float32)
    x = np.maximum(x @ state["w0"] + state["b0"], 0.0)
    x = np.maximum(x @ state["w1"] + state["b1"], 0.0)
    x = x @ state["w2"] + state["b2"]
    return (x * state["std"] + state["mean"]).astype(np.float32)


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
