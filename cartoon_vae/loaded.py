"""One run set-up: a trained run loaded with its config, its data set's attributes, its datasets and its
encoded splits, for every command that works on a run's faces (evaluate, edit, compare-edits, the explorer).

Opening a run reads its model, config and attributes and makes its datasets; each split is encoded when first
asked for: the held-out faces (up to ``heldout_limit``, images kept) and the training split's codes (no images;
a label swap needs none).

Example:
    >>> run = open_run("runs/demo")
    >>> faces, codes = run.heldout.images, run.heldout.means
    >>> direction_data = run.train.means, run.train.rows
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class EncodedSplit:
    """Faces of one split, encoded in the split's fixed order.

    ``images`` (n, S, S, 3) in [0, 1] (None where not kept); ``means`` and ``log_vars`` (n, latent_dim);
    ``index`` (n,) positions in :func:`cartoon_vae.data.list_images` order; ``rows`` (n, A) their attribute rows
    (-1 where unlabelled; (n, 0) without CSVs); ``labels`` a conditional model's (n, C) one-hot labels, else None.
    """

    images: np.ndarray | None
    means: np.ndarray
    log_vars: np.ndarray
    index: np.ndarray
    rows: np.ndarray
    labels: np.ndarray | None


@dataclass
class LoadedRun:
    """A run folder opened by :func:`open_run`."""

    run_dir: Path
    vae: object
    config: object
    attrs: object      # cartoon_vae.data.Attributes of the run's data folder
    train_ds: object   # batched, fixed order, with indices (and a conditional model's labels)
    val_ds: object
    heldout_limit: int | None = None

    @functools.cached_property
    def heldout(self) -> EncodedSplit:
        """The first ``heldout_limit`` held-out faces (None: all) with their images, encoded on first use."""
        return encode(self.vae, self.attrs, self.val_ds, self.heldout_limit)

    @functools.cached_property
    def train(self) -> EncodedSplit:
        """The training split's codes (no images), encoded on first use."""
        return encode(self.vae, self.attrs, self.train_ds, keep_images=False)


def encode(vae, attrs, dataset, limit=None, keep_images=True) -> EncodedSplit:
    """A with-index dataset's first ``limit`` faces encoded (:func:`cartoon_vae.inference.encode_split`), with
    their attribute rows and, for a conditional model, their one-hot labels."""
    from .inference import encode_split

    images, means, log_vars, index = encode_split(vae, dataset, limit, keep_images)
    rows = attrs.values[index] if len(attrs.names) else np.zeros((len(index), 0), np.int32)
    return EncodedSplit(images, means, log_vars, index, rows, vae.labels_of(attrs.names, rows))


def open_run(run_dir, heldout_limit=None, data=None) -> LoadedRun:
    """A run loaded (:func:`cartoon_vae.runs.load_run`), with ``data`` (a folder) in place of its ``data.dir`` if
    given, its attributes read and its datasets made in a fixed order with indices; ``heldout_limit``: the held-out
    faces :attr:`LoadedRun.heldout` encodes (None: all)."""
    from .batches import make_datasets
    from .conditional import label_table
    from .data import read_attributes
    from .runs import load_run

    vae, config = load_run(run_dir)
    if data is not None:
        config = config.replace(data={"dir": str(data)})
    attrs = read_attributes(config.data.dir)
    train_ds, val_ds = make_datasets(config, with_index=True, shuffle_train=False, labels=label_table(config))
    return LoadedRun(Path(run_dir), vae, config, attrs, train_ds, val_ds, heldout_limit)
