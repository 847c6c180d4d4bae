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
SETTINGS = {  # images (files) and epochs per training measurement; the first epoch is warm-up
    "quick": {"images": {256: 256, "demo": 512}, "epochs": 2, "generation_reps": 3},
    "full": {"images": {256: 768, "demo": 2000}, "epochs": 3, "generation_reps": 10},
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


def matmul_flops(n=2048, seconds=3.0) -> float:
    """Dense float32 matmul FLOP/s of this machine (best of repeated n x n products)."""
    import tensorflow as tf

    a, b = tf.random.uniform((n, n)), tf.random.uniform((n, n))
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


def project_training(config, epochs):
    """The project's pipeline: the cached, shuffled, prefetched stream of :func:`make_training_datasets`
    into ``fit``. Returns (img/s, the trained model, its initial weights)."""
    import keras

    from .data import make_training_datasets, quiet_fit_warnings
    from .model import build_vae

    config = config.replace(train={"epochs": epochs})
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
    import tensorflow as tf

    from . import losses
    from .model import build_vae

    d, l = config.data, config.loss
    ds = keras.utils.image_dataset_from_directory(d.dir, label_mode=None, image_size=(d.image_size, d.image_size),
                                                  batch_size=d.batch_size, verbose=False)
    n_images = len(ds.file_paths)
    normalization_layer = keras.layers.Rescaling(1.0 / 255)
    ds = ds.map(lambda x: normalization_layer(x))

    reference = build_vae(config, compile=False, fused_batch_norm=False)
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

    timer = _EpochTimer()
    for _ in range(epochs):
        timer.begin()
        for image_batch in ds:
            loss = train_step(image_batch)
        float(loss)
        timer.end()
    return steady_rate(n_images, timer.seconds)


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

    if variant == "mixed_bfloat16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
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
        keras.mixed_precision.set_global_policy("float32")


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

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
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
                  variants=None, log=print, plan=None) -> dict:
    """Run every phase; return the results (see the module docstring). ``variants`` defaults to
    ``not quick``; ``plan`` replaces the image counts and epochs of :data:`SETTINGS` (tests)."""
    from .synthetic import make_dataset

    mode = "quick" if quick else "full"
    plan = plan or SETTINGS[mode]
    variants = (not quick) if variants is None else variants
    results = {"mode": mode, "machine": _machine(), "phases": {}, "training": [], "input_pipeline": [],
               "step_variants": []}
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
        log(f"dense float32 matmul: {roofline / 1e9:.1f} GFLOP/s")

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
            flops = training_flops_per_image(vae)
            row = {"image_size": size, "batch_size": batch, "images": n, "config": str(config_path),
                   "project_img_s": round(project, 2), "reference_img_s": round(reference, 2),
                   "speedup": round(project / reference, 2),
                   "reference_tf_defaults_img_s": round(defaults, 2),
                   "speedup_vs_tf_defaults": round(project / defaults, 2), "gflop_per_image": round(flops / 1e9, 3),
                   "project_gflop_s": round(project * flops / 1e9, 1),
                   "fraction_of_matmul": round(project * flops / roofline, 3),
                   "reference_fraction_of_matmul": round(reference * flops / roofline, 3)}
            results["training"].append(row)
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
    lines += ["", f"Dense float32 matmul: {results['matmul_gflop_s']} GFLOP/s.", "",
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
