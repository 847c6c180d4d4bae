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
    >>> vae = cartoon_vae.build_vae(cartoon_vae.load_config("configs/paper.yaml"))  # cartoon_vae.build
    >>> mean, log_var = vae.encode(images)        # images: (batch, 256, 256, 3) in [0, 1]
    >>> faces = vae.decode(mean)
"""

from __future__ import annotations

import functools

import keras
import tensorflow as tf
from keras import layers, ops

from . import losses
from .batches import as_batch
from .vae_layers import PACKAGE, BoundedLogVariance, FusedBatchNormalization, Sampling

__all__ = ["CartoonVAE", "Sampling", "BoundedLogVariance", "FusedBatchNormalization", "build_encoder",
           "build_decoder", "model_settings"]
RECONSTRUCTIONS = ("weighted_mse", "calibrated_gaussian", "palette")  # the decoder's likelihood (loss.reconstruction)


def encoder_features(image, filters, kernel_size, leaky_relu_slope, batch_norm=FusedBatchNormalization):
    """The encoder's convolutional blocks: image -> n x (Conv2D stride 2 + BatchNorm + LeakyReLU) -> flattened."""
    x = image
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(f, kernel_size, strides=2, padding="same", name=f"conv_{i}")(x)
        x = batch_norm(name=f"bn_{i}")(x)
        x = layers.LeakyReLU(negative_slope=leaky_relu_slope, name=f"lrelu_{i}")(x)
    return layers.Flatten(name="flatten")(x)


def latent_heads(x, latent_dim, max_variance=None):
    """The two Dense heads on the features: (Z_mu, log Z_sigma^2); ``max_variance`` bounds sigma^2 (None:
    unbounded). They compute in float32 under mixed precision: the KL and the sampled code need the bits."""
    z_mean = layers.Dense(latent_dim, name="z_mean", dtype="float32")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var", dtype="float32")(x)
    if max_variance is not None:
        z_log_var = BoundedLogVariance(max_variance, name="variance_bound", dtype="float32")(z_log_var)
    return z_mean, z_log_var


def build_encoder(image_size, latent_dim, filters, kernel_size, leaky_relu_slope, max_variance=None,
                  batch_norm=FusedBatchNormalization):
    """The encoder: image -> (z_mean, z_log_var). ``max_variance`` bounds sigma^2 (None: unbounded).
    ``batch_norm`` is the normalisation layer class (Keras' own gives the reference code's network)."""
    image = keras.Input((image_size, image_size, 3), name="image")
    features = encoder_features(image, filters, kernel_size, leaky_relu_slope, batch_norm)
    return keras.Model(image, latent_heads(features, latent_dim, max_variance), name="encoder")


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


def decoder_blocks(x, image_size, filters, bottleneck_channels, kernel_size, leaky_relu_slope,
                   batch_norm=FusedBatchNormalization, upsample="transpose", residual_blocks=0, palette_size=0,
                   before_block=None):
    """The decoder from its Dense input ``x`` (z) to an image in [0, 1] (or, with ``palette_size`` K > 0, (S, S, K)
    logits of each pixel's palette colour): Dense -> Reshape -> ``len(filters) + 1`` stride-2 up-sampling blocks
    (:func:`_up`), each hidden one followed by ``residual_blocks`` residual blocks. ``before_block(x, i)``, if
    given, transforms the input of up-sampling block i (1-based): how a conditional decoder adds its labels."""
    side = image_size // 2 ** (len(filters) + 1)
    x = layers.Dense(side * side * bottleneck_channels, name="dense")(x)
    x = layers.Reshape((side, side, bottleneck_channels), name="reshape")(x)
    hook = before_block or (lambda features, _: features)
    for i, f in enumerate(filters, start=1):
        x = _up(hook(x, i), f, kernel_size, upsample, f"deconv_{i}")
        x = batch_norm(name=f"bn_{i}")(x)
        x = layers.LeakyReLU(negative_slope=leaky_relu_slope, name=f"lrelu_{i}")(x)
        for j in range(1, residual_blocks + 1):
            x = _residual(x, kernel_size, leaky_relu_slope, batch_norm, f"res_{i}_{j}")
    x = hook(x, len(filters) + 1)
    if palette_size:  # up-sampled features, then a 1x1 convolution to each pixel's logits (cheap for a large K)
        x = _up(x, filters[-1] if filters else bottleneck_channels, kernel_size, upsample, "deconv_out")
        x = layers.LeakyReLU(negative_slope=leaky_relu_slope, name="lrelu_out")(batch_norm(name="bn_out")(x))
        return layers.Conv2D(palette_size, 1, name="logits", dtype="float32")(x)
    return _up(x, 3, kernel_size, upsample, "image", activation="sigmoid", dtype="float32")


def build_decoder(image_size, latent_dim, filters, bottleneck_channels, kernel_size, leaky_relu_slope,
                  batch_norm=FusedBatchNormalization, upsample="transpose", residual_blocks=0, palette_size=0):
    """The decoder: z -> image (:func:`decoder_blocks`)."""
    z = keras.Input((latent_dim,), name="z")
    image = decoder_blocks(z, image_size, filters, bottleneck_channels, kernel_size, leaky_relu_slope, batch_norm,
                           upsample, residual_blocks, palette_size)
    return keras.Model(z, image, name="decoder")


@keras.saving.register_keras_serializable(package=PACKAGE)
class CartoonVAE(keras.Model):
    """The paper's VAE with a custom ``train_step`` (keras-io style).

    Loss per image = reconstruction term (eq. 1's MSE x ``reconstruction_weight``, or a calibrated or palette
    likelihood) + kl_weight * KL, where KL is eq. 4 (``kl="exact"``) or eq. 5 (``kl="poly_bound"``). The batch
    is reduced by the **mean** over images (the reference code sums over the batch instead; with Adam,
    which is invariant to a constant scale of the loss, the two give the same updates up to Adam's
    epsilon, and the mean does not change with the batch size).

    Tracked metrics: ``loss``; ``reconstruction_loss`` (the unweighted per-image MSE, eq. 1, so it reads the
    same whatever the weight); ``kl_loss`` (the KL form being trained, unweighted, in the encoder's log
    sigma^2 as the paper writes it); ``kl_exact`` (eq. 4 of the posterior actually sampled, always, so the
    true KL is visible when training on the bound or with eq. 6 as printed).

    Batches are :class:`cartoon_vae.data.Batch` dicts (an array given straight to ``fit`` is its images).
    :class:`cartoon_vae.conditional.ConditionalVAE` adds labels; this model has none (``conditioned`` is empty).

    Args:
        image_size: side of the square RGB input, a multiple of 2^len(encoder_filters).
        latent_dim: size of z (200 in the paper).
        encoder_filters, decoder_filters: channels of the conv blocks.
        kernel_size, leaky_relu_slope: of every block (3 and Keras' default 0.3).
        reparam: "std" or "paper_variance" (see :class:`Sampling`).
        kl: "exact" or "poly_bound". With "poly_bound" the variance head is bounded to
            (0, 2) by :class:`BoundedLogVariance` (``bounded_variance`` None).
        reconstruction: the decoder's likelihood, one of :data:`RECONSTRUCTIONS`.
        reconstruction_weight, kl_weight: the weights of eq. 2's two terms.
        free_bits, kl_warmup_epochs: a floor on the per-dimension KL; a linear warm-up of its weight.
        upsample, residual_blocks, palette_size: the decoder's options (:func:`decoder_blocks`).
        seed: seed of the sampling layer.
    """

    conditioned = ()  # the attributes given as labels: none for the paper's model

    def __init__(self, image_size=256, latent_dim=200, encoder_filters=(32, 64, 64, 64, 64),
                 decoder_filters=(64, 64, 64, 32), kernel_size=3, leaky_relu_slope=0.3, reparam="std",
                 kl="poly_bound", reconstruction_weight=1000.0, kl_weight=1.0, seed=None, fused_batch_norm=True,
                 reconstruction="weighted_mse", free_bits=0.0, kl_warmup_epochs=0, bounded_variance=None,
                 upsample="transpose", residual_blocks=0, palette_size=32, **kwargs):
        super().__init__(**kwargs)
        if kl not in losses.KL_FORMS:
            raise ValueError(f"kl must be one of {sorted(losses.KL_FORMS)}, got {kl!r}")
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"reconstruction must be one of {list(RECONSTRUCTIONS)}, got {reconstruction!r}")
        self.image_size, self.latent_dim = int(image_size), int(latent_dim)
        self.encoder_filters, self.decoder_filters = tuple(encoder_filters), tuple(decoder_filters)
        self.kernel_size, self.leaky_relu_slope = int(kernel_size), float(leaky_relu_slope)
        self.reparam, self.kl, self.reconstruction, self.seed = reparam, kl, reconstruction, seed
        self.reconstruction_weight, self.kl_weight = float(reconstruction_weight), float(kl_weight)
        self.fused_batch_norm = bool(fused_batch_norm)
        self.free_bits, self.kl_warmup_epochs = float(free_bits), int(kl_warmup_epochs)
        self.kl_warmup_steps = 0  # set by training (kl_warmup_epochs x steps per epoch); 0: no warm-up
        # The bounded variance head goes with eq. 5 unless said otherwise (None: bounded iff poly_bound).
        self.bounded_variance = (kl == "poly_bound") if bounded_variance is None else bool(bounded_variance)
        self.upsample, self.residual_blocks = upsample, int(residual_blocks)
        self.palette_size = int(palette_size)
        self.batch_norm = FusedBatchNormalization if fused_batch_norm else layers.BatchNormalization
        if tf.distribute.get_strategy().num_replicas_in_sync > 1:  # built under a multi-device strategy:
            self.batch_norm = functools.partial(self.batch_norm, synchronized=True)  # the global batch's statistics
        previous = keras.config.dtype_policy()  # the sub-networks take the model's policy (train.precision),
        keras.config.set_dtype_policy(self.dtype_policy)  # also when a saved model is rebuilt from its config
        try:
            self.encoder, self.decoder = self.build_networks()
        finally:
            keras.config.set_dtype_policy(previous)
        self.sampling = Sampling(reparam, seed=seed, name="sampling", dtype="float32")
        self.palette = None
        if self.palette_classes:  # the categorical decoder's colours, fitted to the training pixels (train.fit_palette)
            self.palette = self.add_weight(shape=(self.palette_classes, 3), initializer="zeros", trainable=False,
                                           name="palette", dtype="float32")
        self._kl_per_dim = losses.KL_PER_DIM[kl]
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.tracked}

    tracked = ("loss", "reconstruction_loss", "kl_loss", "kl_exact")  # the metrics train and test steps report

    @property
    def palette_classes(self):
        """The palette decoder's number of colours (0: the decoder draws RGB)."""
        return self.palette_size if self.reconstruction == "palette" else 0

    def build_networks(self):
        """(encoder, decoder) of section IV at this model's settings."""
        encoder = build_encoder(self.image_size, self.latent_dim, self.encoder_filters, self.kernel_size,
                                self.leaky_relu_slope, max_variance=2.0 if self.bounded_variance else None,
                                batch_norm=self.batch_norm)
        decoder = build_decoder(self.image_size, self.latent_dim, self.decoder_filters, self.encoder_filters[-1],
                                self.kernel_size, self.leaky_relu_slope, self.batch_norm, self.upsample,
                                self.residual_blocks, self.palette_classes)
        return encoder, decoder

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Under a tf.distribute strategy Keras' TensorFlow trainer averages the first batch over the replicas to
        # build a model from it, which a Batch dict of per-replica values cannot be. This model is built when it
        # is constructed and build_vae builds its optimizer: there is nothing left to build.
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    def build(self, input_shape=None):
        # The encoder and decoder are functional models, already built.
        self.built = True

    def labels_of(self, names, rows):
        """The labels a conditional model takes for the faces of attribute ``rows`` (columns ``names``): None here."""
        return None

    def network_input(self, tensor, labels):
        """What the encoder or decoder takes: ``tensor``; this model takes no labels."""
        if labels is not None:
            raise ValueError("this model is not conditional: it takes no labels")
        return tensor

    def encode(self, x, labels=None, training=False):
        """Image batch -> (mean, log_var), each (batch, latent_dim). ``labels``: a conditional model's only."""
        return self.encoder(self.network_input(x, labels), training=training)

    def posterior_log_var(self, log_var):
        """The log-variance of the posterior that sampling draws from (twice ``log_var`` under eq. 6 as
        printed, see :func:`cartoon_vae.losses.posterior_log_var`): what every reported exact KL uses."""
        return losses.posterior_log_var(log_var, self.reparam)

    def decode(self, z, labels=None, training=False):
        """Latent batch -> image batch in [0, 1]. A palette decoder draws each pixel's most likely colour
        (the mode of its categorical). ``labels``: a conditional model's only."""
        out = self.decoder(self.network_input(z, labels), training=training)
        return out if self.palette is None else losses.palette_mode(out, self.palette)

    def call(self, x, training=False):
        """Reconstruction through a sampled z: decode(mean + scale * eps)."""
        batch = as_batch(x)
        mean, log_var = self.encode(batch["image"], batch.get("labels"), training=training)
        return self.decode(self.sampling([mean, log_var]), batch.get("labels"), training=training)

    def compute_terms(self, x, training=False, labels=None):
        """Per-image loss terms (see the class docstring), each of shape (batch,): among them
        ``reconstruction_term``, the likelihood term the objective trains (:meth:`reconstruction_term`, or the
        palette decoder's ``nll``); and the per-dimension KL of the trained form, ``kl_per_dim`` (batch, latent_dim)."""
        mean, log_var = self.encode(x, labels, training=training)
        out = self.decoder(self.network_input(self.sampling([mean, log_var]), labels), training=training)
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
        n = global_batch_size(terms["loss"])
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

    @property
    def vae_weights(self):
        """The encoder's and decoder's trainable weights: what the objective trains (not a conditional model's
        readers)."""
        return self.encoder.trainable_weights + self.decoder.trainable_weights

    def training_loss(self, batch):
        """(per-image terms, the scalar loss the encoder and decoder descend) of a training batch."""
        terms = self.compute_terms(batch["image"], training=True)
        return terms, self.objective(terms)

    def after_step(self, batch, terms):
        """What else a training step updates once the encoder and decoder have: nothing here."""

    def train_step(self, data):
        batch = as_batch(data)
        with tf.GradientTape() as tape:
            terms, loss = self.training_loss(batch)
            scaled = self.optimizer.scale_loss(loss) if hasattr(self.optimizer, "scale_loss") else loss
        grads = tape.gradient(scaled, self.vae_weights)
        self.optimizer.apply_gradients(zip(grads, self.vae_weights))
        self.after_step(batch, terms)
        return self._record(terms)

    def test_terms(self, batch):
        """The per-image terms of a held-out batch."""
        return self.compute_terms(batch["image"], training=False)

    def test_step(self, data):
        return self._record(self.test_terms(as_batch(data)))

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
            "upsample": self.upsample, "residual_blocks": self.residual_blocks, "palette_size": self.palette_size,
        }

    @classmethod
    def from_config(cls, config):
        if cls is CartoonVAE and "conditional" in config:  # saved before conditional.ConditionalVAE had its class
            if config["conditional"]:
                return keras.saving.get_registered_object(f"{PACKAGE}>ConditionalVAE").from_config(config)
            config = {k: v for k, v in config.items() if k not in _CONDITIONAL_KEYS}
        return super().from_config(config)


_CONDITIONAL_KEYS = ("conditional", "adversary_weight", "adversary_units", "labels_every_block", "swap_weight")


def global_batch_size(per_image):
    """Images in this step's batch across all replicas. Under tf.distribute each replica holds part
    of the batch and the replicas' gradients are summed, so each divides its sum by this count:
    the update is the whole batch's mean, even when the last batch splits unevenly."""
    n = ops.cast(ops.shape(per_image)[0], "float32")
    replica = tf.distribute.get_replica_context()
    if replica is not None and replica.num_replicas_in_sync > 1:
        n = replica.all_reduce(tf.distribute.ReduceOp.SUM, n)
    return ops.maximum(n, 1.0)


def model_settings(config, fused_batch_norm=True) -> dict:
    """The :class:`CartoonVAE` arguments of a config: its layers in ``train.precision`` (Keras' mixed-precision
    policy: float32 variables, low-precision compute; the heads, the sampling layer, the image output and the
    losses stay float32)."""
    from .hardware import resolve_precision

    m, l = config.model, config.loss
    return dict(dtype=resolve_precision(config.train.precision),
                image_size=config.data.image_size, latent_dim=m.latent_dim, encoder_filters=m.encoder_filters,
                decoder_filters=m.decoder_filters, kernel_size=m.kernel_size, leaky_relu_slope=m.leaky_relu_slope,
                reparam=m.reparam, kl=l.kl, reconstruction_weight=l.reconstruction_weight, kl_weight=l.kl_weight,
                seed=m.seed, fused_batch_norm=fused_batch_norm, reconstruction=l.reconstruction,
                free_bits=l.free_bits, kl_warmup_epochs=l.kl_warmup_epochs, bounded_variance=m.bounded_variance,
                upsample=m.upsample, residual_blocks=m.residual_blocks, palette_size=l.palette_size,
                name="cartoon_vae")
