"""``cartoon-vae benchmark``: the project's training pipeline against the paper's reference loop.

Everything runs in one process, on the same image files and the same initial weights:

* **training** images/s, steady state (the first epoch, with tracing and the cache
  fill, is excluded), of (a) the project's ``fit`` pipeline (:func:`make_training_datasets`
  + :func:`build_vae` + ``fit``) and (b) a reference loop written as the paper's
  reference code is: ``image_dataset_from_directory`` + ``map(Rescaling)`` decoding the
  PNGs every epoch, Keras' own BatchNormalization, two GradientTapes and two
  ``apply_gradients`` per step in a ``tf.function``; at the paper's 256x256 and at the
  demo size, each with its config's batch size;
* the step's achieved FLOP/s (:func:`training_flops_per_image`, 3x the forward pass)
  as a fraction of a dense float32 matmul's FLOP/s measured in the same run;
* the input pipeline alone, cold (decoding PNGs) and from the cache, against the
  rate training consumes images;
* generation from a saved and reloaded model: latency for 10 faces, batched images/s;
* the peak resident memory (RSS) of each phase (the kernel's high-water mark, reset
  between phases through /proc/self/clear_refs);
* with ``--variants`` (the full run), the step alone under settings the project
  chose or rejected: Keras' BatchNormalization instead of the fused kernel, XLA,
  mixed_bfloat16, oneDNN off and one inter-op thread (the last two in a child
  process: TensorFlow reads them once, at start-up).

Example:
    >>> from cartoon_vae.benchmark import run_benchmark
    >>> results = run_benchmark(quick=True)
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .config import load_config

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {  # images (files) and epochs per training measurement; the first epoch is warm-up.
    # time_to_quality: epochs of the paper recipe in the reference loop (its final MSE is the target) and
    # the most epochs the recommended recipe gets to reach it (0: the phase is skipped)
    "quick": {"images": {256: 256, "demo": 512}, "epochs": 2, "generation_reps": 3, "time_to_quality": (0, 0)},
    "full": {"images": {256: 768, "demo": 2000}, "epochs": 3, "generation_reps": 10, "time_to_quality": (40, 40)},
}


# --- memory --------------------------------------------------------------------------------

def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0). False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def rss_mb(field="VmHWM") -> float:
    """This process's peak resident memory since the last reset (VmHWM), or now (VmRSS), MiB.
    Where /proc is missing: ru_maxrss, the peak of the whole run."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def phase(record: dict, name: str):
    """Time a phase; record its wall seconds, RSS at its start and peak RSS under ``record[name]``.
    Memory the process still holds from earlier phases counts in the peak: compare with the start."""
    reset_peak_rss()
    start = rss_mb("VmRSS")
    t0 = time.perf_counter()
    yield
    record[name] = {"seconds": round(time.perf_counter() - t0, 2), "rss_at_start_mb": round(start),
                    "peak_rss_mb": round(rss_mb())}


# --- FLOPs ---------------------------------------------------------------------------------

def forward_flops_per_image(model) -> int:
    """Multiply-adds x 2 of the Conv2D, Conv2DTranspose and Dense layers of a functional model, per image."""
    import keras

    flops = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            flops += forward_flops_per_image(layer)
        elif isinstance(layer, keras.layers.Conv2DTranspose):  # each input pixel spreads a k x k kernel
            _, h, w, c_in = layer.input.shape
            flops += 2 * h * w * c_in * layer.filters * int(np.prod(layer.kernel_size))
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            flops += 2 * h * w * c_out * layer.input.shape[-1] * int(np.prod(layer.kernel_size))
        elif isinstance(layer, keras.layers.Dense):
            flops += 2 * layer.input.shape[-1] * layer.units
    return flops


def training_flops_per_image(vae) -> int:
    """Forward + backward FLOPs per image: 3x the forward pass (the usual count; normalisation,
    activations and the loss are left out, so achieved FLOP/s is a slight underestimate)."""
    return 3 * (forward_flops_per_image(vae.encoder) + forward_flops_per_image(vae.decoder))


def matmul_flops(n=2048, seconds=3.0, dtype="float32") -> float:
    """Dense matmul FLOP/s of this machine in ``dtype`` (best of repeated n x n products): the roofline."""
    import tensorflow as tf

    a, b = (tf.cast(tf.random.uniform((n, n)), dtype) for _ in range(2))
    product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    product().numpy()
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        for _ in range(4):
            product().numpy()
        best = max(best, 4 * 2 * n ** 3 / (time.perf_counter() - t0))
    return best


# --- the two training loops ----------------------------------------------------------------

class _EpochTimer:
    """Wall time of each training epoch (validation excluded: the benchmark runs none)."""

    def __init__(self):
        self.seconds = []

    def begin(self):
        self.t0 = time.perf_counter()

    def end(self):
        self.seconds.append(time.perf_counter() - self.t0)


def steady_rate(images_per_epoch, epoch_seconds) -> float:
    """Images/s over the epochs after the first (tracing, cache fill and allocator warm-up)."""
    measured = epoch_seconds[1:] or epoch_seconds
    return images_per_epoch * len(measured) / sum(measured)


def project_training(config, epochs, precision="float32"):
    """The project's pipeline: the cached, shuffled, prefetched stream of :func:`make_training_datasets`
    into ``fit``, in ``precision``. Returns (img/s, the trained model, its initial weights)."""
    import keras

    from .data import make_training_datasets, quiet_fit_warnings
    from .model import build_vae

    config = config.replace(train={"epochs": epochs, "precision": precision})
    keras.utils.set_random_seed(config.train.seed)
    stream, _, steps = make_training_datasets(config)
    vae = build_vae(config)
    initial = vae.get_weights()
    timer = _EpochTimer()
    callback = keras.callbacks.LambdaCallback(on_epoch_begin=lambda *_: timer.begin(),
                                              on_epoch_end=lambda *_: timer.end())
    quiet_fit_warnings()
    vae.fit(stream, epochs=epochs, steps_per_epoch=steps, verbose=0, callbacks=[callback])
    return steady_rate(_count_train(config), timer.seconds), vae, initial


def _count_train(config):
    """Images in the training split: image_dataset_from_directory holds out int(n * val_fraction)."""
    from .data import list_images

    n = len(list_images(config.data.dir))
    return n - int(n * config.data.val_fraction)


def reference_training(config, epochs, initial_weights):
    """The paper's reference loop (LearnOpenCV's notebook) on the same files, from the same initial weights.
    Returns img/s.

    The network is the same with Keras' own BatchNormalization, as in the notebook.
    Keras 3 optimizers are bound to the variables of their first update, so the two
    ``apply_gradients`` calls use two Adam instances; Adam's state is per variable, so
    this is the same update as the notebook's one optimizer.
    """
    import keras

    d = config.data
    ds = keras.utils.image_dataset_from_directory(d.dir, label_mode=None, image_size=(d.image_size, d.image_size),
                                                  batch_size=d.batch_size, verbose=False)
    n_images = len(ds.file_paths)
    normalization_layer = keras.layers.Rescaling(1.0 / 255)
    ds = ds.map(lambda x: normalization_layer(x))
    train_step, _ = reference_step(config, initial_weights)
    timer = _EpochTimer()
    for _ in range(epochs):
        timer.begin()
        for image_batch in ds:
            loss = train_step(image_batch)
        float(loss)
        timer.end()
    return steady_rate(n_images, timer.seconds)


def reference_step(config, initial_weights=None):
    """The notebook's step: two GradientTapes, two Adam ``apply_gradients``, Keras' BatchNormalization,
    the loss summed over the batch. Returns (the tf.function, the model)."""
    import keras
    import tensorflow as tf

    from . import losses
    from .model import build_vae

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


# --- time to quality -----------------------------------------------------------------------

def heldout_mse(vae, val_x) -> float:
    """MSE of the reconstructions (decoded latent means) of ``val_x``."""
    from .figures import reconstruct

    return float(np.mean((val_x - reconstruct(vae, val_x)) ** 2))


def first_reach(curve, target):
    """Seconds at which a [(seconds, mse), ...] curve first reaches ``target`` (None: never)."""
    return next((t for t, mse in curve if mse <= target), None)


def time_to_quality(paper_config, recommended_config, paper_epochs, max_epochs, log=print) -> dict:
    """Wall seconds of training until the held-out MSE first reaches the paper recipe's final value:
    the paper recipe in the reference loop (decoding every epoch, as the notebook does) for
    ``paper_epochs`` epochs sets the target; the recommended recipe in the project's pipeline
    (cache, fused step, ``train.precision: auto``) trains until it reaches it. Both read the same
    images with the project's preprocessing and are scored on the same held-out faces; the time of
    scoring is left out."""
    import keras

    from .data import make_datasets, make_training_datasets, quiet_fit_warnings
    from .model import build_vae

    _, val = make_datasets(paper_config)
    val_x = np.concatenate([np.asarray(b) for b in val])
    keras.utils.set_random_seed(paper_config.train.seed)
    stream, _ = make_datasets(paper_config.replace(data={"cache": "none"}))  # decoded every epoch
    step, reference = reference_step(paper_config)
    paper_curve, elapsed = [], 0.0
    for epoch in range(paper_epochs):
        t0 = time.perf_counter()
        for batch in stream:
            loss = step(batch)
        float(loss)
        elapsed += time.perf_counter() - t0
        paper_curve.append((elapsed, heldout_mse(reference, val_x)))
    target = paper_curve[-1][1]
    log(f"  paper recipe, reference loop: {paper_epochs} epochs in {elapsed:.0f} s, held-out MSE {target:.5f}")

    config = recommended_config.replace(train={"precision": "auto", "epochs": max_epochs})
    keras.utils.set_random_seed(config.train.seed)
    train_ds, _, steps = make_training_datasets(config)
    vae = build_vae(config)
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
    paper_s, ours_s = first_reach(paper_curve, target), first_reach(curve, target)
    result = {"target_mse": round(target, 6), "paper_epochs": paper_epochs,
              "paper_reference_seconds": round(paper_s, 1), "paper_curve": [[round(t, 1), round(m, 6)]
                                                                             for t, m in paper_curve],
              "recommended_precision": config.train.precision, "recommended_seconds": ours_s and round(ours_s, 1),
              "recommended_epochs": len(curve), "recommended_curve": [[round(t, 1), round(m, 6)] for t, m in curve],
              "speedup": round(paper_s / ours_s, 2) if ours_s else None}
    log(f"  recommended recipe, project pipeline: reached it after {len(curve)} epochs, "
        f"{ours_s if ours_s is None else round(ours_s)} s: {result['speedup']}x")
    return result


# --- input pipeline and generation ---------------------------------------------------------

def input_pipeline_rates(config):
    """Images/s of the training input alone: cold (decode, composite, resize) and from the memory cache."""
    from .data import _normalised, load_splits

    rates = {}
    for name, cache in (("cold", "none"), ("cached", "memory")):
        s = load_splits(config.replace(data={"cache": cache}).data, verbose=False)
        batches = _normalised(s.train.batch(config.data.batch_size), False)
        if cache == "memory":
            for _ in batches:  # fill the cache
                pass
        t0 = time.perf_counter()
        for _ in batches:
            pass
        rates[name] = s.n_train / (time.perf_counter() - t0)
    return rates


def generation_rates(vae, batch_size, reps):
    """From a saved and reloaded model: median latency of 10 faces (ms) and batched faces/s."""
    import keras

    from .figures import decode

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        vae.save(path)
        t0 = time.perf_counter()
        loaded = keras.models.load_model(path)
        load_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    z10 = rng.standard_normal((10, loaded.latent_dim)).astype(np.float32)
    decode(loaded, z10)  # warm-up
    latencies = []
    for _ in range(reps):
        t0 = time.perf_counter()
        decode(loaded, z10)
        latencies.append(time.perf_counter() - t0)
    z = rng.standard_normal((batch_size * 4, loaded.latent_dim)).astype(np.float32)
    decode(loaded, z[:batch_size], batch_size)
    t0 = time.perf_counter()
    decode(loaded, z, batch_size)
    return {"load_seconds": round(load_s, 2), "latency_10_ms": round(1000 * statistics.median(latencies), 1),
            "batched_img_s": round(len(z) / (time.perf_counter() - t0), 1), "batch_size": batch_size}


# --- step variants -------------------------------------------------------------------------

def step_rate(config, variant="project", batch_size=32, steps=3) -> float:
    """Images/s of the training step alone on a fixed random batch, for one variant of the settings."""
    import keras
    import tensorflow as tf

    from .model import build_vae

    precision = "mixed_bfloat16" if variant == "mixed_bfloat16" else "float32"
    config = config.replace(train={"precision": precision})
    try:
        keras.utils.set_random_seed(0)
        vae = build_vae(config, compile=False, fused_batch_norm=variant != "keras_batch_norm")
        vae.compile(optimizer=keras.optimizers.Adam(config.train.learning_rate))
        x = tf.random.uniform((batch_size, config.data.image_size, config.data.image_size, 3), seed=0)
        step = tf.function(vae.train_step, jit_compile=variant == "xla")
        for _ in range(2):  # tracing, then the allocator's first real step
            float(step(x)["loss"])
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = step(x)["loss"]
        float(loss)
        return batch_size * steps / (time.perf_counter() - t0)
    finally:
        keras.backend.clear_session()


def in_child(function, env, **kwargs):
    """Run ``function(**kwargs)`` of this module in a fresh Python with extra environment variables and
    return its (JSON) result: TensorFlow reads oneDNN and thread settings once, at start-up."""
    code = ("import json, sys; from cartoon_vae import benchmark; a = json.loads(sys.argv[2]); "
            "print(json.dumps(getattr(benchmark, sys.argv[1])(**a)))")
    out = subprocess.run([sys.executable, "-c", code, function, json.dumps(kwargs)], env={**os.environ, **env},
                         check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def child_step_rate(config_path, batch_size, steps):
    """:func:`step_rate` of the project's step, for :func:`in_child`."""
    return step_rate(load_config(config_path), "project", batch_size, steps)


def child_reference_training(config_path, epochs, weights_path):
    """:func:`reference_training`, for :func:`in_child`: the config and initial weights come as files."""
    with np.load(weights_path) as w:
        weights = [w[f"w{i}"] for i in range(len(w.files))]
    return reference_training(load_config(config_path), epochs, weights)


def _to_files(config, weights, folder):
    """Write a config and a weight list where a child process can read them."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    config_path, weights_path = folder / "config.yaml", folder / "weights.npz"
    config_path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    np.savez(weights_path, **{f"w{i}": w for i, w in enumerate(weights)})
    return str(config_path), str(weights_path)


# --- the whole benchmark -------------------------------------------------------------------

def _machine():
    import keras
    import tensorflow as tf

    from .hardware import cpu_flags, cpu_model, resolve_precision

    return {"cpu": cpu_model(), "cpu_flags": cpu_flags(), "auto_precision": resolve_precision("auto"),
            "cores": os.cpu_count(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "keras": keras.__version__,
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}


def _subset(data_dir, n, out):
    """A folder of symbolic links to the first ``n`` images of ``data_dir`` (identical data for both loops)."""
    from .data import list_images

    paths = list_images(data_dir)[:n]
    out.mkdir(parents=True)
    for i, p in enumerate(paths):
        (out / f"{i:06d}{Path(p).suffix}").symlink_to(os.path.abspath(p))
    return len(paths)


def run_benchmark(quick=False, data_dir=None, paper_config="configs/paper.yaml", demo_config="configs/demo-paper.yaml",
                  variants=None, log=print, plan=None, recommended_config="configs/recommended.yaml") -> dict:
    """Run every phase; return the results (see the module docstring). ``variants`` defaults to
    ``not quick``; ``plan`` replaces the image counts and epochs of :data:`SETTINGS` (tests)."""
    from .synthetic import make_dataset

    mode = "quick" if quick else "full"
    plan = plan or SETTINGS[mode]
    variants = (not quick) if variants is None else variants
    results = {"mode": mode, "machine": _machine(), "phases": {}, "training": [], "input_pipeline": [],
               "step_variants": []}
    auto = results["machine"]["auto_precision"]
    phases = results["phases"]
    need = max(plan["images"].values())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if data_dir is None:
            data_dir = tmp / "faces"
            log(f"drawing {need} faces with the embedded generator")
            with phase(phases, "make_data"):
                make_dataset(data_dir, need, seed=0, progress=False)
        with phase(phases, "matmul"):
            roofline = matmul_flops(seconds=2.0 if quick else 5.0)
        results["matmul_gflop_s"] = round(roofline / 1e9, 1)
        log(f"{results['machine']['cpu']}; flags: " + " ".join(f for f, on in results["machine"]["cpu_flags"].items()
                                                                if on) + f"; auto precision: {auto}")
        log(f"dense float32 matmul: {roofline / 1e9:.1f} GFLOP/s")
        roofline_auto = roofline
        if auto == "mixed_bfloat16":
            with phase(phases, "matmul_bfloat16"):
                roofline_auto = matmul_flops(seconds=2.0 if quick else 5.0, dtype="bfloat16")
            results["matmul_bf16_gflop_s"] = round(roofline_auto / 1e9, 1)
            log(f"dense bfloat16 matmul: {roofline_auto / 1e9:.1f} GFLOP/s")

        for label, config_path in (("256", paper_config), ("demo", demo_config)):
            config = load_config(config_path)
            n = _subset(data_dir, plan["images"][256 if label == "256" else "demo"], tmp / f"subset-{label}")
            config = config.replace(data={"dir": str(tmp / f"subset-{label}")})
            size, batch = config.data.image_size, config.data.batch_size
            log(f"training at {size}x{size}, batch {batch}, {n} images, {plan['epochs']} epochs per loop ...")
            with phase(phases, f"train_project_{size}"):
                project, vae, initial = project_training(config, plan["epochs"])
            with phase(phases, f"train_reference_{size}"):
                reference = reference_training(config, plan["epochs"], initial)
            config_file, weights_file = _to_files(config, initial, tmp / f"child-{label}")
            with phase(phases, f"train_reference_tf_defaults_{size}"):  # the child's own memory is not counted
                defaults = in_child("child_reference_training", {"TF_ENABLE_ONEDNN_OPTS": "0"},
                                    config_path=config_file, epochs=plan["epochs"], weights_path=weights_file)
            if auto != "float32":
                with phase(phases, f"train_project_{auto}_{size}"):
                    auto_rate = project_training(config, plan["epochs"], precision=auto)[0]
            else:
                auto_rate = project
            flops = training_flops_per_image(vae)
            row = {"auto_precision": auto, "auto_img_s": round(auto_rate, 2),
                   "auto_vs_float32": round(auto_rate / project, 2), "auto_speedup": round(auto_rate / reference, 2),
                   "auto_fraction_of_roofline": round(auto_rate * flops / roofline_auto, 3),"image_size": size, "batch_size": batch, "images": n, "config": str(config_path),
                   "project_img_s": round(project, 2), "reference_img_s": round(reference, 2),
                   "speedup": round(project / reference, 2),
                   "reference_tf_defaults_img_s": round(defaults, 2),
                   "speedup_vs_tf_defaults": round(project / defaults, 2), "gflop_per_image": round(flops / 1e9, 3),
                   "project_gflop_s": round(project * flops / 1e9, 1),
                   "fraction_of_matmul": round(project * flops / roofline, 3),
                   "reference_fraction_of_matmul": round(reference * flops / roofline, 3)}
            results["training"].append(row)
            log(f"  {auto}: {auto_rate:.1f} img/s, {auto_rate / project:.2f}x float32, {auto_rate / reference:.2f}x "
                f"the reference loop")
            log(f"  project {project:.1f} img/s, reference {reference:.1f} img/s: {project / reference:.2f}x "
                f"(reference with TensorFlow's defaults, oneDNN off: {defaults:.1f} img/s, {project / defaults:.2f}x); "
                f"{row['project_gflop_s']} GFLOP/s = {100 * row['fraction_of_matmul']:.0f}% of matmul")
            with phase(phases, f"input_pipeline_{size}"):
                rates = input_pipeline_rates(config)
            results["input_pipeline"].append({"image_size": size, "cold_img_s": round(rates["cold"], 1),
                                              "cached_img_s": round(rates["cached"], 1),
                                              "training_img_s": round(project, 1)})
            log(f"  input pipeline: cold {rates['cold']:.0f} img/s, cached {rates['cached']:.0f} img/s")
            if label == "256":
                with phase(phases, "generation_256"):
                    results["generation"] = {"image_size": size, **generation_rates(vae, batch,
                                                                                    plan["generation_reps"])}
                g = results["generation"]
                log(f"  generation: 10 faces in {g['latency_10_ms']} ms, {g['batched_img_s']} img/s batched")
            if variants:
                results["step_variants"] += _variants(config, config_file, log)
        paper_epochs, max_epochs = plan["time_to_quality"]
        if paper_epochs:
            log(f"time to quality at 64x64 ({plan['images']['demo']} images): ...")
            subset = {"dir": str(tmp / "subset-demo")}
            with phase(phases, "time_to_quality"):
                results["time_to_quality"] = time_to_quality(
                    load_config(demo_config).replace(data=subset),
                    load_config(recommended_config).replace(data=subset), paper_epochs, max_epochs, log)
    return results


def _variants(config, config_path, log, batch_size=32, steps=3):
    rows = []
    size = config.data.image_size
    base = step_rate(config, "project", batch_size, steps)
    runs = [("keras_batch_norm", lambda: step_rate(config, "keras_batch_norm", batch_size, steps)),
            ("xla", lambda: step_rate(config, "xla", batch_size, steps)),
            ("mixed_bfloat16", lambda: step_rate(config, "mixed_bfloat16", batch_size, max(1, steps // 2))),
            ("onednn_off", lambda: in_child("child_step_rate", {"TF_ENABLE_ONEDNN_OPTS": "0"},
                                            config_path=config_path, batch_size=batch_size, steps=steps)),
            ("one_inter_op_thread", lambda: in_child("child_step_rate", {"TF_NUM_INTEROP_THREADS": "1"},
                                                     config_path=config_path, batch_size=batch_size, steps=steps))]
    rows.append({"image_size": size, "variant": "project", "img_s": round(base, 2), "relative": 1.0})
    for name, fn in runs:
        rate = fn()
        rows.append({"image_size": size, "variant": name, "img_s": round(rate, 2), "relative": round(rate / base, 2)})
        log(f"  step variant {name}: {rate:.1f} img/s ({rate / base:.2f}x the project's step)")
    return rows


def format_table(results) -> str:
    """The benchmark as Markdown tables (the README's performance section)."""
    lines = ["| image size | batch | reference loop img/s | project img/s | speedup | reference, TF defaults "
             "img/s | speedup | project GFLOP/s | % of matmul |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results["training"]:
        lines.append(f"| {r['image_size']} | {r['batch_size']} | {r['reference_img_s']} | {r['project_img_s']} | "
                     f"**{r['speedup']}x** | {r['reference_tf_defaults_img_s']} | {r['speedup_vs_tf_defaults']}x | "
                     f"{r['project_gflop_s']} | {100 * r['fraction_of_matmul']:.0f}% |")
    m = results["machine"]
    lines += ["", f"Machine: {m['cpu']}, {m['cores']} cores; flags " + ", ".join(
        f"{f} {'yes' if on else 'no'}" for f, on in m.get("cpu_flags", {}).items())
        + f"; `train.precision: auto` picks **{m.get('auto_precision', 'float32')}**. Dense float32 matmul: "
        f"{results['matmul_gflop_s']} GFLOP/s" + (f"; bfloat16: {results['matmul_bf16_gflop_s']} GFLOP/s"
                                                  if "matmul_bf16_gflop_s" in results else "") + ".", ""]
    if any(r.get("auto_precision", "float32") != "float32" for r in results["training"]):
        lines += ["| image size | float32 img/s | auto img/s | auto vs float32 | auto vs reference loop | "
                  "% of the auto roofline |", "|---|---|---|---|---|---|"]
        for r in results["training"]:
            lines.append(f"| {r['image_size']} | {r['project_img_s']} | {r['auto_img_s']} ({r['auto_precision']}) | "
                         f"**{r['auto_vs_float32']}x** | **{r['auto_speedup']}x** | "
                         f"{100 * r['auto_fraction_of_roofline']:.0f}% |")
        lines.append("")
    t = results.get("time_to_quality")
    if t:
        lines += [f"Time to quality at 64x64: the paper recipe in the reference loop reaches held-out MSE "
                  f"{t['target_mse']} after {t['paper_epochs']} epochs, {t['paper_reference_seconds']} s of training; "
                  f"the recommended recipe in the project's pipeline ({t['recommended_precision']}) reaches it after "
                  f"{t['recommended_epochs']} epochs, {t['recommended_seconds']} s: **{t['speedup']}x**.", ""]
    lines += [
              "| image size | input pipeline, cold img/s | cached img/s | training consumes img/s |",
              "|---|---|---|---|"]
    for r in results["input_pipeline"]:
        lines.append(f"| {r['image_size']} | {r['cold_img_s']} | {r['cached_img_s']} | {r['training_img_s']} |")
    g = results.get("generation")
    if g:
        lines += ["", f"Generation at {g['image_size']}x{g['image_size']} from a reloaded model: 10 faces in "
                      f"{g['latency_10_ms']} ms; {g['batched_img_s']} faces/s in batches of {g['batch_size']} "
                      f"(model load {g['load_seconds']} s)."]
    if results["step_variants"]:
        lines += ["", "| image size | training step variant (batch 32) | img/s | vs the project's step |",
                  "|---|---|---|---|"]
        for r in results["step_variants"]:
            lines.append(f"| {r['image_size']} | {r['variant']} | {r['img_s']} | {r['relative']}x |")
    lines += ["", "| phase | seconds | RSS at start MiB | peak RSS MiB |", "|---|---|---|---|"]
    for name, p in results["phases"].items():
        lines.append(f"| {name} | {p['seconds']} | {p['rss_at_start_mb']} | {p['peak_rss_mb']} |")
    return "\n".join(lines)
