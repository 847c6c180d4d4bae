"""The two training loops the benchmark compares, and the time-to-quality race between the recipes.

The project's loop is its own pipeline into ``fit``; the reference loop is written as the paper's
reference code (LearnOpenCV's notebook) is: ``image_dataset_from_directory`` + ``map(Rescaling)``
decoding the PNGs every epoch, Keras' BatchNormalization, two GradientTapes and two
``apply_gradients`` per step in a ``tf.function``.
"""

from __future__ import annotations

import time

import numpy as np

from .bench_measure import steady_rate

def project_epochs(config, precision="float32", initial_weights=None):
    """The project's pipeline, one epoch per call: the cached, reshuffled, prefetched training split
    of :func:`make_datasets` into ``fit``, in ``precision``. Returns (fn() -> (images, seconds), model)."""
    import keras

    from .batches import make_datasets, quiet_fit_warnings
    from .build import build_vae

    config = config.replace(train={"precision": precision})
    keras.utils.set_random_seed(config.train.seed)
    train, _ = make_datasets(config)
    vae = build_vae(config)
    if initial_weights is not None:
        vae.set_weights(initial_weights)
    n = _count_train(config)
    quiet_fit_warnings()

    def epoch():
        t0 = time.perf_counter()
        vae.fit(train, epochs=1, verbose=0)
        return n, time.perf_counter() - t0

    return epoch, vae


def _count_train(config):
    """Images in the training split: image_dataset_from_directory holds out int(n * val_fraction)."""
    from .data import list_images

    n = len(list_images(config.data.dir))
    return n - int(n * config.data.val_fraction)


def reference_epochs(config, initial_weights):
    """The paper's reference loop (LearnOpenCV's notebook) on the same files, from the same initial
    weights, one epoch per call: ``image_dataset_from_directory`` + ``map(Rescaling)``, decoding the
    PNGs every epoch, into :func:`reference_step`. Returns fn() -> (images, seconds)."""
    import keras

    d = config.data
    ds = keras.utils.image_dataset_from_directory(d.dir, label_mode=None, image_size=(d.image_size, d.image_size),
                                                  batch_size=d.batch_size, verbose=False)
    n_images = len(ds.file_paths)
    normalization_layer = keras.layers.Rescaling(1.0 / 255)
    ds = ds.map(lambda x: normalization_layer(x))
    train_step, _ = reference_step(config, initial_weights)

    def epoch():
        t0 = time.perf_counter()
        for image_batch in ds:
            loss = train_step(image_batch)
        float(loss)
        return n_images, time.perf_counter() - t0

    return epoch


def reference_training(config, epochs, initial_weights):
    """Images/s of :func:`reference_epochs` over ``epochs`` epochs, the first not counted."""
    epoch = reference_epochs(config, initial_weights)
    return steady_rate([epoch() for _ in range(epochs)])


def reference_step(config, initial_weights=None):
    """The notebook's step: two GradientTapes, two Adam ``apply_gradients``, Keras' BatchNormalization,
    the loss summed over the batch. Returns (the tf.function, the model)."""
    import keras
    import tensorflow as tf

    from . import losses
    from .build import build_vae

    l = config.loss
    reference = build_vae(config.replace(train={"precision": "float32"}), compile=False, fused_batch_norm=False)
    if initial_weights is not None:
        reference.set_weights(initial_weights)
    enc, dec, sampling = reference.encoder, reference.decoder, reference.sampling
    kl = losses.KL_FORMS[l.kl]
    enc_opt = keras.optimizers.Adam(config.train.learning_rate)
    dec_opt = keras.optimizers.Adam(config.train.learning_rate)

    @tf.function
    def train_step(images):
        with tf.GradientTape() as encoder, tf.GradientTape() as decoder:
            mean, log_var = enc(images, training=True)
            latent = sampling([mean, log_var])
            generated_images = dec(latent, training=True)
            loss = tf.reduce_sum(l.reconstruction_weight * losses.reconstruction_mse(images, generated_images)
                                 + l.kl_weight * kl(mean, log_var))
        gradients_of_enc = encoder.gradient(loss, enc.trainable_variables)
        gradients_of_dec = decoder.gradient(loss, dec.trainable_variables)
        enc_opt.apply_gradients(zip(gradients_of_enc, enc.trainable_variables))
        dec_opt.apply_gradients(zip(gradients_of_dec, dec.trainable_variables))
        return loss

    return train_step, reference


def heldout_mse(vae, val_x) -> float:
    """MSE of the reconstructions (decoded latent means) of ``val_x``."""
    from .inference import reconstruct

    return float(np.mean((val_x - reconstruct(vae, val_x)) ** 2))


def first_reach(curve, target):
    """Seconds at which a [(seconds, mse), ...] curve first reaches ``target`` (None: never)."""
    return next((t for t, mse in curve if mse <= target), None)


def _reference_curve(config, epochs, val_x):
    """[(training seconds, held-out MSE)] after each epoch of the reference loop, decoding every epoch."""
    import keras

    from .batches import make_datasets

    keras.utils.set_random_seed(config.train.seed)
    stream, _ = make_datasets(config.replace(data={"cache": "none"}))  # decoded every epoch
    step, reference = reference_step(config)
    curve, elapsed = [], 0.0
    for _ in range(epochs):
        t0 = time.perf_counter()
        for batch in stream:
            loss = step(batch["image"])
        float(loss)
        elapsed += time.perf_counter() - t0
        curve.append((elapsed, heldout_mse(reference, val_x)))
    return curve


def _recommended_curve(recommended_config, max_epochs, val_x, target):
    """The recommended recipe in the project's pipeline (``train.precision: auto``, its own learning-rate
    schedule and KL warm-up over its own ``train.epochs``), trained until its held-out MSE reaches ``target``,
    for at most ``max_epochs``. Returns ([(training seconds, held-out MSE)] after each epoch, the config
    it ran, the model); the time of scoring is left out."""
    import keras

    from .batches import make_training_datasets, quiet_fit_warnings
    from .build import build_vae
    from .train import learning_rate

    config = recommended_config.replace(train={"precision": "auto", "epochs": max_epochs})
    keras.utils.set_random_seed(config.train.seed)
    train_ds, _, steps = make_training_datasets(config)
    vae = build_vae(config, learning_rate=learning_rate(recommended_config, steps))
    vae.kl_warmup_steps = config.loss.kl_warmup_epochs * steps
    curve, clock = [], {"elapsed": 0.0}

    def begin(*_):
        clock["t0"] = time.perf_counter()

    def end(epoch, logs=None):
        clock["elapsed"] += time.perf_counter() - clock["t0"]
        curve.append((clock["elapsed"], heldout_mse(vae, val_x)))
        if curve[-1][1] <= target:
            vae.stop_training = True

    quiet_fit_warnings()
    vae.fit(train_ds, epochs=max_epochs, steps_per_epoch=steps, verbose=0,
            callbacks=[keras.callbacks.LambdaCallback(on_epoch_begin=begin, on_epoch_end=end)])
    return curve, config, vae


def _rounded(curve):
    """A [(seconds, mse), ...] curve as the results store it: [[seconds to 0.1, mse to 6 places], ...]."""
    return [[round(t, 1), round(m, 6)] for t, m in curve]


def time_to_quality(paper_config, recommended_config, paper_epochs, max_epochs, log=print) -> dict:
    """Wall seconds of training until the held-out MSE first reaches the paper recipe's final value:
    the paper recipe in the reference loop (decoding every epoch, as the notebook does) for
    ``paper_epochs`` epochs sets the target; the recommended recipe in the project's pipeline
    (cache, fused step, ``train.precision: auto``, its own learning-rate schedule over its own
    ``train.epochs``) trains until it reaches it, for at most ``max_epochs``. Both read the same
    images with the project's preprocessing and are scored on the same held-out faces; the time of
    scoring is left out."""
    import keras

    from .batches import make_datasets
    from .hardware import cpu_ticks, steal_fraction

    ticks = [cpu_ticks()]
    _, val = make_datasets(paper_config)
    val_x = np.concatenate([np.asarray(b["image"]) for b in val])
    paper_curve = _reference_curve(paper_config, paper_epochs, val_x)
    target = paper_curve[-1][1]
    ticks.append(cpu_ticks())
    log(f"  paper recipe, reference loop: {paper_epochs} epochs in {paper_curve[-1][0]:.0f} s, held-out MSE "
        f"{target:.5f}")
    curve, config, vae = _recommended_curve(recommended_config, max_epochs, val_x, target)
    ticks.append(cpu_ticks())
    paper_s, ours_s = first_reach(paper_curve, target), first_reach(curve, target)
    result = {"target_mse": round(target, 6), "paper_epochs": paper_epochs,
              "paper_reference_seconds": round(paper_s, 1), "paper_curve": _rounded(paper_curve),
              "recommended_precision": config.train.precision,
              "recommended_lr_schedule": config.train.lr_schedule,
              "recommended_final_learning_rate": float(keras.ops.convert_to_numpy(vae.optimizer.learning_rate)),
              "recommended_seconds": ours_s and round(ours_s, 1),
              "recommended_epochs": len(curve), "recommended_curve": _rounded(curve),
              "speedup": round(paper_s / ours_s, 2) if ours_s else None,
              "cpu_steal": {"paper": steal_fraction(*ticks[:2]), "recommended": steal_fraction(*ticks[1:])}}
    log(f"  recommended recipe, project pipeline: reached it after {len(curve)} epochs, "
        f"{ours_s if ours_s is None else round(ours_s)} s: {result['speedup']}x")
    return result
