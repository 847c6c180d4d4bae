"""Sample- and latent-quality measures over numpy feature arrays.

The features are the attribute probe's penultimate layer (:mod:`cartoon_vae.probe`),
not an ImageNet network (none can be downloaded here), so the distances are named
FD_attr and KID_attr: the Frechet and kernel distances of FID and KID, computed in
a feature space that knows only Cartoon Set attributes. They compare models with
each other on this data; they are not comparable with published FID/KID numbers.

Example:
    >>> fd = frechet_distance(real_features, sample_features)
    >>> p, r = precision_recall(real_features, sample_features, k=3)
"""

from __future__ import annotations

import numpy as np


def _sqrt_psd(m):
    """Square root of a symmetric positive semi-definite matrix (negative round-off clipped)."""
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a, b) -> float:
    """|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2) of Gaussians fitted to (n, d) features."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = _sqrt_psd(s_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root @ s_b @ root), 0, None)).sum()
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2 * cross)


def _poly_kernel(x, y):
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x, y) -> float:
    """Unbiased MMD^2 between two samples with KID's kernel k(x, y) = (x.y / d + 1)^3."""
    m, n = len(x), len(y)
    kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def kernel_inception_distance(a, b, subsets=10, subset_size=100, seed=0) -> dict:
    """KID (Binkowski et al. 2018): unbiased MMD^2 averaged over random subsets; mean and std."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    size = min(subset_size, len(a), len(b))
    rng = np.random.default_rng(seed)
    values = [mmd2_unbiased(a[rng.choice(len(a), size, replace=False)], b[rng.choice(len(b), size, replace=False)])
              for _ in range(subsets)]
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "subsets": subsets, "subset_size": size}


def _distances(x, y):
    """(len(x), len(y)) Euclidean distances, without an (n, m, d) intermediate."""
    d2 = (x ** 2).sum(1)[:, None] + (y ** 2).sum(1)[None, :] - 2 * x @ y.T
    return np.sqrt(np.clip(d2, 0, None))


def _knn_radii(x, k):
    return np.sort(_distances(x, x), axis=1)[:, k]  # column 0 is the point itself


def _inside_any_ball(points, centres, radii):
    return (_distances(points, centres) <= radii[None, :]).any(axis=1)


def precision_recall(real, fake, k=3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) with k-nearest-neighbour balls.

    Precision: the fraction of generated samples inside some real sample's k-NN ball
    (realism). Recall: the fraction of real samples inside some generated sample's ball
    (coverage).
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    precision = _inside_any_ball(fake, real, _knn_radii(real, k)).mean()
    recall = _inside_any_ball(real, fake, _knn_radii(fake, k)).mean()
    return float(precision), float(recall)


def total_variation(p, q) -> float:
    """0.5 * sum |p - q| of two histograms (normalised here)."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def active_units(means, threshold=0.01) -> int:
    """Burda et al. (2016): latent dimensions whose mean varies over the data, Var_x(E[z_d | x]) > threshold."""
    return int((np.var(np.asarray(means), axis=0) > threshold).sum())


def interpolation_unevenness(frames) -> float:
    """How unevenly an image path changes along equal latent steps: std / mean of the distances
    between consecutive frames (0 = every step changes the image equally). ``frames``: (steps, ...)."""
    f = np.asarray(frames, np.float64).reshape(len(frames), -1)
    steps = np.linalg.norm(np.diff(f, axis=0), axis=1)
    return float(steps.std() / max(steps.mean(), 1e-12))
