"""The model's own layers: the sampling layer's stream, the variance bound, the fused batch norm."""

import keras
import numpy as np
import pytest

from cartoon_vae.vae_layers import BoundedLogVariance, Sampling


def test_the_variance_bound_keeps_sigma_squared_in_the_open_interval_and_starts_at_one():
    var = np.exp(np.asarray(BoundedLogVariance(2.0)(np.array([[-80.0, 0.0, 80.0]], "float32"))))
    assert np.all(var > 0) and np.all(var < 2.0 + 1e-6) and var[0, 1] == pytest.approx(1.0)
    assert BoundedLogVariance.from_config(BoundedLogVariance(3.0).get_config()).max_variance == 3.0


def test_sampling_is_seeded_and_its_stream_continues_after_a_save_and_load():
    mean, log_var = np.zeros((4, 3), "float32"), np.log(np.full((4, 3), 4.0, "float32"))
    a, b = Sampling(seed=1), Sampling(seed=1)
    np.testing.assert_array_equal(np.asarray(a([mean, log_var])), np.asarray(b([mean, log_var])))
    store = {}
    a.save_own_variables(store)
    c = Sampling(seed=1)
    c.load_own_variables(store)
    np.testing.assert_array_equal(np.asarray(a([mean, log_var])), np.asarray(c([mean, log_var])))
    draw = np.asarray(Sampling(seed=2, reparam="paper_variance")([mean, log_var]))
    assert draw.std() > 1.5  # scale sigma^2 = 4, not sigma = 2


def test_fused_batch_norm_matches_keras_batch_norm():
    import tensorflow as tf

    from cartoon_vae.vae_layers import FusedBatchNormalization

    x = tf.constant(np.random.RandomState(0).normal(2.0, 3.0, (4, 6, 6, 5)).astype("float32"))
    fused, plain = FusedBatchNormalization(), keras.layers.BatchNormalization()
    fused.build(x.shape), plain.build(x.shape)
    rng = np.random.RandomState(1)
    weights = [rng.uniform(0.5, 1.5, 5).astype("float32") for _ in range(4)]
    fused.set_weights(weights), plain.set_weights(weights)
    w = tf.constant(rng.normal(size=x.shape).astype("float32"))  # so no gradient is ~0 by symmetry
    results = []
    for layer in (fused, plain):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * w)
        grads = tape.gradient(loss, [x, *layer.trainable_weights])
        layer(x, training=True)  # a second update of the moving averages
        results.append([y, *grads, *layer.non_trainable_weights, layer(x, training=False)])
    for a, b in zip(*results):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


