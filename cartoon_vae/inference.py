"""Running a trained model over batches: encode to latent means, decode, reconstruct, and the image
sets that the figures, the samplers' fits and the evaluation read.

Every loop over a dataset or an array of codes that calls the model lives here, so memory stays flat
(batch by batch) and the rules stay one: latent **means** describe an image (sampled z adds
posterior noise); fits use the training split in a fixed order, never the held-out faces that
samples are scored against.

Example:
    >>> means = np.concatenate(list(encode_means(vae, training_batches(config), limit=5000)))
    >>> faces = decode(vae, means[:8])
"""

from __future__ import annotations

import numpy as np

DECODE_BATCH = 64  # codes decoded at once


def encode_means(vae, batches, limit=None):
    """Yield latent means batch by batch for up to ``limit`` images (memory does not grow)."""
    for _, means, _, _ in _encoded(vae, batches, limit, keep_images=False):
        yield means


def _encoded(vae, batches, limit, keep_images):
    """Yield (images or None, means, log-variances, indices or None) per batch, up to ``limit`` images."""
    seen = 0
    for batch in batches:
        x, idx, labels = np.asarray(batch["image"]), batch.get("index"), batch.get("labels")
        if limit is not None:
            x = x[: limit - seen]
            idx = None if idx is None else np.asarray(idx)[: limit - seen]
            labels = None if labels is None else np.asarray(labels)[: limit - seen]
        mean, log_var = vae.encode(x, labels, training=False)
        seen += len(x)
        yield (x if keep_images else None), np.asarray(mean), np.asarray(log_var), \
            (None if idx is None else np.asarray(idx))
        if limit is not None and seen >= limit:
            return


def encode_split(vae, dataset, limit=None, keep_images=True):
    """(images or None, latent means, log-variances, file indices or None) of up to ``limit`` images of a
    batched dataset of :class:`cartoon_vae.batches.Batch` (indices: a ``with_index`` dataset's)."""
    parts = list(zip(*_encoded(vae, dataset, limit, keep_images)))
    if not parts:
        raise ValueError("no images to encode")
    images, means, log_vars, indices = parts

    def cat(arrays):
        return None if arrays[0] is None else np.concatenate(arrays)

    return cat(images), cat(means), cat(log_vars), cat(indices)


def decode(vae, z, labels=None, *, batch_size=DECODE_BATCH) -> np.ndarray:
    """Images in [0, 1] decoded from (n, latent_dim) codes (and, for a conditional model, their (n, C)
    one-hot labels), ``batch_size`` at a time."""
    z = np.asarray(z, np.float32)
    y = None if labels is None else np.asarray(labels, np.float32)
    if y is not None and (y.ndim != 2 or len(y) != len(z)):
        raise ValueError(f"labels must be one row per code, shape ({len(z)}, C); got shape {y.shape}")
    return np.concatenate([np.asarray(vae.decode(z[i:i + batch_size], None if y is None else y[i:i + batch_size]))
                           for i in range(0, len(z), batch_size)])


def reconstruct(vae, x, labels=None, batch_size=None) -> np.ndarray:
    """Deterministic reconstructions: decode the latent means (a conditional model with the faces' labels), all at
    once or ``batch_size`` faces at a time."""
    if batch_size is not None:
        return np.concatenate([reconstruct(vae, x[i:i + batch_size], None if labels is None else
                                           labels[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    mean, _ = vae.encode(x, labels, training=False)
    return np.asarray(vae.decode(mean, labels))


def first_images(dataset, n, with_labels=False):
    """The first ``n`` images of a batched dataset of :class:`cartoon_vae.batches.Batch`; with ``with_labels``,
    (images, their one-hot labels or None)."""
    out, ys, seen = [], [], 0
    for batch in dataset:
        x, y = batch["image"], batch.get("labels")
        out.append(np.asarray(x)[: n - seen])
        ys.append(None if y is None else np.asarray(y)[: n - seen])
        seen += len(out[-1])
        if seen >= n:
            break
    images = np.concatenate(out)
    if not with_labels:
        return images
    return images, (None if ys[0] is None else np.concatenate(ys))


def sample_labels(labels, n, seed) -> np.ndarray | None:
    """``n`` rows drawn with replacement from a table of training faces' one-hot labels (None: an
    unconditional model): what a conditional model's samples are decoded with, so each sample draws a
    combination of attributes that the data has."""
    if labels is None:
        return None
    return np.asarray(labels)[np.random.default_rng(seed).integers(0, len(labels), n)]


def training_batches(config, with_index=False):
    """The run's training split, batched, in a fixed order: what latent fits are made from."""
    from .batches import make_datasets
    from .conditional import label_table

    return make_datasets(config, with_index=with_index, shuffle_train=False, labels=label_table(config))[0]


def heldout_images(config, n, with_labels=False):
    """The first ``n`` held-out faces (a fixed order): what the figures show (with ``with_labels``:
    (images, their one-hot labels, None for an unconditional config))."""
    from .batches import make_datasets
    from .conditional import label_table

    return first_images(make_datasets(config, labels=label_table(config))[1], n, with_labels)


def training_labels(config):
    """(N_train, C) one-hot labels of the training split's faces (read from their CSVs, no image decoded),
    or None for an unconditional config: the combinations a conditional model's samples draw from."""
    from .conditional import conditioning
    from .data import list_images, split_indices

    labels = conditioning(config)
    if labels is None:
        return None
    train, _ = split_indices(len(list_images(config.data.dir)), config.data.val_fraction, config.data.seed)
    return labels[1][np.asarray(train, int)]


def traced(function, shape):
    """``function`` traced once for inputs of ``shape`` (``None`` for any batch): the explorer's single-face
    decode then costs a millisecond or two instead of the ten an eager Keras call spends on overhead."""
    import tensorflow as tf

    return tf.function(function, input_signature=[tf.TensorSpec(shape, tf.float32)])
