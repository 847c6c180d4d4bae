"""The paper's VAE (section IV): a convolutional encoder, a sampling layer, a deconvolutional decoder.

Encoder: (S, S, 3) -> n blocks of Conv2D(stride 2) + BatchNorm + LeakyReLU, each
halving the image (256 -> 8 for the paper's 5 blocks) -> Flatten -> two Dense
heads, the mean Z_mu and the log-variance log Z_sigma^2.
Sampling: z = Z_mu + scale * eps (eq. 6).
Decoder: Dense((S / 2^n)^2 * C) -> Reshape -> n - 1 blocks of Conv2DTranspose
(stride 2) + BatchNorm + LeakyReLU -> Conv2DTranspose(3, stride 2, sigmoid).

With configs/paper.yaml this is the reference code's network exactly: 1,770,128
encoder and 954,307 decoder parameters.

Example:
    >>> import cartoon_vae
    >>> vae = cartoon_vae.build_vae(cartoon_vae.load_config("configs/paper.yaml"))
    >>> mean, log_var = vae.encode(images)        # images: (batch, 256, 256, 3) in [0, 1]
    >>> faces = vae.decode(mean)
"""

from __future__ import annotations

import functools
import math

import keras
import tensorflow as tf
from keras import layers, ops

from . import losses

PACKAGE = "cartoon_vae"
RECONSTRUCTIONS = ("weighted_mse", "calibrated_gaussian", "palette")  # the decoder's likelihood (loss.reconstruction)
ADVERSARY_UNITS = 256  # hidden units of the conditional model's latent adversary (model.adversary_units)


@keras.saving.register_keras_serializable(package=PACKAGE)
class Sampling(layers.Layer):
    """The reparameterisation of eq. 6: z = mean + scale * eps, eps ~ N(0, I).

    Args:
        reparam: ``"std"`` (scale = sigma, the default) or ``"paper_variance"``
            (scale = sigma^2, eq. 6 as printed).
        seed: seed of the layer's ``keras.random.SeedGenerator``.

    Example:
        >>> z = Sampling(seed=0)([mean, log_var])
    """

    def __init__(self, reparam="std", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.reparam = reparam
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        mean, log_var = inputs
        replica = tf.distribute.get_replica_context()
        replicas = replica.num_replicas_in_sync if replica is not None else 1
        if replicas == 1:
            eps = keras.random.normal(ops.shape(mean), dtype=mean.dtype, seed=self.seed_generator)
        else:  # each replica takes its slice of the global batch's noise: the draws of one device
            local = ops.shape(mean)[0]
            eps = keras.random.normal((local * replicas, ops.shape(mean)[1]), dtype=mean.dtype,
                                      seed=self.seed_generator)
            eps = eps[replica.replica_id_in_sync_group * local:][:local]
        return losses.reparameterize(mean, log_var, eps, self.reparam)

    def get_config(self):
        return {**super().get_config(), "reparam": self.reparam, "seed": self.seed}

    # The generator's state is saved with the weights, so a loaded model (or a
    # resumed run) continues the same random stream instead of restarting it.
    # (The layer has no weights of its own, so the state is the store's only entry.)
    def save_own_variables(self, store):
        store["seed_state"] = keras.ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store):
        if "seed_state" in store.keys():
            self.seed_generator.state.assign(store["seed_state"][...])


@keras.saving.register_keras_serializable(package=PACKAGE)
class BoundedLogVariance(layers.Layer):
    """Maps a raw head output h to log sigma^2 with 0 < sigma^2 < max_variance.

    sigma^2 = max_variance * sigmoid(h), so log sigma^2 = log(max_variance) + log_sigmoid(h).
    Used when the model trains on eq. 5: its polynomial stands for log sigma^2 only
    on 0 < sigma^2 < 2. A sigmoid keeps the bound smooth and never saturates to an
    exact 0 or 2 (so log sigma^2 stays finite); clipping instead would stop the
    gradient at the edges. At h = 0, sigma^2 = max_variance / 2 = 1, the prior's
    variance, so a freshly initialised head starts at the KL's minimum in sigma.

    Example:
        >>> log_var = BoundedLogVariance(2.0)(keras.layers.Dense(200)(features))
    """

    def __init__(self, max_variance=2.0, **kwargs):
        super().__init__(**kwargs)
        self.max_variance = float(max_variance)

    def call(self, h):
        return math.log(self.max_variance) + ops.log_sigmoid(h)

    def get_config(self):
        return {**super().get_config(), "max_variance": self.max_variance}


@keras.saving.register_keras_serializable(package=PACKAGE)
class FusedBatchNormalization(layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` computed, in training, by TensorFlow's fused kernel.

    Keras 3 builds batch norm from separate mean, variance and normalise ops; Keras 2
    used TensorFlow's one-pass FusedBatchNormV3, and on a CPU that kernel makes the
    whole training step of this network about 1.2-1.4x faster (``cartoon-vae benchmark``,
    "fused batch norm" row). Same weights, same moving-average rule (the fused kernel's
    batch variance is Bessel-corrected; it is turned back into the biased one Keras uses),
    the same results within float rounding (tests/test_model.py). Inference, synchronized
    (multi-replica) statistics and any input that is not 4-D channels-last take the Keras path.
    """

    def call(self, inputs, training=None, mask=None):
        if not training or self.synchronized or len(inputs.shape) != 4 or self.axis not in (-1, 3):
            return super().call(inputs, training=training, mask=mask)
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones(inputs.shape[-1])
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros(inputs.shape[-1])
        y, mean, var = tf.compat.v1.nn.fused_batch_norm(inputs, gamma, beta, epsilon=self.epsilon,
                                                        is_training=True)
        n = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), tf.float32)
        var = var * (n - 1.0) / n
        m = self.momentum
        self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
        self.moving_variance.assign(self.moving_variance * m + var * (1.0 - m))
        return y


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


def build_encoder(image_size, latent_dim, filters, kernel_size, leaky_relu_slope, max_variance=None,
                  batch_norm=FusedBatchNormalization, label_dim=0):
    """The encoder: image -> (z_mean, z_log_var). ``max_variance`` bounds sigma^2 (None: unbounded).
    ``batch_norm`` is the normalisation layer class (Keras' own gives the reference code's network).
    With ``label_dim`` > 0 it takes ``[image, labels]`` and the one-hot labels join the flattened features."""
    image = keras.Input((image_size, image_size, 3), name="image")
    x = image
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(f, kernel_size, strides=2, padding="same", name=f"conv_{i}")(x)
        x = batch_norm(name=f"bn_{i}")(x)
        x = layers.LeakyReLU(negative_slope=leaky_relu_slope, name=f"lrelu_{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    inputs = image
    if label_dim:
        labels = keras.Input((label_dim,), name="labels")
        x = layers.Concatenate(name="with_labels")([x, labels])
        inputs = [image, labels]
    # The heads compute in float32 under mixed precision: the KL and the sampled code need the bits.
    z_mean = layers.Dense(latent_dim, name="z_mean", dtype="float32")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var", dtype="float32")(x)
    if max_variance is not None:
        z_log_var = BoundedLogVariance(max_variance, name="variance_bound", dtype="float32")(z_log_var)
    return keras.Model(inputs, [z_mean, z_log_var], name="encoder")


def _up(x, filters, kernel_size, upsample, name, **kwargs):
    """One stride-2 up-sampling: a transposed convolution (the paper's), or a nearest-neighbour resize then a
    convolution, which cannot draw the checkerboard a stride-2 transposed convolution leaves on flat colour
    (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts")."""
    if upsample == "resize":
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_resize")(x)
        return layers.Conv2D(filters, kernel_size, padding="same", name=name, **kwargs)(x)
    return layers.Conv2DTranspose(filters, kernel_size, strides=2, padding="same", name=name, **kwargs)(x)


def _residual(x, kernel_size, leaky_relu_slope, batch_norm, name):
    """A residual block at one resolution (He et al. 2016): x + BN(conv(LReLU(BN(conv(x))))), then LReLU."""
    f = x.shape[-1]
    y = layers.Conv2D(f, kernel_size, padding="same", name=f"{name}_conv_a")(x)
    y = layers.LeakyReLU(negative_slope=leaky_relu_slope, name=f"{name}_lrelu_a")(batch_norm(name=f"{name}_bn_a")(y))
    y = batch_norm(name=f"{name}_bn_b")(layers.Conv2D(f, kernel_size, padding="same", name=f"{name}_conv_b")(y))
    return layers.LeakyReLU(negative_slope=leaky_relu_slope, name=f"{name}_out")(layers.Add(name=f"{name}_add")([x, y]))


def build_decoder(image_size, latent_dim, filters, bottleneck_channels, kernel_size, leaky_relu_slope,
                  batch_norm=FusedBatchNormalization, label_dim=0, labels_every_block=False, upsample="transpose",
                  residual_blocks=0, palette_size=0):
    """The decoder: z -> image in [0, 1] (or, with ``palette_size`` K > 0, (S, S, K) logits of each pixel's
    palette colour). ``len(filters) + 1`` stride-2 up-sampling blocks (:func:`_up`), each hidden one followed by
    ``residual_blocks`` residual blocks. With ``label_dim`` > 0 it takes ``[z, labels]``: the one-hot labels join z
    before the first Dense and, with ``labels_every_block``, the input of every up-sampling block too
    (:class:`WithLabelMaps`)."""
    side = image_size // 2 ** (len(filters) + 1)
    z = keras.Input((latent_dim,), name="z")
    inputs, x = z, z
    if label_dim:
        labels = keras.Input((label_dim,), name="labels")
        inputs, x = [z, labels], layers.Concatenate(name="with_labels")([z, labels])
    x = layers.Dense(side * side * bottleneck_channels, name="dense")(x)
    x = layers.Reshape((side, side, bottleneck_channels), name="reshape")(x)
    every = bool(label_dim and labels_every_block)
    for i, f in enumerate(filters, start=1):
        if every:
            x = WithLabelMaps(name=f"labels_{i}")([x, labels])
        x = _up(x, f, kernel_size, upsample, f"deconv_{i}")
        x = batch_norm(name=f"bn_{i}")(x)
        x = layers.LeakyReLU(negative_slope=leaky_relu_slope, name=f"lrelu_{i}")(x)
        for j in range(1, residual_blocks + 1):
            x = _residual(x, kernel_size, leaky_relu_slope, batch_norm, f"res_{i}_{j}")
    if every:
        x = WithLabelMaps(name=f"labels_{len(filters) + 1}")([x, labels])
    if palette_size:  # up-sampled features, then a 1x1 convolution to each pixel's logits (cheap for a large K)
        x = _up(x, filters[-1] if filters else bottleneck_channels, kernel_size, upsample, "deconv_out")
        x = layers.LeakyReLU(negative_slope=leaky_relu_slope, name="lrelu_out")(batch_norm(name="bn_out")(x))
        image = layers.Conv2D(palette_size, 1, name="logits", dtype="float32")(x)
    else:
        image = _up(x, 3, kernel_size, upsample, "image", activation="sigmoid", dtype="float32")
    return keras.Model(inputs, image, name="decoder")


def build_critic(image_size, filters, kernel_size, leaky_relu_slope, label_dim):
    """The conditional model's label critic: image -> one logit per label value (the encoder's stride-2
    convolutions without batch norm, then a Dense). Trained on real faces only; see :func:`losses.swapped_labels`."""
    image = keras.Input((image_size, image_size, 3), name="image")
    x = image
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(f, kernel_size, strides=2, padding="same", name=f"conv_{i}")(x)
        x = layers.LeakyReLU(negative_slope=leaky_relu_slope, name=f"lrelu_{i}")(x)
    logits = layers.Dense(label_dim, name="logits", dtype="float32")(layers.Flatten(name="flatten")(x))
    return keras.Model(image, logits, name="critic")


@keras.saving.register_keras_serializable(package=PACKAGE)
class CartoonVAE(keras.Model):
    """The paper's VAE with a custom ``train_step`` (keras-io style).

    Loss per image = reconstruction_weight * MSE (eq. 1) + kl_weight * KL, where KL is
    eq. 4 (``kl="exact"``) or eq. 5 (``kl="poly_bound"``). The batch is reduced by the
    **mean** over images (the reference code sums over the batch instead; with Adam,
    which is invariant to a constant scale of the loss, the two give the same updates
    up to Adam's epsilon, and the mean does not change with the batch size).

    Tracked metrics: ``loss``; ``reconstruction_loss`` (the unweighted per-image MSE,
    eq. 1, so it reads the same whatever the weight); ``kl_loss`` (the KL form being
    trained, unweighted, in the encoder's log sigma^2 as the paper writes it); ``kl_exact`` (eq. 4 of
    the posterior actually sampled, always, so the true KL is visible when training on the bound or
    with eq. 6 as printed).

    Args:
        image_size: side of the square RGB input, a multiple of 2^len(encoder_filters).
        latent_dim: size of z (200 in the paper).
        encoder_filters, decoder_filters: channels of the conv blocks.
        kernel_size, leaky_relu_slope: of every block (3 and Keras' default 0.3).
        reparam: "std" or "paper_variance" (see :class:`Sampling`).
        kl: "exact" or "poly_bound". With "poly_bound" the variance head is bounded to
            (0, 2) by :class:`BoundedLogVariance`.
        reconstruction_weight, kl_weight: the weights of eq. 2's two terms.
        seed: seed of the sampling layer.
    """

    def __init__(self, image_size=256, latent_dim=200, encoder_filters=(32, 64, 64, 64, 64),
                 decoder_filters=(64, 64, 64, 32), kernel_size=3, leaky_relu_slope=0.3, reparam="std",
                 kl="poly_bound", reconstruction_weight=1000.0, kl_weight=1.0, seed=None, fused_batch_norm=True,
                 reconstruction="weighted_mse", free_bits=0.0, kl_warmup_epochs=0, bounded_variance=None,
                 conditional=(), adversary_weight=0.0, adversary_units=ADVERSARY_UNITS, labels_every_block=False,
                 swap_weight=0.0, upsample="transpose", residual_blocks=0, palette_size=32, **kwargs):
        super().__init__(**kwargs)
        if kl not in losses.KL_FORMS:
            raise ValueError(f"kl must be one of {sorted(losses.KL_FORMS)}, got {kl!r}")
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"reconstruction must be one of {list(RECONSTRUCTIONS)}, got {reconstruction!r}")
        self.image_size = int(image_size)
        self.latent_dim = int(latent_dim)
        self.encoder_filters = tuple(encoder_filters)
        self.decoder_filters = tuple(decoder_filters)
        self.kernel_size = int(kernel_size)
        self.leaky_relu_slope = float(leaky_relu_slope)
        self.reparam = reparam
        self.kl = kl
        self.reconstruction_weight = float(reconstruction_weight)
        self.kl_weight = float(kl_weight)
        self.seed = seed
        self.fused_batch_norm = bool(fused_batch_norm)
        self.reconstruction = reconstruction
        self.free_bits = float(free_bits)
        self.kl_warmup_epochs = int(kl_warmup_epochs)
        self.kl_warmup_steps = 0  # set by training (kl_warmup_epochs x steps per epoch); 0: no warm-up
        # The bounded variance head goes with eq. 5 unless said otherwise (None: bounded iff poly_bound).
        self.bounded_variance = (kl == "poly_bound") if bounded_variance is None else bool(bounded_variance)
        # A conditional VAE: (attribute, number of variants) pairs, given one-hot to both networks.
        self.conditional = tuple((str(name), int(n)) for name, n in conditional)
        self.conditioned = [name for name, _ in self.conditional]  # the attributes' names ...
        self.label_sizes = [n for _, n in self.conditional]        # ... and their numbers of variants
        self.label_dim = sum(self.label_sizes)
        self.adversary_weight = float(adversary_weight) if self.label_dim else 0.0
        self.adversary_units = int(adversary_units)
        self.labels_every_block = bool(labels_every_block) and self.label_dim > 0
        self.swap_weight = float(swap_weight) if self.label_dim else 0.0
        self.upsample, self.residual_blocks = upsample, int(residual_blocks)
        self.palette_size = int(palette_size)
        palette = self.palette_size if reconstruction == "palette" else 0
        batch_norm = FusedBatchNormalization if fused_batch_norm else layers.BatchNormalization
        if tf.distribute.get_strategy().num_replicas_in_sync > 1:  # built under a multi-device strategy:
            batch_norm = functools.partial(batch_norm, synchronized=True)  # statistics of the global batch

        previous = keras.config.dtype_policy()  # the sub-networks take the model's policy (train.precision),
        keras.config.set_dtype_policy(self.dtype_policy)  # also when a saved model is rebuilt from its config
        try:
            self.encoder = build_encoder(image_size, latent_dim, self.encoder_filters, kernel_size, leaky_relu_slope,
                                         max_variance=2.0 if self.bounded_variance else None, batch_norm=batch_norm,
                                         label_dim=self.label_dim)
            self.decoder = build_decoder(image_size, latent_dim, self.decoder_filters, self.encoder_filters[-1],
                                         kernel_size, leaky_relu_slope, batch_norm=batch_norm,
                                         label_dim=self.label_dim, labels_every_block=self.labels_every_block,
                                         upsample=upsample, residual_blocks=self.residual_blocks, palette_size=palette)
        finally:
            keras.config.set_dtype_policy(previous)
        self.sampling = Sampling(reparam, seed=seed, name="sampling", dtype="float32")
        self.palette = None
        if palette:  # the categorical decoder's colours, fitted to the training pixels (train.fit_palette)
            self.palette = self.add_weight(shape=(palette, 3), initializer="zeros", trainable=False, name="palette",
                                           dtype="float32")
        self.adversary = None
        if self.adversary_weight > 0:  # reads the conditioned attributes from the latent mean (losses.confusion)
            self.adversary = keras.Sequential([keras.Input((latent_dim,)), layers.Dense(self.adversary_units),
                                               layers.LeakyReLU(negative_slope=leaky_relu_slope),
                                               layers.Dense(self.label_dim)], name="adversary")
            self.adversary_optimizer = keras.optimizers.Adam(learning_rate=1e-3, name="adversary_adam")
            self.adversary_optimizer.build(self.adversary.trainable_variables)  # so a saved state loads back
        self.critic = None
        if self.swap_weight > 0:  # reads the conditioned attributes from an image (losses.swapped_labels)
            self.critic = build_critic(image_size, self.encoder_filters, kernel_size, leaky_relu_slope, self.label_dim)
            self.critic_optimizer = keras.optimizers.Adam(learning_rate=1e-3, name="critic_adam")
            self.critic_optimizer.build(self.critic.trainable_variables)
            self.swap_seed = keras.random.SeedGenerator(None if seed is None else int(seed) + 1)
        self._kl_per_dim = losses.KL_PER_DIM[kl]
        tracked = ("loss", "reconstruction_loss", "kl_loss", "kl_exact") + (("adversary_ce",) if self.adversary else ())
        tracked += ("swap_ce",) if self.critic else ()
        self.trackers = {name: keras.metrics.Mean(name=name) for name in tracked}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def build(self, input_shape=None):
        # The encoder and decoder are functional models, already built.
        self.built = True

    def label_vectors(self, names, rows):
        """(n, label_dim) float32 one-hot labels of a conditional model from attribute ``rows`` (n, A), their
        columns in the order ``names`` (a data set's attribute names), in the order of :attr:`conditional`."""
        from .data import one_hot

        return one_hot(self.conditional, names, rows)

    def _with_labels(self, tensor, labels):
        """The networks' input: ``tensor`` alone, or ``[tensor, labels]`` for a conditional model."""
        if not self.label_dim:
            return tensor
        if labels is None:
            raise ValueError(f"this model is conditional on {', '.join(self.conditioned)}: "
                             f"give each face's one-hot labels (label_vectors)")
        return [ops.convert_to_tensor(tensor), ops.convert_to_tensor(labels, dtype="float32")]

    def encode(self, x, labels=None, training=False):
        """Image batch (and, for a conditional model, its labels) -> (mean, log_var), each (batch, latent_dim)."""
        return self.encoder(self._with_labels(x, labels), training=training)

    def posterior_log_var(self, log_var):
        """The log-variance of the posterior that sampling draws from (twice ``log_var`` under eq. 6 as
        printed, see :func:`cartoon_vae.losses.posterior_log_var`): what every reported exact KL uses."""
        return losses.posterior_log_var(log_var, self.reparam)

    def decode(self, z, labels=None, training=False):
        """Latent batch (and, for a conditional model, the labels to draw) -> image batch in [0, 1]. A
        palette decoder draws each pixel's most likely colour (the mode of its categorical)."""
        out = self.decoder(self._with_labels(z, labels), training=training)
        return out if self.palette is None else losses.palette_mode(out, self.palette)

    def call(self, x, training=False):
        """Reconstruction through a sampled z: decode(mean + scale * eps). A conditional model takes
        ``(images, labels)``."""
        x, labels = x if self.label_dim else (x, None)
        mean, log_var = self.encode(x, labels, training=training)
        return self.decode(self.sampling([mean, log_var]), labels, training=training)

    def compute_terms(self, x, training=False, labels=None):
        """Per-image loss terms (see the class docstring), each of shape (batch,): among them
        ``reconstruction_term``, the likelihood term the objective trains (:meth:`reconstruction_term`, or the
        palette decoder's ``nll``); and the per-dimension KL of the trained form, ``kl_per_dim`` (batch, latent_dim)."""
        mean, log_var = self.encode(x, labels, training=training)
        out = self.decoder(self._with_labels(self.sampling([mean, log_var]), labels), training=training)
        mean, log_var = ops.cast(mean, "float32"), ops.cast(log_var, "float32")
        nll = None
        if self.palette is not None:  # out: logits over the palette; the image is their mode
            nll = losses.palette_nll(x, out, self.palette)
            out = losses.palette_mode(out, self.palette)
        rec = losses.reconstruction_mse(x, ops.cast(out, x.dtype))
        term = self.reconstruction_term(rec) if nll is None else nll  # what the objective trains, per image
        kl_per_dim = self._kl_per_dim(mean, log_var)
        kl = ops.sum(kl_per_dim, axis=-1)
        return {
            "loss": term + self.kl_weight * kl,
            "reconstruction_loss": rec, "nll": nll, "reconstruction_term": term,
            "kl_loss": kl,
            "kl_exact": losses.kl_exact(mean, losses.posterior_log_var(log_var, self.reparam)),
            "kl_per_dim": kl_per_dim,
            "mean": mean,
        }

    def reconstruction_term(self, mse):
        """The per-image reconstruction term of the objective: ``reconstruction_weight`` x MSE (the
        reference code), or the calibrated Gaussian decoder's negative log-likelihood (sigma-VAE)."""
        if self.reconstruction == "calibrated_gaussian":
            return losses.calibrated_gaussian_nll(mse, float(self.image_size * self.image_size * 3))
        return self.reconstruction_weight * mse

    def objective(self, terms):
        """The batch's training loss: mean reconstruction term + kl_weight x warm-up x KL, where the KL
        is the batch mean or, with ``free_bits`` > 0, the free-bits sum of per-dimension floors."""
        n = _global_batch_size(terms["loss"])
        rec = ops.sum(terms["reconstruction_term"]) / n
        if self.free_bits > 0:
            replicas = tf.distribute.get_strategy().num_replicas_in_sync  # the replicas' gradients are summed
            kl = losses.free_bits_kl(terms["kl_per_dim"], self.free_bits) / replicas
        else:
            kl = ops.sum(terms["kl_loss"]) / n
        if self.kl_warmup_steps > 0:
            step = ops.cast(self.optimizer.iterations + 1, "float32")
            kl = kl * ops.minimum(1.0, step / float(self.kl_warmup_steps))
        return rec + self.kl_weight * kl

    def _unpack(self, data):
        """A batch as (images, labels or None): images alone, or ``(images, one-hot labels)`` for a conditional
        model (what :func:`cartoon_vae.data.make_training_datasets` yields)."""
        if not isinstance(data, (tuple, list)):
            return data, None
        return data[0], (data[1] if self.label_dim and len(data) > 1 else None)

    @property
    def vae_weights(self):
        """The encoder's and decoder's trainable weights: what the objective trains (not the adversary)."""
        return self.encoder.trainable_weights + self.decoder.trainable_weights

    def train_step(self, data):
        x, labels = self._unpack(data)
        sizes = self.label_sizes
        with tf.GradientTape() as tape:
            terms = self.compute_terms(x, training=True, labels=labels)
            loss = self.objective(terms)
            if self.adversary is not None:  # the encoder leaves the adversary guessing
                confused = losses.confusion(self.adversary(terms["mean"]), sizes)
                loss = loss + self.adversary_weight * ops.sum(confused) / _global_batch_size(confused)
            if self.critic is not None:  # the decoder draws new labels so that the critic reads them
                terms["swap_ce"] = self.swap_cross_entropy(terms["mean"], labels, training=True)
                loss = loss + self.swap_weight * ops.sum(terms["swap_ce"]) / _global_batch_size(terms["swap_ce"])
            scaled = self.optimizer.scale_loss(loss) if hasattr(self.optimizer, "scale_loss") else loss
        grads = tape.gradient(scaled, self.vae_weights)
        self.optimizer.apply_gradients(zip(grads, self.vae_weights))
        if self.adversary is not None:  # ... while the adversary learns to read the attributes from z
            terms["adversary_ce"] = self._fit_reader(self.adversary, self.adversary_optimizer,
                                                     ops.stop_gradient(terms["mean"]), labels)
        if self.critic is not None:  # ... and the critic learns to read them from real faces
            self._fit_reader(self.critic, self.critic_optimizer, x, labels)
        return self._record(terms)

    def _fit_reader(self, network, optimizer, inputs, labels):
        """One step of a network that reads the conditioned attributes (the adversary, the critic) on its own
        optimizer: its per-image cross-entropy against ``labels``, minimised."""
        with tf.GradientTape() as tape:
            ce = losses.label_cross_entropy(labels, network(inputs), self.label_sizes)
            loss = ops.sum(ce) / _global_batch_size(ce)
        weights = network.trainable_weights
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        return ce

    def swap_cross_entropy(self, mean, labels, training=False):
        """Per image: the critic's cross-entropy reading the new labels off D(mean, y'), y' = ``labels`` with each
        attribute shuffled over the batch (:func:`losses.swapped_labels`). The decoder's swap term."""
        swapped = losses.swapped_labels(labels, self.label_sizes, seed=self.swap_seed)
        drawn = self.decode(mean, swapped, training=training)
        return losses.label_cross_entropy(swapped, self.critic(drawn), self.label_sizes)

    def test_step(self, data):
        x, labels = self._unpack(data)
        terms = self.compute_terms(x, training=False, labels=labels)
        if self.adversary is not None:
            terms["adversary_ce"] = losses.label_cross_entropy(labels, self.adversary(terms["mean"]),
                                                               self.label_sizes)
        if self.critic is not None:  # held-out faces' codes drawn with their labels shuffled, read by the critic
            terms["swap_ce"] = self.swap_cross_entropy(terms["mean"], labels)
        return self._record(terms)

    def _record(self, terms):
        for name, tracker in self.trackers.items():  # a Mean of per-image values: a replica with no image adds nothing
            tracker.update_state(terms[name])
        results = {name: tracker.result() for name, tracker in self.trackers.items()}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras reduces per-replica step logs across workers with a MEAN over axis 0, which a scalar
            # lacks; the epoch's logs are read from the trackers themselves, summed over every replica.
            results = {name: ops.reshape(v, (1,)) for name, v in results.items()}
        return results

    def get_config(self):
        return {
            **super().get_config(),
            "image_size": self.image_size, "latent_dim": self.latent_dim,
            "encoder_filters": list(self.encoder_filters), "decoder_filters": list(self.decoder_filters),
            "kernel_size": self.kernel_size, "leaky_relu_slope": self.leaky_relu_slope,
            "reparam": self.reparam, "kl": self.kl, "reconstruction_weight": self.reconstruction_weight,
            "kl_weight": self.kl_weight, "seed": self.seed, "fused_batch_norm": self.fused_batch_norm,
            "reconstruction": self.reconstruction, "free_bits": self.free_bits,
            "kl_warmup_epochs": self.kl_warmup_epochs, "bounded_variance": self.bounded_variance,
            "conditional": [list(pair) for pair in self.conditional],
            "adversary_weight": self.adversary_weight, "adversary_units": self.adversary_units,
            "labels_every_block": self.labels_every_block, "swap_weight": self.swap_weight,
            "upsample": self.upsample, "residual_blocks": self.residual_blocks, "palette_size": self.palette_size,
        }


def _global_batch_size(per_image):
    """Images in this step's batch across all replicas. Under tf.distribute each replica holds part
    of the batch and the replicas' gradients are summed, so each divides its sum by this count:
    the update is the whole batch's mean, even when the last batch splits unevenly."""
    n = ops.cast(ops.shape(per_image)[0], "float32")
    replica = tf.distribute.get_replica_context()
    if replica is not None and replica.num_replicas_in_sync > 1:
        n = replica.all_reduce(tf.distribute.ReduceOp.SUM, n)
    return ops.maximum(n, 1.0)


def build_vae(config, compile=True, fused_batch_norm=True, label_sizes=None, learning_rate=None) -> CartoonVAE:
    """A built (and, by default, compiled with Adam at ``train.learning_rate``) :class:`CartoonVAE`, its
    layers in ``train.precision`` (Keras' mixed-precision policy: float32 variables, low-precision
    compute; the heads, the sampling layer, the image output and the losses stay float32).
    A conditional config (``model.conditional``) needs ``label_sizes``, each conditioned attribute's number
    of variants (:func:`cartoon_vae.data.conditioning` reads them from the data). ``learning_rate``: a float or a
    Keras schedule (:func:`cartoon_vae.train.learning_rate`) in place of ``train.learning_rate``."""
    from .hardware import resolve_precision

    m, l = config.model, config.loss
    vae = CartoonVAE(dtype=resolve_precision(config.train.precision),
        image_size=config.data.image_size, latent_dim=m.latent_dim, encoder_filters=m.encoder_filters,
        decoder_filters=m.decoder_filters, kernel_size=m.kernel_size, leaky_relu_slope=m.leaky_relu_slope,
        reparam=m.reparam, kl=l.kl, reconstruction_weight=l.reconstruction_weight, kl_weight=l.kl_weight,
        seed=m.seed, fused_batch_norm=fused_batch_norm, reconstruction=l.reconstruction, free_bits=l.free_bits,
        kl_warmup_epochs=l.kl_warmup_epochs, bounded_variance=m.bounded_variance,
        conditional=_conditional(m.conditional, label_sizes), adversary_weight=l.adversary_weight,
        adversary_units=m.adversary_units, labels_every_block=m.labels_every_block, swap_weight=l.swap_weight,
        upsample=m.upsample, residual_blocks=m.residual_blocks, palette_size=l.palette_size, name="cartoon_vae")
    vae.build((None, config.data.image_size, config.data.image_size, 3))
    if compile:
        rate = config.train.learning_rate if learning_rate is None else learning_rate
        vae.compile(optimizer=keras.optimizers.Adam(learning_rate=rate))
        # Built over every trainable variable (the adversary's too, which it never updates), as Keras builds
        # it when a saved model is loaded: a resumed run then gets its optimizer state back.
        vae.optimizer.build(vae.trainable_variables)
    return vae


def _conditional(names, sizes):
    """(name, variants) pairs of a conditional config."""
    if not names:
        return ()
    if sizes is None or len(sizes) != len(names):
        raise ValueError(f"model.conditional lists {list(names)}: build_vae needs their numbers of variants "
                         f"(label_sizes)")
    return tuple(zip(names, (int(n) for n in sizes)))
