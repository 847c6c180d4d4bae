"""The directions of z that edit an attribute (the maths of :mod:`cartoon_vae.edit`'s latent moves).

An attribute's directions come from a linear classifier: multinomial logistic regression
(scikit-learn) of the attribute's value from the training faces' latent means, each dimension
standardised first (``class_weight="balanced"``, so a rare value is not swamped). Its gradient
g(x) = d log p(to | x) / dx = w_to - sum_k p_k(x) w_k points, from each code, to where the
classifier reads the target more surely. A face is moved

* **to the target's class mean** (the default): within the attribute's subspace — the span of the
  classifier's weight rows (where it looks) and of the class means (where the values differ on
  average), and the same of ``companions``, attributes that exist only alongside this one, such as
  glasses_color beside glasses — the face's coordinates are replaced by the mean of the training
  faces with the target value; its coordinates outside that subspace are kept. The classifier then
  reads the face as it reads a typical target face. (The weights alone leave part of the class
  difference behind: hair moved only along them lands between two colours, measured in the README);
* **to a probability**: along its own gradient, in Newton steps on log p(to | x), until the
  classifier reads the target at ``p`` (0.9 by default); a face it already reads at ``p`` stays.
  The path ends on the decision boundary's near side, where decoded faces are often still
  in between (measured in the README); or
* **by a strength**: along one direction per (attribute, value), the mean gradient over the
  training faces without the value, by ``strength`` standard deviations of the codes along it.

``hold`` removes from every step its components in the span of other attributes' classifier
weights (a projection), so their readings stay where they were, as far as linear models can tell.

Example:
    >>> d = fit_direction(train_means, hair_color_labels, to=4)
    >>> z = edit_to_class(val_means[:6], d)                    # ginger, like the typical ginger face
    >>> z = edit_to_probability(val_means[:6], d, p=0.9)      # until the classifier reads ginger at 0.9
    >>> z = edit_by_strength(val_means[:6], d, [0, 1, 2, 3])   # (6, 4, latent_dim)
"""

from __future__ import annotations

import numpy as np


# Cartoon Set attributes that only exist alongside another's values: glasses_color describes the
# glasses, so removing glasses must move its coordinates too (fit_direction's ``companions``).
COMPANIONS = {"glasses": ("glasses_color",)}


def _softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _classifier(x, y, seed):
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=3000, random_state=seed).fit(x, y)
    W, b = clf.coef_, clf.intercept_
    if len(clf.classes_) == 2:  # scikit-learn keeps one row for two classes: p(class 1) = sigmoid(w.x + b)
        W, b = np.stack([np.zeros_like(W[0]), W[0]]), np.array([0.0, b[0]])
    return clf, W, b


def _orth(columns):
    """An orthonormal basis of the span of ``columns`` (d, k), dropping directions of negligible size."""
    u, s, _ = np.linalg.svd(columns, full_matrices=False)
    return u[:, s > 1e-6 * max(s.max(initial=0), 1e-12)]


def _basis(rows):
    """An orthonormal basis (d, r) of the span of ``rows`` (r, d), each block centred over its classes
    (softmax ignores a shift common to every class)."""
    return _orth(np.concatenate([w - w.mean(0) for w in rows]).T)


def _class_means(x, y):
    """The mean standardised code of each class, (classes, d)."""
    return np.stack([x[y == c].mean(0) for c in np.unique(y)])


def fit_direction(means, labels, to, from_=None, companions=(), seed=0) -> dict:
    """The classifier of the attribute (every labelled value, or only ``to`` and ``from_``) on
    standardised latent means, and what an edit needs of it. Unlabelled (-1) rows are ignored.
    ``companions``: label arrays of attributes that exist only where this one is not ``to`` (e.g.
    glasses_color for glasses -> none); their classifiers, fitted on those faces, widen the subspace
    that :func:`edit_to_class` moves in.

    Returns ``center``, ``scale`` (per-dimension mean and std of the codes), ``W``, ``b`` (one row of
    logits per class, in standardised units), ``target`` (the row of ``to``), ``target_mean`` (the
    mean standardised code of the faces with ``to``), ``subspace`` (orthonormal basis of the
    classifier weights and class means), ``u (the unit mean gradient towards ``to``), ``spread`` (std of the codes
    along ``u``) and ``train_accuracy``.
    """
    means, labels = np.asarray(means, np.float64), np.asarray(labels)
    keep = (labels >= 0) if from_ is None else (labels == to) | (labels == from_)
    if not (labels[keep] == to).any():
        raise ValueError(f"no labelled face has the value {to}")
    if not (labels[keep] != to).any():
        raise ValueError(f"no labelled face to contrast with (from={from_})")
    center, scale = means.mean(0), means.std(0) + 1e-6
    x, y = (means[keep] - center) / scale, labels[keep]
    clf, W, b = _classifier(x, y, seed)
    rows = [W, _class_means(x, y)]
    for other in companions:
        other = np.asarray(other)
        there = (labels >= 0) & (labels != to) & (other >= 0)
        if len(np.unique(other[there])) > 1:
            xo = (means[there] - center) / scale
            rows += [_classifier(xo, other[there], seed)[1], _class_means(xo, other[there])]
    d = {"center": center, "scale": scale, "W": W, "b": b, "target": int(np.flatnonzero(clf.classes_ == to)[0]),
         "classes": clf.classes_, "train_accuracy": float(clf.score(x, y)), "hold": None,
         "target_mean": x[y == to].mean(0), "subspace": _basis(rows)}
    return _with_mean_direction(d, x[y != to])


def _with_mean_direction(d, x_others):
    """Add ``u``, the unit mean gradient over the faces without the target (projected when held),
    and ``spread``, the std of those faces along it (kept as their covariance, so a held copy can
    recompute it)."""
    if x_others is not None:
        d = {**d, "mean_gradient": _gradient(d, x_others).mean(0), "cov_others": np.cov(x_others, rowvar=False)}
    u = _project(d, d["mean_gradient"])
    u = u / np.linalg.norm(u)
    return {**d, "u": u, "spread": float(np.sqrt(max(u @ d["cov_others"] @ u, 0.0)))}


def _gradient(d, x):
    """d log p(target | x) / dx for standardised codes x, (n, d)."""
    p = _softmax(x @ d["W"].T + d["b"])
    return d["W"][d["target"]][None] - p @ d["W"]


def _project(d, v):
    return v if d["hold"] is None else v - (v @ d["hold"]) @ d["hold"].T


def attribute_classifier(means, labels, seed=0) -> dict:
    """The attribute's classifier alone, for :func:`hold` (its target value does not matter there).

    Raises:
        ValueError: the labelled faces show fewer than two values.
    """
    labels = np.asarray(labels)
    values = np.unique(labels[labels >= 0])
    if len(values) < 2:
        raise ValueError("the labelled faces show fewer than two values")
    return fit_direction(means, labels, values[0], seed=seed)


def hold(direction: dict, others) -> dict:
    """A copy of ``direction`` whose steps have no component in the span of the ``others``'
    classifier weights (each centred over its classes, since softmax ignores a common shift):
    moving along it leaves their logits unchanged. ``others`` are :func:`fit_direction` results on
    the same codes."""
    return _with_mean_direction({**direction, "hold": _basis([o["W"] for o in others])}, None)


def _standardise(d, z):
    return (np.asarray(z, np.float64) - d["center"]) / d["scale"]


def probability(direction, z) -> np.ndarray:
    """The classifier's p(to | z) of each code in ``z``, (n,)."""
    return _softmax(logits(direction, z))[:, direction["target"]]


def logits(direction, z) -> np.ndarray:
    """Every class's logit of each code, (n, classes)."""
    return _standardise(direction, z) @ direction["W"].T + direction["b"]


def edit_to_probability(z, direction, p=0.9, max_steps=200) -> np.ndarray:
    """Each code moved until the classifier reads the target at ``p`` (codes already there stay):
    Newton steps on log p(to | x) along its (held) gradient; log-softmax is concave, so each step
    undershoots and the path approaches ``p`` from below. (n, d) -> (n, d)."""
    d = direction
    x = _standardise(d, z)
    goal = np.log(p)
    for _ in range(max_steps):
        log_p = np.log(_softmax(x @ d["W"].T + d["b"])[:, d["target"]])
        todo = log_p < goal - 1e-4
        if not todo.any():
            break
        g = _project(d, _gradient(d, x[todo]))
        x[todo] += ((goal - log_p[todo]) / np.maximum((g * g).sum(1), 1e-12))[:, None] * g
    return (x * d["scale"] + d["center"]).astype(np.float32)


def edit_to_class(z, direction, amount=1.0) -> np.ndarray:
    """Each code's coordinates in the classifier's subspace moved ``amount`` of the way to the target
    class's mean there (1: all the way); coordinates outside the subspace are kept. With ``hold``,
    the move is first cleared of the held classifiers' span. (n, d) -> (n, d)."""
    d = direction
    x = _standardise(d, z)
    q = d["subspace"]
    if d["hold"] is not None:
        q = _orth(q - d["hold"] @ (d["hold"].T @ q))
    x = x + amount * ((d["target_mean"][None] - x) @ q) @ q.T
    return (x * d["scale"] + d["center"]).astype(np.float32)


def edit_by_strength(z, direction, strengths) -> np.ndarray:
    """(n, len(strengths), d): each code moved by each strength, in standard deviations of the
    training codes along the attribute's mean direction."""
    shift = direction["u"] * direction["scale"] * direction["spread"]
    z = np.asarray(z, np.float64)
    out = z[:, None, :] + np.asarray(strengths, np.float64)[None, :, None] * shift[None, None, :]
    return out.astype(np.float32)
