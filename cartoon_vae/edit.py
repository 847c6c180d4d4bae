"""Attribute editing along latent directions, which the paper's abstract promises and never shows.

A direction comes from a linear classifier: logistic regression (scikit-learn) of "this face has
value ``to``" against the other labelled faces, fitted on the training faces' latent means after
standardising each dimension (``class_weight="balanced"``, so a rare value is not swamped). In the
standardised space the classifier's logit is w . x + b; its normal w / |w| is the direction. A face
is moved along it

* **to a probability**: until the classifier reads the target at ``p`` (0.9 by default): the step
  is (logit(p) - logit(x)) / |w|, and a face the classifier already reads at p or above stays; or
* **by a strength**: ``strength`` standard deviations of the training codes along the direction.

``hold`` removes from the direction its components along other classifiers' normals (a projection),
so those classifiers' readings are left where they were, as far as a linear model can tell.

Example:
    >>> clf = fit_direction(train_means, hair_color_labels, to=4)
    >>> z = edit_to_probability(val_means[:6], clf, p=0.9)      # ginger, as the classifier reads it
    >>> z = edit_by_strength(val_means[:6], clf, [0, 1, 2, 3])   # (6, 4, latent_dim)
"""

from __future__ import annotations

import numpy as np


def fit_direction(means, labels, to, from_=None, seed=0) -> dict:
    """The classifier of ``labels == to`` (against ``from_``, or every other labelled value) on
    standardised latent means, and what an edit needs of it. Unlabelled (-1) rows are ignored.

    Returns ``center``, ``scale`` (per-dimension mean and std of the codes), ``w``, ``b`` (the logit
    in standardised units), ``spread`` (std of the codes along w / |w|) and ``train_accuracy``.
    """
    from sklearn.linear_model import LogisticRegression

    means, labels = np.asarray(means, np.float64), np.asarray(labels)
    target = labels == to
    other = (labels == from_) if from_ is not None else (labels != to) & (labels >= 0)
    if not target.any():
        raise ValueError(f"no labelled face has the value {to}")
    if not other.any():
        raise ValueError(f"no labelled face to contrast with (from={from_})")
    keep = target | other
    center, scale = means.mean(0), means.std(0) + 1e-6
    x = (means[keep] - center) / scale
    y = target[keep].astype(int)
    clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=seed).fit(x, y)
    w = clf.coef_[0]
    unit = w / np.linalg.norm(w)
    return {"center": center, "scale": scale, "w": w, "b": float(clf.intercept_[0]),
            "spread": float(np.std((means - center) / scale @ unit)), "train_accuracy": float(clf.score(x, y))}


def hold(direction: dict, others) -> dict:
    """A copy of ``direction`` whose normal has no component along the normals of ``others`` (fitted
    on the same codes): moving along it leaves their logits unchanged."""
    basis = np.stack([o["w"] for o in others], 1)
    q, _ = np.linalg.qr(basis)
    w = direction["w"] - q @ (q.T @ direction["w"])
    return {**direction, "w_along": w}


def _unit(direction):
    w = direction.get("w_along", direction["w"])
    return w / np.linalg.norm(w)


def logit(direction, z) -> np.ndarray:
    """The classifier's logit of each code in ``z``, (n,)."""
    x = (np.asarray(z, np.float64) - direction["center"]) / direction["scale"]
    return x @ direction["w"] + direction["b"]


def edit_to_probability(z, direction, p=0.9) -> np.ndarray:
    """Each code moved along the direction until the classifier reads the target at ``p`` (codes
    already at or above it stay). (n, d) -> (n, d)."""
    u = _unit(direction)
    gain = float(direction["w"] @ u)  # logit change per standardised unit along u
    step = np.maximum(np.log(p / (1 - p)) - logit(direction, z), 0.0) / max(gain, 1e-9)
    return (np.asarray(z, np.float64) + step[:, None] * u[None] * direction["scale"][None]).astype(np.float32)


def edit_by_strength(z, direction, strengths) -> np.ndarray:
    """(n, len(strengths), d): each code moved by each strength, in standard deviations of the
    training codes along the direction."""
    shift = _unit(direction) * direction["scale"] * direction["spread"]
    z = np.asarray(z, np.float64)
    out = z[:, None, :] + np.asarray(strengths, np.float64)[None, :, None] * shift[None, None, :]
    return out.astype(np.float32)


def edit_scores(edited, unedited, attribute, to, edited_images=None, unedited_images=None) -> dict:
    """How an edit went, as the probe reads the decoded faces.

    ``success``: the fraction of edited faces read as ``to``; ``gain``: that minus the fraction
    among the unedited decodes (strength 0); ``preservation``: the fraction of (face, other
    attribute) pairs whose reading did not change; ``pixel_change``: mean absolute change of the
    image (on [0, 1]) when images are given.
    """
    success = float(np.mean(edited[attribute] == to))
    others = [n for n in edited if n != attribute]
    preservation = float(np.mean([np.mean(edited[n] == unedited[n]) for n in others])) if others else 1.0
    out = {"success": success, "gain": success - float(np.mean(unedited[attribute] == to)),
           "preservation": preservation}
    if edited_images is not None:
        out["pixel_change"] = float(np.mean(np.abs(np.asarray(edited_images) - np.asarray(unedited_images))))
    return out
