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


def _images_and_indices(batch):
    """A batch of images, or of ``(images, indices)``: (images, indices or None)."""
    if isinstance(batch, (tuple, list)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


def encode_means(vae, batches, limit=None):
    """Yield latent means batch by batch for up to ``limit`` images (memory does not grow)."""
    for _, means, _, _ in _encoded(vae, batches, limit, keep_images=False):
        yield means


def _encoded(vae, batches, limit, keep_images):
    """Yield (images or None, means, log-variances, indices or None) per batch, up to ``limit`` images."""
    seen = 0
    for batch in batches:
        x, idx = _images_and_indices(batch)
        x = np.asarray(x)
        if limit is not None:
            x = x[: limit - seen]
            idx = None if idx is None else np.asarray(idx)[: limit - seen]
        mean, log_var = vae.encode(x, training=False)
        seen += len(x)
        yield (x if keep_images else None), np.asarray(mean), np.asarray(log_var), \
            (None if idx is None else np.asarray(idx))
        if limit is not None and seen >= limit:
            return


def encode_split(vae, dataset, limit=None, keep_images=True):
    """(images or None, latent means, log-variances, file indices or None) of up to ``limit`` images of a
    batched dataset of images or of ``(images, indices)`` (a ``with_index`` dataset)."""
    parts = list(zip(*_encoded(vae, dataset, limit, keep_images)))
    if not parts:
        raise ValueError("no images to encode")
    images, means, log_vars, indices = parts

    def cat(arrays):
        return None if arrays[0] is None else np.concatenate(arrays)

    return cat(images), cat(means), cat(log_vars), cat(indices)


def decode(vae, z, batch_size=DECODE_BATCH) -> np.ndarray:
    """Images in [0, 1] decoded from (n, latent_dim) codes, ``batch_size`` at a time."""
    z = np.asarray(z, np.float32)
    return np.concatenate([np.asarray(vae.decode(z[i:i + batch_size])) for i in range(0, len(z), batch_size)])


def reconstruct(vae, x) -> np.ndarray:
    """Deterministic reconstructions: decode the latent means."""
    mean, _ = vae.encode(x, training=False)
    return np.asarray(vae.decode(mean))


def first_images(dataset, n) -> np.ndarray:
    """The first ``n`` images of a batched dataset of images or of ``(images, indices)``."""
    out, seen = [], 0
    for batch in dataset:
        x, _ = _images_and_indices(batch)
        out.append(np.asarray(x)[: n - seen])
        seen += len(out[-1])
        if seen >= n:
            break
    return np.concatenate(out)


def training_batches(config, with_index=False):
    """The run's training split, batched, in a fixed order: what latent fits are made from."""
    from .data import make_datasets

    return make_datasets(config, with_index=with_index, shuffle_train=False)[0]


def heldout_images(config, n) -> np.ndarray:
    """The first ``n`` held-out faces (a fixed order): what the figures show."""
    from .data import make_datasets

    return first_images(make_datasets(config)[1], n)


def traced(function, shape):
    """``function`` traced once for inputs of ``shape`` (``None`` for any batch): the explorer's single-face
    decode then costs a millisecond or two instead of the ten an eager Keras call spends on overhead."""
    import tensorflow as tf

    return tf.function(function, input_signature=[tf.TensorSpec(shape, tf.float32)])
