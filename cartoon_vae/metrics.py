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
    """|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2) of Gaussians fitted to (n, d) features.

    With fewer images than dimensions (Inception's 2048) the cross term is computed from the images
    instead of the d x d covariances: with A, B the centred features, S_a = A'A / (n_a - 1) and S_b likewise,
    the nonzero eigenvalues of S_a S_b are the squared singular values of A B' / sqrt((n_a - 1)(n_b - 1)), so
    Tr(...)^1/2 is that matrix's nuclear norm: an n_a x n_b SVD in place of two d x d eigendecompositions."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    n_a, n_b = len(a), len(b)
    if 2 <= min(n_a, n_b) < a.shape[1]:
        centred_a, centred_b = a - mu_a, b - mu_b
        cross = np.linalg.svd(centred_a @ centred_b.T, compute_uv=False).sum() / np.sqrt((n_a - 1) * (n_b - 1))
        return float(np.sum((mu_a - mu_b) ** 2) + np.sum(centred_a ** 2) / (n_a - 1)
                     + np.sum(centred_b ** 2) / (n_b - 1) - 2 * cross)
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


def ssim_psnr(x, y):
    """Per image: SSIM (Wang et al. 2004) and PSNR (dB) of two (n, H, W, 3) sets in [0, 1]."""
    import tensorflow as tf

    return (np.asarray(tf.image.ssim(tf.constant(x), tf.constant(y), max_val=1.0)),
            np.asarray(tf.image.psnr(tf.constant(x), tf.constant(y), max_val=1.0)))


def active_units(means, threshold=0.01) -> int:
    """Burda et al. (2016): latent dimensions whose mean varies over the data, Var_x(E[z_d | x]) > threshold."""
    return int((np.var(np.asarray(means), axis=0) > threshold).sum())


def interpolation_unevenness(frames) -> float:
    """How unevenly an image path changes along equal latent steps: std / mean of the distances
    between consecutive frames (0 = every step changes the image equally). ``frames``: (steps, ...)."""
    f = np.asarray(frames, np.float64).reshape(len(frames), -1)
    steps = np.linalg.norm(np.diff(f, axis=0), axis=1)
    return float(steps.std() / max(steps.mean(), 1e-12))


# Disentanglement scores over latent means ``codes`` (n, d) and discrete ground-truth ``factors`` (n, k),
# after disentanglement_lib (Locatello et al. 2019): MIG (Chen et al. 2018), DCI (Eastwood & Williams
# 2018), SAP (Kumar et al. 2018). Each is in [0, 1]; 1 = every factor in its own code dimension.

def discretize(codes, bins=20) -> np.ndarray:
    """Each code dimension cut into ``bins`` equal-width bins over its range (disentanglement_lib's
    histogram discretisation), as integers (n, d)."""
    codes = np.asarray(codes, np.float64)
    out = np.zeros(codes.shape, int)
    for i, c in enumerate(codes.T):
        edges = np.histogram_bin_edges(c, bins)
        out[:, i] = np.digitize(c, edges[1:-1])
    return out


def mutual_information_matrix(codes, factors, bins=20) -> np.ndarray:
    """(d, k) mutual information in nats between each discretised code dimension and each factor."""
    from sklearn.metrics import mutual_info_score

    binned, factors = discretize(codes, bins), np.asarray(factors)
    return np.array([[mutual_info_score(f, c) for f in factors.T] for c in binned.T])


def entropy(labels) -> float:
    """Entropy in nats of a discrete sample."""
    p = np.bincount(np.unique(np.asarray(labels), return_inverse=True)[1]) / len(labels)
    return float(-(p * np.log(p)).sum())


def mig(codes, factors, bins=20) -> float:
    """Mutual information gap: per factor, (largest - second largest MI with a code dimension) /
    H(factor), averaged over the factors that vary."""
    factors = np.asarray(factors)
    keep = [j for j in range(factors.shape[1]) if len(np.unique(factors[:, j])) > 1]
    mi = np.sort(mutual_information_matrix(codes, factors[:, keep], bins), axis=0)[::-1]
    h = np.array([entropy(factors[:, j]) for j in keep])
    return float(np.mean((mi[0] - mi[1]) / h))


def _normalised_entropy(p, base):
    """Entropy of each column of the distribution ``p`` (columns sum to 1) in log base ``base``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(p > 0, np.log(p), 0.0)
    return -(p * logs).sum(0) / np.log(base)


def dci_from_importance(importance) -> dict:
    """DCI disentanglement and completeness of a (d codes, k factors) importance matrix R >= 0.

    Disentanglement: per code i, 1 - H_k(R_i. / sum_j R_ij), weighted by the code's share of the
    total importance. Completeness: per factor j, 1 - H_d(R_.j / sum_i R_ij), weighted by the
    factor's share (disentanglement_lib's weighting)."""
    r = np.abs(np.asarray(importance, np.float64))
    d, k = r.shape
    total = r.sum()
    if total == 0:
        return {"disentanglement": 0.0, "completeness": 0.0}
    per_code = 1 - _normalised_entropy(r.T / np.maximum(r.sum(1), 1e-300), k) if k > 1 else np.ones(d)
    per_factor = 1 - _normalised_entropy(r / np.maximum(r.sum(0), 1e-300), d) if d > 1 else np.ones(k)
    return {"disentanglement": float((per_code * r.sum(1) / total).sum()),
            "completeness": float((per_factor * r.sum(0) / total).sum())}


def _standardised(train_codes, test_codes):
    """Both sets scaled by the training codes' per-dimension mean and standard deviation."""
    tx, vx = np.asarray(train_codes, np.float64), np.asarray(test_codes, np.float64)
    mu, sd = tx.mean(0), tx.std(0) + 1e-8
    return (tx - mu) / sd, (vx - mu) / sd


def _factor_columns(*factor_sets):
    """Factors that take at least two values in every given set."""
    return [j for j in range(factor_sets[0].shape[1]) if all(len(np.unique(f[:, j])) > 1 for f in factor_sets)]


def dci(train_codes, train_factors, test_codes, test_factors, estimator="linear", seed=0) -> dict:
    """DCI (Eastwood & Williams 2018): one classifier per factor predicts it from the codes; the
    importance of code i for factor j is, for ``estimator="linear"``, the norm over classes of the
    multinomial logistic regression's weights on standardised codes (a lasso-like linear reading),
    or, for ``"gbt"``, scikit-learn's gradient-boosted trees' feature importances (disentanglement_lib's
    choice, slow with many classes). Informativeness: the classifiers' mean held-out accuracy."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    tx, vx = _standardised(train_codes, test_codes)
    tf, vf = np.asarray(train_factors), np.asarray(test_factors)
    columns = _factor_columns(tf)
    importance, accuracy = np.zeros((tx.shape[1], len(columns))), []
    for c, j in enumerate(columns):
        if estimator == "gbt":
            model = GradientBoostingClassifier(n_estimators=20, random_state=seed).fit(tx, tf[:, j])
            importance[:, c] = model.feature_importances_
        else:
            model = LogisticRegression(max_iter=500, C=1.0).fit(tx, tf[:, j])
            importance[:, c] = np.linalg.norm(model.coef_, axis=0)
        accuracy.append(float(np.mean(model.predict(vx) == vf[:, j])))
    return {**dci_from_importance(importance), "informativeness": float(np.mean(accuracy)),
            "estimator": estimator}


def sap(train_codes, train_factors, test_codes, test_factors) -> float:
    """Separated attribute predictability: score[i, j] = held-out accuracy of predicting factor j from
    code dimension i alone (a linear SVM, C = 0.01, balanced classes, as disentanglement_lib); per
    factor, the gap between the best and second-best dimension, averaged."""
    from sklearn.svm import LinearSVC

    tx, vx = _standardised(train_codes, test_codes)
    tf, vf = np.asarray(train_factors), np.asarray(test_factors)
    columns = _factor_columns(tf)
    score = np.zeros((tx.shape[1], len(columns)))
    for c, j in enumerate(columns):
        for i in range(tx.shape[1]):
            model = LinearSVC(C=0.01, class_weight="balanced").fit(tx[:, i:i + 1], tf[:, j])
            score[i, c] = np.mean(model.predict(vx[:, i:i + 1]) == vf[:, j])
    top = np.sort(score, axis=0)[::-1]
    return float(np.mean(top[0] - top[1]))


def srgb_to_lab(rgb) -> np.ndarray:
    """sRGB in [0, 1] (..., 3) -> CIELAB (..., 3) under D65 (the sRGB standard's transfer curve and matrix)."""
    rgb = np.asarray(rgb, np.float64)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ np.array([[0.4124564, 0.2126729, 0.0193339], [0.3575761, 0.7151522, 0.1191920],
                             [0.1804375, 0.0721750, 0.9503041]])
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def delta_e(a, b) -> np.ndarray:
    """CIE76 colour difference of sRGB colours in [0, 1]: the Euclidean distance in CIELAB (about 2.3 is
    just noticeable; above 10 reads as another colour)."""
    return np.linalg.norm(srgb_to_lab(a) - srgb_to_lab(b), axis=-1)
