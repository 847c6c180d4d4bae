"""The model's own Keras layers: the sampling layer of eq. 6, the variance bound that eq. 5 needs, and batch
norm computed by TensorFlow's fused kernel. Registered for saving under the package's name."""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers, ops

from . import losses

PACKAGE = "cartoon_vae"


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
