"""Attribute editing along latent directions, which the paper's abstract promises and never shows.

A direction is the mean latent code of faces with the target value minus the mean
code of the others (or of one ``from`` value); an edit adds ``strength`` times it.

Example:
    >>> d = attribute_direction(train_means, hair_color_labels, to=3)
    >>> z = edit_latents(val_means[:6], d, [-2, -1, 0, 1, 2])     # (6, 5, latent_dim)
"""

from __future__ import annotations

import numpy as np


def attribute_direction(means, labels, to, from_=None) -> np.ndarray:
    """mean(code | label == to) - mean(code | label == from_, or label != to). Unlabelled (-1) rows are ignored."""
    means, labels = np.asarray(means), np.asarray(labels)
    target = labels == to
    other = (labels == from_) if from_ is not None else (labels != to) & (labels >= 0)
    if not target.any():
        raise ValueError(f"no labelled face has the value {to}")
    if not other.any():
        raise ValueError(f"no labelled face to contrast with (from={from_})")
    return means[target].mean(0) - means[other].mean(0)


def edit_latents(z, direction, strengths) -> np.ndarray:
    """(n, len(strengths), d): each code moved by each strength along ``direction``."""
    z, direction = np.asarray(z, np.float32), np.asarray(direction, np.float32)
    return z[:, None, :] + np.asarray(strengths, np.float32)[None, :, None] * direction[None, None, :]


def edit_scores(edited, unedited, attribute, to) -> dict:
    """Success: the fraction of edited faces the probe reads as ``to``. Preservation: the fraction
    of (face, other attribute) pairs whose reading did not change from the unedited decode."""
    success = float(np.mean(edited[attribute] == to))
    others = [n for n in edited if n != attribute]
    preservation = float(np.mean([np.mean(edited[n] == unedited[n]) for n in others])) if others else 1.0
    return {"success": success, "preservation": preservation}
