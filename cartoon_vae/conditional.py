"""The conditional model: what a conditional VAE adds to the paper's (Sohn et al. 2015), in one place.

The attributes of ``model.conditional`` are given one-hot to the encoder (beside its flattened features) and to
the decoder (beside z and, with ``model.labels_every_block``, as constant maps before every up-sampling block), so
that an edit is "the same z, a new label". Two readers keep the attributes in the labels:

- a **latent adversary** (Fader networks, Lample et al. 2017): a small classifier reads the conditioned
  attributes from the latent mean; the encoder is trained to leave it guessing (``loss.adversary_weight``);
- a **label critic** (AttGAN, He et al. 2019): a small CNN learns to read them from real faces, and the decoder is
  trained so that it reads the *new* labels from label-swapped decodes D(z, y'), which have no target image: a
  swap that leaves a ghost of the old beard or half the old colour costs cross-entropy (``loss.swap_weight``).

Each reader trains on its own Adam at ``train.reader_learning_rate``. The labels' layout: one block of one-hot
columns per attribute, in the order of ``model.conditional`` (:func:`one_hot`).

Example:
    >>> vae = cartoon_vae.build.build_vae(config, label_sizes=[10, 6])   # config.model.conditional: 2 names
    >>> y = vae.labels_of(attrs.names, attrs.values[:8])                 # (8, 16) one-hot
    >>> faces = vae.decode(z, y)
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from .data import DataError, read_attributes
from .model import PACKAGE, CartoonVAE, encoder_features, global_batch_size, latent_heads, decoder_blocks


def one_hot(pairs, names, rows) -> np.ndarray:
    """(n, C) float32: each (name, variants) pair's one-hot block of the attribute ``rows`` (n, A), whose
    columns are in the order ``names``. ValueError for a missing attribute or a value out of range."""
    rows = np.asarray(rows).reshape(-1, len(names))
    blocks = []
    for name, n in pairs:
        if name not in names:
            raise ValueError(f"the model is conditional on {name!r}, which this data lacks")
        values = rows[:, list(names).index(name)]
        if values.size and (values.min() < 0 or values.max() >= n):
            raise ValueError(f"{name}: values must be in [0, {n - 1}], got {int(values.min())}..{int(values.max())}")
        blocks.append(np.eye(n, dtype=np.float32)[values])
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((len(rows), 0), np.float32)


def conditioning(config, attrs=None):
    """((name, variants) pairs, (N, C) float32 one-hot table in :func:`cartoon_vae.data.list_images` order) of a
    conditional config (``model.conditional``), or None for the paper's unconditional model. A DataError names the
    missing attribute, or the first image without a CSV (a conditional model needs every face's labels)."""
    names = config.model.conditional
    if not names:
        return None
    attrs = read_attributes(config.data.dir) if attrs is None else attrs
    missing = [n for n in names if n not in attrs.names]
    if missing:
        raise DataError(f"{config.data.dir}: model.conditional names {missing[0]!r}, but the attribute CSVs list "
                        f"{', '.join(attrs.names) or 'no attribute (there are no CSVs)'}")
    if not attrs.labelled.all():
        first = attrs.paths[int(np.flatnonzero(~attrs.labelled)[0])]
        raise DataError(f"{first}: no attribute CSV beside it ({int((~attrs.labelled).sum())} images lack one); a "
                        f"conditional model (model.conditional) needs every face's labels")
    pairs = tuple((n, int(attrs.n_variants[attrs.names.index(n)])) for n in names)
    for (name, n), trained in zip(pairs, config.model.conditional_variants):
        if n != trained:
            raise DataError(f"{config.data.dir}: {name} has {n} variants here, but the model was trained on data "
                            f"with {trained} (model.conditional_variants); a conditional model reads only labels "
                            f"laid out as in its training data")
    return pairs, one_hot(pairs, attrs.names, attrs.values)


def label_table(config):
    """The (N, C) one-hot table a conditional config's datasets carry (None for the paper's model)."""
    labels = conditioning(config)
    return None if labels is None else labels[1]


# The label losses. Every (batch, C) array holds one block per attribute, ``sizes`` their widths.

def label_cross_entropy(labels, logits, sizes):
    """Per image: a reader's cross-entropy, summed over the conditioned attributes. ``labels`` and ``logits``
    are (batch, sum(sizes)), one block of one-hot labels / logits per attribute."""
    total, start = 0.0, 0
    for n in sizes:
        block = logits[:, start:start + n]
        total = total - ops.sum(labels[:, start:start + n] * ops.log_softmax(block, axis=-1), axis=-1)
        start += n
    return total


def swapped_labels(labels, sizes, seed=None):
    """Each attribute's block of one-hot ``labels`` (batch, sum(sizes)) shuffled over the batch on its own:
    every face gets, per attribute, the label of a random face of the batch (the labels' own mix of values)."""
    blocks, start = [], 0
    for n in sizes:
        order = keras.random.shuffle(ops.arange(ops.shape(labels)[0]), seed=seed)
        blocks.append(ops.take(labels[:, start:start + n], order, axis=0))
        start += n
    return ops.concatenate(blocks, axis=-1)


def confusion(logits, sizes):
    """Per image: the adversary's cross-entropy against the uniform distribution over each attribute's
    values, summed over attributes. Its minimum, sum(log n), is reached when the adversary cannot tell
    any value from z: what the encoder minimises."""
    total, start = 0.0, 0
    for n in sizes:
        total = total - ops.mean(ops.log_softmax(logits[:, start:start + n], axis=-1), axis=-1)
        start += n
    return total


@keras.saving.register_keras_serializable(package=PACKAGE)
class WithLabelMaps(layers.Layer):
    """``[features (b, h, w, c), labels (b, k)]`` -> (b, h, w, c + k): the labels tiled over every position and
    concatenated as channels, so a conditional decoder's every block sees them."""

    def call(self, inputs):
        x, labels = inputs
        shape = ops.shape(x)
        maps = ops.broadcast_to(ops.cast(labels, x.dtype)[:, None, None, :],
                                (shape[0], shape[1], shape[2], ops.shape(labels)[-1]))
        return ops.concatenate([x, maps], axis=-1)

    def compute_output_shape(self, input_shape):
        (b, h, w, c), (_, k) = input_shape
        return (b, h, w, c + k)


def build_critic(image_size, filters, kernel_size, leaky_relu_slope, label_dim):
    """The label critic: image -> one logit per label value (the encoder's stride-2 convolutions without batch
    norm, then a Dense). Trained on real faces only; see :func:`swapped_labels`."""
    image = keras.Input((image_size, image_size, 3), name="image")
    x = image
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(f, kernel_size, strides=2, padding="same", name=f"conv_{i}")(x)
        x = layers.LeakyReLU(negative_slope=leaky_relu_slope, name=f"lrelu_{i}")(x)
    logits = layers.Dense(label_dim, name="logits", dtype="float32")(layers.Flatten(name="flatten")(x))
    return keras.Model(image, logits, name="critic")


def _reader_optimizer(network, learning_rate, name):
    """A reader's own Adam, built over its weights so that a saved state loads back."""
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, name=name)
    optimizer.build(network.trainable_variables)
    return optimizer


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConditionalVAE(CartoonVAE):
    """:class:`cartoon_vae.model.CartoonVAE` given the ``conditional`` attributes' one-hot labels.

    Args (beyond the paper model's):
        conditional: (attribute, number of variants) pairs, in the labels' order.
        labels_every_block: the decoder also sees the labels before every up-sampling block.
        adversary_weight, adversary_units: the latent adversary's confusion weight (0: none) and hidden units.
        swap_weight: the label critic's weight on label-swapped decodes (0: none).
        reader_learning_rate: the adversary's and the critic's Adam learning rate.
    """

    def __init__(self, conditional=(), labels_every_block=False, adversary_weight=0.0, adversary_units=256,
                 swap_weight=0.0, reader_learning_rate=1e-3, **kwargs):
        self.conditional = tuple((str(name), int(n)) for name, n in conditional)
        if not self.conditional:
            raise ValueError("a ConditionalVAE needs at least one (attribute, variants) pair")
        self.conditioned = [name for name, _ in self.conditional]  # the attributes' names ...
        self.label_sizes = [n for _, n in self.conditional]        # ... and their numbers of variants
        self.label_dim = sum(self.label_sizes)
        self.labels_every_block = bool(labels_every_block)
        super().__init__(**kwargs)  # builds the encoder and the decoder (build_networks)
        self.adversary_weight, self.adversary_units = float(adversary_weight), int(adversary_units)
        self.swap_weight, self.reader_learning_rate = float(swap_weight), float(reader_learning_rate)
        self.adversary = self.critic = None
        if self.adversary_weight > 0:  # reads the conditioned attributes from the latent mean (confusion)
            self.adversary = keras.Sequential([keras.Input((self.latent_dim,)), layers.Dense(self.adversary_units),
                                               layers.LeakyReLU(negative_slope=self.leaky_relu_slope),
                                               layers.Dense(self.label_dim)], name="adversary")
            self.adversary_optimizer = _reader_optimizer(self.adversary, self.reader_learning_rate, "adversary_adam")
        if self.swap_weight > 0:  # reads the conditioned attributes from an image (swapped_labels)
            self.critic = build_critic(self.image_size, self.encoder_filters, self.kernel_size,
                                       self.leaky_relu_slope, self.label_dim)
            self.critic_optimizer = _reader_optimizer(self.critic, self.reader_learning_rate, "critic_adam")
            self.swap_seed = keras.random.SeedGenerator(None if self.seed is None else int(self.seed) + 1)
        extra = (("adversary_ce",) if self.adversary else ()) + (("swap_ce",) if self.critic else ())
        self.trackers.update({name: keras.metrics.Mean(name=name) for name in extra})

    def build_networks(self):
        """(encoder, decoder) of section IV with the labels as a second input of each."""
        image = keras.Input((self.image_size, self.image_size, 3), name="image")
        labels = keras.Input((self.label_dim,), name="labels")
        features = encoder_features(image, self.encoder_filters, self.kernel_size, self.leaky_relu_slope,
                                    self.batch_norm)
        features = layers.Concatenate(name="with_labels")([features, labels])
        encoder = keras.Model([image, labels], latent_heads(features, self.latent_dim,
                                                            2.0 if self.bounded_variance else None), name="encoder")
        z = keras.Input((self.latent_dim,), name="z")
        labels = keras.Input((self.label_dim,), name="labels")
        every = (lambda x, i: WithLabelMaps(name=f"labels_{i}")([x, labels])) if self.labels_every_block else None
        image = decoder_blocks(layers.Concatenate(name="with_labels")([z, labels]), self.image_size,
                               self.decoder_filters, self.encoder_filters[-1], self.kernel_size, self.leaky_relu_slope,
                               self.batch_norm, self.upsample, self.residual_blocks, self.palette_classes, every)
        return encoder, keras.Model([z, labels], image, name="decoder")

    def labels_of(self, names, rows):
        """(n, label_dim) float32 one-hot labels from attribute ``rows`` (n, A), their columns in the order
        ``names`` (a data set's attribute names), in the order of :attr:`conditional`."""
        return one_hot(self.conditional, names, rows)

    def label_block(self, attribute) -> slice:
        """The columns of ``attribute``'s one-hot block in the labels."""
        start = 0
        for name, n in self.conditional:
            if name == attribute:
                return slice(start, start + n)
            start += n
        raise ValueError(f"the model is not conditional on {attribute!r}")

    def network_input(self, tensor, labels):
        """What the encoder or decoder takes: ``[tensor, labels]``."""
        if labels is None:
            raise ValueError(f"this model is conditional on {', '.join(self.conditioned)}: "
                             f"give each face's one-hot labels (labels_of)")
        return [ops.convert_to_tensor(tensor), ops.convert_to_tensor(labels, dtype="float32")]

    def training_loss(self, batch):
        x, labels = batch["image"], batch["labels"]
        terms = self.compute_terms(x, training=True, labels=labels)
        loss = self.objective(terms)
        if self.adversary is not None:  # the encoder leaves the adversary guessing
            confused = confusion(self.adversary(terms["mean"]), self.label_sizes)
            loss = loss + self.adversary_weight * ops.sum(confused) / global_batch_size(confused)
        if self.critic is not None:  # the decoder draws new labels so that the critic reads them
            terms["swap_ce"] = self.swap_cross_entropy(terms["mean"], labels, training=True)
            loss = loss + self.swap_weight * ops.sum(terms["swap_ce"]) / global_batch_size(terms["swap_ce"])
        return terms, loss

    def after_step(self, batch, terms):
        labels = batch["labels"]
        if self.adversary is not None:  # ... while the adversary learns to read the attributes from z
            terms["adversary_ce"] = self._fit_reader(self.adversary, self.adversary_optimizer,
                                                     ops.stop_gradient(terms["mean"]), labels)
        if self.critic is not None:  # ... and the critic learns to read them from real faces
            self._fit_reader(self.critic, self.critic_optimizer, batch["image"], labels)

    def _fit_reader(self, network, optimizer, inputs, labels):
        """One step of a reader (the adversary, the critic) on its own optimizer: its per-image cross-entropy
        against ``labels``, minimised."""
        with tf.GradientTape() as tape:
            ce = label_cross_entropy(labels, network(inputs), self.label_sizes)
            loss = ops.sum(ce) / global_batch_size(ce)
        weights = network.trainable_weights
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        return ce

    def swap_cross_entropy(self, mean, labels, training=False):
        """Per image: the critic's cross-entropy reading the new labels off D(mean, y'), y' = ``labels`` with each
        attribute shuffled over the batch (:func:`swapped_labels`). The decoder's swap term."""
        swapped = swapped_labels(labels, self.label_sizes, seed=self.swap_seed)
        drawn = self.decode(mean, swapped, training=training)
        return label_cross_entropy(swapped, self.critic(drawn), self.label_sizes)

    def test_terms(self, batch):
        labels = batch["labels"]
        terms = self.compute_terms(batch["image"], training=False, labels=labels)
        if self.adversary is not None:
            terms["adversary_ce"] = label_cross_entropy(labels, self.adversary(terms["mean"]), self.label_sizes)
        if self.critic is not None:  # held-out faces' codes drawn with their labels shuffled, read by the critic
            terms["swap_ce"] = self.swap_cross_entropy(terms["mean"], labels)
        return terms

    def get_config(self):
        return {**super().get_config(), "conditional": [list(pair) for pair in self.conditional],
                "labels_every_block": self.labels_every_block, "adversary_weight": self.adversary_weight,
                "adversary_units": self.adversary_units, "swap_weight": self.swap_weight,
                "reader_learning_rate": self.reader_learning_rate}


def conditional_settings(config, label_sizes) -> dict:
    """The :class:`ConditionalVAE` arguments of a conditional config beyond the paper model's; ``label_sizes``:
    each conditioned attribute's number of variants (:func:`conditioning` reads them from the data)."""
    names = config.model.conditional
    if label_sizes is None or len(label_sizes) != len(names):
        raise ValueError(f"model.conditional lists {list(names)}: building the model needs their numbers of variants "
                         f"(label_sizes)")
    return dict(conditional=tuple(zip(names, (int(n) for n in label_sizes))),
                labels_every_block=config.model.labels_every_block, adversary_weight=config.loss.adversary_weight,
                adversary_units=config.model.adversary_units, swap_weight=config.loss.swap_weight,
                reader_learning_rate=config.train.reader_learning_rate)
