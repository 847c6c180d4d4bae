"""The tf.data pipelines that training, the figures and the evaluation read, and the one shape of their elements.

Every dataset built here yields :class:`Batch` dicts, read by name everywhere (never by position):

- ``image``: (b, S, S, 3) float32 in [0, 1] (the paper's ``Rescaling(1/255)`` of the cached uint8 images);
- ``index``: (b,) int32, each face's position in :func:`cartoon_vae.data.list_images` order (and so in
  :func:`cartoon_vae.data.read_attributes`): datasets made ``with_index``;
- ``labels``: (b, C) float32, each face's one-hot labels: when given a ``labels`` table (a conditional model's,
  :func:`cartoon_vae.conditional.label_table`).

Example:
    >>> train, val = make_datasets(config, with_index=True, shuffle_train=False)
    >>> for batch in val: images, indices = batch["image"], batch["index"]
"""

from __future__ import annotations

from typing import Any, TypedDict

from .data import load_splits


class Batch(TypedDict, total=False):
    """One element of every dataset this package builds (see the module docstring)."""

    image: Any
    index: Any
    labels: Any


def as_batch(data) -> Batch:
    """``data`` as a :class:`Batch`: a Batch as it is; images alone (an array given straight to ``fit``, ``evaluate``
    or a model call) as ``{"image": images}``. Keras wraps what ``fit`` is given without targets in a 1-tuple."""
    if isinstance(data, dict):
        return data
    if isinstance(data, (tuple, list)):
        if len(data) != 1:
            raise TypeError(f"a batch is a dict of image, index and labels (cartoon_vae.batches.Batch) or images "
                            f"alone; got a tuple of {len(data)}")
        data = data[0]
    return data if isinstance(data, dict) else {"image": data}


def quiet_fit_warnings():
    """Silence two Keras warnings that every ``fit`` on these datasets raises and that mean nothing here:
    its shuffle flag is unused with a tf.data input (shuffled already), and a dataset of unknown length
    (ours skip unreadable files) "runs out of data" at the end of each validation pass."""
    import warnings

    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
    warnings.filterwarnings("ignore", message="Your input ran out of data")


def normalised(batches, with_index, labels=None):
    """:class:`Batch` dicts of uint8 ``(images, indices)`` batches: the paper's Rescaling(1/255) applied, the
    indices kept ``with_index``, each face's row of the ``labels`` table (N, C) added when given; prefetched."""
    import keras
    import tensorflow as tf

    rescale = keras.layers.Rescaling(1.0 / 255)  # the paper's normalising layer
    table = None if labels is None else tf.constant(labels)

    def normalise(images, indices):
        batch = {"image": rescale(images)}
        if with_index:
            batch["index"] = indices
        if table is not None:
            batch["labels"] = tf.gather(table, indices)
        return batch

    return batches.map(normalise, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def make_datasets(config, with_index=False, shuffle_train=True, labels=None):
    """(train, val) batched ``tf.data`` datasets of :class:`Batch` at ``data.image_size``.

    Train is reshuffled every epoch (seeded) unless ``shuffle_train=False``; val keeps a fixed order. With
    ``with_index=True`` each batch has its ``index``; with a ``labels`` table (N, C) in list_images order (a
    conditional model's) its ``labels``.
    """
    cfg = config.data
    s = load_splits(cfg)
    train = s.train.shuffle(cfg.shuffle_buffer, seed=cfg.seed, reshuffle_each_iteration=True) if shuffle_train \
        else s.train
    return (normalised(train.batch(cfg.batch_size), with_index, labels),
            normalised(s.val.batch(cfg.batch_size), with_index, labels))


def make_training_datasets(config, first_epoch=0, replicas=1, labels=None):
    """(train stream, val, batches per epoch) for ``model.fit`` of epochs ``first_epoch`` .. ``train.epochs``.

    Epoch e of the train stream is the training split shuffled with the seed
    ``data.seed * 1000003 + e`` and batched on its own (no batch mixes two epochs), so a
    run resumed at epoch e sees exactly the batches an uninterrupted run would have
    seen. The epochs are concatenated, so each one's iterator (and a file cache's
    writer) starts only when the previous epoch is finished. With a ``labels`` table (a conditional
    model's) each batch carries its ``labels``.

    With ``replicas`` > 1 (tf.distribute) a validation split smaller than a batch is
    batched in a multiple of ``replicas`` first: Keras builds the model from the first
    validation batch and fails when it does not split evenly across the replicas.
    """
    cfg = config.data
    s = load_splits(cfg)
    val_batch = cfg.batch_size if s.n_val >= cfg.batch_size else max(replicas, s.n_val - s.n_val % replicas)
    epochs = [s.train.shuffle(cfg.shuffle_buffer, seed=cfg.seed * 1_000_003 + e, reshuffle_each_iteration=False)
              .batch(cfg.batch_size)
              for e in range(first_epoch, max(config.train.epochs, first_epoch + 1))]
    stream = epochs[0]
    for epoch in epochs[1:]:
        stream = stream.concatenate(epoch)
    return (normalised(stream, False, labels), normalised(s.val.batch(val_batch), False, labels),
            -(-s.n_train // cfg.batch_size))
