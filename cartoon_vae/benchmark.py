"""``cartoon-vae benchmark``: the project's training pipeline against the paper's reference loop.

Everything runs in one process, on the same image files and the same initial weights:

* **training** images/s of (a) the project's pipeline (the cached, reshuffled, prefetched
  split of :func:`make_datasets` into ``fit``), in float32 and in the precision
  ``train.precision: auto`` picks, and (b) a reference loop written as the paper's
  reference code is: ``image_dataset_from_directory`` + ``map(Rescaling)`` decoding the
  PNGs every epoch, Keras' own BatchNormalization, two GradientTapes and two
  ``apply_gradients`` per step in a ``tf.function``; at the paper's 256x256 and at the
  demo size, each with its config's batch size. The loops run one epoch each in
  turn (:func:`interleave`), so that the drift of a shared machine's speed (CPU steal)
  falls on all of them; ratios are per-round ratios with intervals (:func:`rate_ratio`);
* the step's achieved FLOP/s (:func:`training_flops_per_image`, 3x the forward pass)
  as a fraction of a dense float32 (and, where native, bfloat16) matmul's FLOP/s;
* the input pipeline alone, cold (decoding PNGs) and from the cache, against the
  rate training consumes images;
* generation from a saved and reloaded model: latency for 10 faces, batched images/s;
* the peak resident memory (RSS) and the CPU steal of each phase (the kernel's
  high-water mark, reset between phases through /proc/self/clear_refs; /proc/stat);
* time to quality (the full run): wall seconds until held-out MSE reaches the paper
  recipe's final value, paper recipe + reference loop vs recommended recipe + pipeline;
* with ``--variants`` (the full run), the step alone under settings the project
  chose or rejected (:data:`STEP_VARIANTS`, :data:`CHILD_VARIANTS`: Keras'
  BatchNormalization, XLA, mixed_bfloat16, larger batches, oneDNN off, fewer threads; the
  last ones in child processes: TensorFlow reads them once, at start-up), interleaved.

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
SETTINGS = {  # images (files) and measured rounds (one epoch of each loop, interleaved) after a warm-up round;
    # time_to_quality: epochs of the paper recipe in the reference loop (its final MSE is the target) and
    # the most epochs the recommended recipe gets to reach it (0: the phase is skipped)
    "quick": {"images": {256: 256, "demo": 512}, "rounds": 2, "variant_rounds": 2, "generation_reps": 3,
              "time_to_quality": (0, 0)},
    "full": {"images": {256: 768, "demo": 2000}, "rounds": 4, "variant_rounds": 3, "generation_reps": 10,
             "time_to_quality": (40, 40)},
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
    """Time a phase; record its wall seconds, RSS at its start, peak RSS and the machine's CPU steal
    under ``record[name]``. Memory the process still holds from earlier phases counts in the peak:
    compare with the start."""
    from .hardware import cpu_ticks, steal_fraction

    reset_peak_rss()
    start, ticks = rss_mb("VmRSS"), cpu_ticks()
    t0 = time.perf_counter()
    yield
    record[name] = {"seconds": round(time.perf_counter() - t0, 2), "rss_at_start_mb": round(start),
                    "peak_rss_mb": round(rss_mb()), "cpu_steal": steal_fraction(ticks, cpu_ticks())}


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
    product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)), autograph=False)
    product().numpy()
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        for _ in range(4):
            product().numpy()
        best = max(best, 4 * 2 * n ** 3 / (time.perf_counter() - t0))
    return best


# --- timing on a shared machine ----------------------------------------------------------

def interleave(contenders, rounds, warmup=1) -> dict:
    """Run each of ``contenders`` ({name: fn() -> (images, seconds)}) once per round, ``warmup`` +
    ``rounds`` rounds, the order rotated every round; return {name: [img/s of each measured round]}.

    The cores of a shared virtual machine do not run at one speed: CPU steal (time the hypervisor
    gives to other guests) was seen here to move between 1% and 30% within minutes, which moves a
    step's time by up to 2x. Timing one contender after another compares the machine's moods;
    interleaving puts every contender under the same drift, and the ratio within each round is what
    one run can compare (:func:`rate_ratio`). The first ``warmup`` rounds (tracing, cache fill) are
    not measured.
    """
    names = list(contenders)
    rates = {name: [] for name in names}
    for r in range(warmup + rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            images, seconds = contenders[name]()
            if r >= warmup:
                rates[name].append(images / seconds)
    return rates


def rate_ratio(a, b, confidence=0.95) -> dict:
    """Geometric-mean ratio of paired rates a / b (one pair per round) with the t-interval of the mean
    log ratio (Student's t, rounds - 1 degrees of freedom) mapped back to a ratio."""
    from .stats import paired_interval

    d = paired_interval(np.log(a), np.log(b), confidence)
    return {"ratio": round(float(np.exp(d["mean"])), 3), "rounds": d["n"],
            "interval": [round(float(np.exp(v)), 3) if np.isfinite(v) else None for v in d["interval"]]}


def steady_rate(epochs) -> float:
    """Images/s over [(images, seconds), ...] epochs after the first (tracing, cache fill, allocator warm-up)."""
    measured = epochs[1:] or epochs
    return sum(i for i, _ in measured) / sum(s for _, s in measured)


# --- the two training loops ----------------------------------------------------------------

def project_epochs(config, precision="float32", initial_weights=None):
    """The project's pipeline, one epoch per call: the cached, reshuffled, prefetched training split
    of :func:`make_datasets` into ``fit``, in ``precision``. Returns (fn() -> (images, seconds), model)."""
    import keras

    from .data import make_datasets, quiet_fit_warnings
    from .model import build_vae

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
    from .inference import reconstruct

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
    from .hardware import cpu_ticks, steal_fraction
    from .model import build_vae

    ticks = [cpu_ticks()]
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
    ticks.append(cpu_ticks())
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
    ticks.append(cpu_ticks())
    paper_s, ours_s = first_reach(paper_curve, target), first_reach(curve, target)
    result = {"target_mse": round(target, 6), "paper_epochs": paper_epochs,
              "paper_reference_seconds": round(paper_s, 1), "paper_curve": [[round(t, 1), round(m, 6)]
                                                                             for t, m in paper_curve],
              "recommended_precision": config.train.precision, "recommended_seconds": ours_s and round(ours_s, 1),
              "recommended_epochs": len(curve), "recommended_curve": [[round(t, 1), round(m, 6)] for t, m in curve],
              "speedup": round(paper_s / ours_s, 2) if ours_s else None,
              "cpu_steal": {"paper": steal_fraction(*ticks[:2]), "recommended": steal_fraction(*ticks[1:])}}
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

    from .inference import decode

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

STEP_VARIANTS = ("project", "reference_step", "keras_batch_norm", "xla", "mixed_bfloat16", "batch_64", "batch_128")
CHILD_VARIANTS = {"onednn_off": {"TF_ENABLE_ONEDNN_OPTS": "0"}, "one_inter_op_thread": {"TF_NUM_INTEROP_THREADS": "1"},
                  "one_thread": {"TF_NUM_INTEROP_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1"}}


def step_runner(config, variant="project", batch_size=32, images=256):
    """fn() -> (images, seconds) of the training step alone on a fixed random batch, about ``images``
    images per call, for one variant of the project's settings (:data:`STEP_VARIANTS`): the reference
    loop's step (:func:`reference_step`: what the loops differ by once decoding is taken away), Keras'
    BatchNormalization instead of the fused kernel, XLA, mixed_bfloat16, or a larger batch (batch_N:
    the per-image rate at batch N). Traced and warmed up before it returns."""
    import keras
    import tensorflow as tf

    from .model import build_vae

    if variant.startswith("batch_"):
        batch_size = int(variant.split("_")[1])
    config = config.replace(train={"precision": "mixed_bfloat16" if variant == "mixed_bfloat16" else "float32"})
    keras.utils.set_random_seed(0)
    if variant == "reference_step":
        step = reference_step(config)[0]
    else:
        vae = build_vae(config, compile=False, fused_batch_norm=variant != "keras_batch_norm")
        vae.compile(optimizer=keras.optimizers.Adam(config.train.learning_rate))
        train_step = tf.function(vae.train_step, jit_compile=variant == "xla")

        def step(x):
            return train_step(x)["loss"]

    x = tf.random.uniform((batch_size, config.data.image_size, config.data.image_size, 3), seed=0)
    for _ in range(2):  # tracing, then the allocator's first real step
        float(step(x))
    steps = max(1, images // batch_size)

    def run():
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = step(x)
        float(loss)
        return steps * batch_size, time.perf_counter() - t0

    return run


OP_GROUPS = (("convolution", ("Conv2D",)), ("batch norm", ("BatchNorm",)), ("activation", ("LeakyRelu", "Sigmoid")),
             ("bias", ("BiasAdd",)), ("dense", ("MatMul",)))


def op_profile(config, batch_size=32, steps=5, top=12) -> dict | None:
    """Where the training step's time goes: TensorFlow's profiler over ``steps`` steps of the project's
    step, its trace (XSpace) read back and each op's time summed by type and by group (:data:`OP_GROUPS`;
    "other" is mostly the optimizer's and the loss's small element-wise ops). Times are ms per step
    summed over TensorFlow's inter-op threads, so they can exceed the step's wall time when two ops
    run at once. None where this TensorFlow has no trace reader."""
    import glob

    import tensorflow as tf

    try:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError:
        return None
    run = step_runner(config, "project", batch_size, batch_size * steps)
    wall = run()[1]
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        try:
            run()
        finally:
            tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(Path(sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1]).read_bytes())
    by_op = {}
    for plane in space.planes:
        for line in plane.lines:
            if line.name.startswith("tf_Compute"):
                for event in line.events:
                    meta = plane.event_metadata[event.metadata_id]
                    name = meta.display_name or meta.name
                    if name != "ExecutorState::Process":
                        by_op[name] = by_op.get(name, 0.0) + event.duration_ps / 1e9 / steps
    groups = {}
    for name, ms in by_op.items():
        group = next((g for g, keys in OP_GROUPS if any(k in name for k in keys)), "other")
        groups[group] = round(groups.get(group, 0.0) + ms, 2)
    ops = sorted(by_op.items(), key=lambda kv: -kv[1])[:top]
    return {"image_size": config.data.image_size, "batch_size": batch_size, "step_ms": round(1000 * wall / steps, 1),
            "op_ms_per_step": round(sum(by_op.values()), 1),
            "groups_ms": dict(sorted(groups.items(), key=lambda kv: -kv[1])),
            "top_ops_ms": {k: round(v, 2) for k, v in ops}}


def in_child(function, env, log=None, **kwargs):
    """Run ``function(**kwargs)`` of this module in a fresh Python with extra environment variables and
    return its (JSON) result: TensorFlow reads oneDNN and thread settings once, at start-up, and a
    fresh process carries none of the state (models, thread pools, allocator) an earlier phase left.
    With ``log``, the child's progress lines are passed to it as they come (``function`` then takes
    ``log`` too)."""
    code = ("import functools, json, sys; from cartoon_vae import benchmark; a = json.loads(sys.argv[2]); "
            "a.update({'log': functools.partial(print, flush=True)} if sys.argv[3] == '1' else {}); "
            "print(json.dumps(getattr(benchmark, sys.argv[1])(**a)), flush=True)")
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-c", code, function, json.dumps(kwargs), "1" if log else "0"],
                                env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
        lines = []
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if log and not line.startswith("{"):
                log(lines[-1])
        if proc.wait():
            err.seek(0)
            raise RuntimeError(f"benchmark child {function} failed:\n{err.read()[-3000:]}")
    return json.loads(lines[-1])


def child_step(config_path, batch_size, images):
    """One call of the project's :func:`step_runner` in a fresh process, for :func:`in_child`."""
    return step_runner(load_config(config_path), "project", batch_size, images)()


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
            _subset(data_dir, plan["images"][256 if label == "256" else "demo"], tmp / f"subset-{label}")
            section = in_child("size_section", {}, log, config_path=str(Path(config_path).resolve()),
                               name=str(config_path),
                               data_dir=str(tmp / f"subset-{label}"), plan=plan, variants=variants,
                               roofline=roofline, roofline_auto=roofline_auto, generation=label == "256")
            phases.update(section.pop("phases"))
            results["training"].append(section["training"])
            results["input_pipeline"].append(section["input_pipeline"])
            results["step_variants"] += section["step_variants"]
            if section.get("generation"):
                results["generation"] = section["generation"]
            if section.get("op_profile"):
                results.setdefault("op_profiles", []).append(section["op_profile"])
        paper_epochs, max_epochs = plan["time_to_quality"]
        if paper_epochs:
            log(f"time to quality at 64x64 ({plan['images']['demo']} images): ...")
            with phase(phases, "time_to_quality"):
                results["time_to_quality"] = in_child(
                    "child_time_to_quality", {}, log, paper_config=str(Path(demo_config).resolve()),
                    recommended_config=str(Path(recommended_config).resolve()), data_dir=str(tmp / "subset-demo"),
                    paper_epochs=paper_epochs, max_epochs=max_epochs)
    return results


def size_section(config_path, name, data_dir, plan, variants, roofline, roofline_auto, generation, log=print) -> dict:
    """Everything the benchmark measures at one config's image size, run by :func:`run_benchmark` in
    a fresh process (:func:`in_child`) per size: the interleaved training loops, the reference loop
    with TensorFlow's defaults, the input pipeline, generation (``generation``), and with
    ``variants`` the step variants and the op profile. ``name``: the config as the user gave it."""
    from .data import list_images
    from .hardware import resolve_precision

    auto = resolve_precision("auto")
    config = load_config(config_path).replace(data={"dir": data_dir})
    size, batch = config.data.image_size, config.data.batch_size
    n = len(list_images(data_dir))
    out = {"phases": {}, "step_variants": []}
    phases = out["phases"]
    log(f"training at {size}x{size}, batch {batch}, {n} images: {plan['rounds']} rounds of one epoch "
        f"per loop, interleaved, after a warm-up round ...")
    with phase(phases, f"train_{size}"):
        project, vae = project_epochs(config)
        initial = vae.get_weights()
        loops = {"project": project, "reference": reference_epochs(config, initial)}
        if auto != "float32":
            loops["auto"] = project_epochs(config, auto, initial)[0]
        rates = interleave(loops, plan["rounds"])
    rates.setdefault("auto", rates["project"])
    with tempfile.TemporaryDirectory() as tmp:
        config_file, weights_file = _to_files(config, initial, Path(tmp))
        with phase(phases, f"train_reference_tf_defaults_{size}"):  # the child's own memory is not counted
            defaults = in_child("child_reference_training", {"TF_ENABLE_ONEDNN_OPTS": "0"},
                                config_path=config_file, epochs=2, weights_path=weights_file)
        row = _training_row(config, name, n, rates, defaults, training_flops_per_image(vae), auto,
                            roofline, roofline_auto)
        out["training"] = row
        log(f"  project {row['project_img_s']} img/s, reference {row['reference_img_s']} img/s: "
            f"{row['speedup']}x {row['speedup_interval']} (reference with TensorFlow's defaults, oneDNN off, "
            f"own process: {defaults:.1f} img/s); {row['project_gflop_s']} GFLOP/s = "
            f"{100 * row['fraction_of_matmul']:.0f}% of matmul")
        log(f"  {auto}: {row['auto_img_s']} img/s, {row['auto_vs_float32']}x float32 "
            f"{row['auto_vs_float32_interval']}, {row['auto_speedup']}x the reference loop")
        with phase(phases, f"input_pipeline_{size}"):
            pipeline = input_pipeline_rates(config)
        out["input_pipeline"] = {"image_size": size, "cold_img_s": round(pipeline["cold"], 1),
                                 "cached_img_s": round(pipeline["cached"], 1), "training_img_s": row["project_img_s"]}
        log(f"  input pipeline: cold {pipeline['cold']:.0f} img/s, cached {pipeline['cached']:.0f} img/s")
        if generation:
            with phase(phases, f"generation_{size}"):
                g = out["generation"] = {"image_size": size, **generation_rates(vae, batch, plan["generation_reps"])}
            log(f"  generation: 10 faces in {g['latency_10_ms']} ms, {g['batched_img_s']} img/s batched")
        if variants:
            with phase(phases, f"step_variants_{size}"):
                out["step_variants"] = _variants(config, config_file, plan["variant_rounds"], log)
            p = out["op_profile"] = op_profile(config)
            if p:
                log(f"  where the step's time goes (ms per step over threads, step {p['step_ms']} ms): "
                    + ", ".join(f"{g} {ms}" for g, ms in p["groups_ms"].items()))
    return out


def child_time_to_quality(paper_config, recommended_config, data_dir, paper_epochs, max_epochs, log=print):
    """:func:`time_to_quality` on ``data_dir``, for :func:`in_child`."""
    subset = {"dir": data_dir}
    return time_to_quality(load_config(paper_config).replace(data=subset),
                           load_config(recommended_config).replace(data=subset), paper_epochs, max_epochs, log)


def _median(values):
    return round(statistics.median(values), 2)


def _training_row(config, config_path, n, rates, defaults, flops, auto, roofline, roofline_auto) -> dict:
    """One size's training comparison from the interleaved rates: medians, paired ratios, FLOP/s."""
    project, reference, fast = (_median(rates[k]) for k in ("project", "reference", "auto"))
    speedup = rate_ratio(rates["project"], rates["reference"])
    auto_vs = rate_ratio(rates["auto"], rates["project"])
    auto_speedup = rate_ratio(rates["auto"], rates["reference"])
    return {"image_size": config.data.image_size, "batch_size": config.data.batch_size, "images": n,
            "config": str(config_path), "rounds": speedup["rounds"],
            "project_img_s": project, "reference_img_s": reference,
            "speedup": speedup["ratio"], "speedup_interval": speedup["interval"],
            "auto_precision": auto, "auto_img_s": fast, "auto_vs_float32": auto_vs["ratio"],
            "auto_vs_float32_interval": auto_vs["interval"], "auto_speedup": auto_speedup["ratio"],
            "auto_speedup_interval": auto_speedup["interval"],
            "auto_fraction_of_roofline": round(fast * flops / roofline_auto, 3),
            "reference_tf_defaults_img_s": round(defaults, 2), "speedup_vs_tf_defaults": round(project / defaults, 2),
            "gflop_per_image": round(flops / 1e9, 3), "project_gflop_s": round(project * flops / 1e9, 1),
            "fraction_of_matmul": round(project * flops / roofline, 3),
            "reference_fraction_of_matmul": round(reference * flops / roofline, 3),
            "rates": {k: [round(v, 2) for v in r] for k, r in rates.items()}}


def _variants(config, config_path, rounds, log, batch_size=32):
    """The training step under each of :data:`STEP_VARIANTS` and :data:`CHILD_VARIANTS` (the latter in
    fresh processes), interleaved, against the project's step."""
    size = config.data.image_size
    images = 128 if size > 128 else 1024
    runners = {v: step_runner(config, v, batch_size, images) for v in STEP_VARIANTS}
    for name, env in CHILD_VARIANTS.items():
        runners[name] = lambda env=env: in_child("child_step", env, config_path=config_path,
                                                 batch_size=batch_size, images=images)
    rates = interleave(runners, rounds, warmup=0)
    rows = []
    for name, r in rates.items():
        ratio = rate_ratio(r, rates["project"])
        rows.append({"image_size": size, "variant": name, "img_s": _median(r), "relative": ratio["ratio"],
                     "interval": ratio["interval"], "rounds": ratio["rounds"]})
        log(f"  step variant {name}: {rows[-1]['img_s']} img/s ({ratio['ratio']}x the project's step, "
            f"{ratio['interval']})")
    return rows


def _interval(i):
    return f"[{i[0]}, {i[1]}]" if i and None not in i else "n/a"


def format_table(results) -> str:
    """The benchmark as Markdown tables (the README's performance section)."""
    lines = ["| image size | batch | reference loop img/s | project img/s | speedup [95% CI] | reference, oneDNN off, "
             "own process, img/s | project GFLOP/s | % of matmul |", "|---|---|---|---|---|---|---|---|"]
    for r in results["training"]:
        lines.append(f"| {r['image_size']} | {r['batch_size']} | {r['reference_img_s']} | {r['project_img_s']} | "
                     f"**{r['speedup']}x** {_interval(r['speedup_interval'])} | {r['reference_tf_defaults_img_s']} | "
                     f"{r['project_gflop_s']} | {100 * r['fraction_of_matmul']:.0f}% |")
    m = results["machine"]
    steal = [p["cpu_steal"] for p in results["phases"].values() if p.get("cpu_steal") is not None]
    lines += ["", f"Machine: {m['cpu']}, {m['cores']} cores; flags " + ", ".join(
        f"{f} {'yes' if on else 'no'}" for f, on in m.get("cpu_flags", {}).items())
        + f"; `train.precision: auto` picks **{m.get('auto_precision', 'float32')}**. Dense float32 matmul: "
        f"{results['matmul_gflop_s']} GFLOP/s" + (f"; bfloat16: {results['matmul_bf16_gflop_s']} GFLOP/s"
                                                  if "matmul_bf16_gflop_s" in results else "")
        + (f". CPU steal by the hypervisor, per phase: {100 * min(steal):.0f}% to {100 * max(steal):.0f}%"
           if steal else "") + ". Rates are medians over interleaved rounds; ratios are geometric means of "
        "the per-round ratios with Student-t intervals.", ""]
    if any(r.get("auto_precision", "float32") != "float32" for r in results["training"]):
        lines += ["| image size | float32 img/s | auto img/s | auto vs float32 [95% CI] | auto vs reference loop | "
                  "% of the auto roofline |", "|---|---|---|---|---|---|"]
        for r in results["training"]:
            lines.append(f"| {r['image_size']} | {r['project_img_s']} | {r['auto_img_s']} ({r['auto_precision']}) | "
                         f"**{r['auto_vs_float32']}x** {_interval(r['auto_vs_float32_interval'])} | "
                         f"**{r['auto_speedup']}x** {_interval(r['auto_speedup_interval'])} | "
                         f"{100 * r['auto_fraction_of_roofline']:.0f}% |")
        lines.append("")
    t = results.get("time_to_quality")
    if t:
        lines += [f"Time to quality at 64x64: the paper recipe in the reference loop ends {t['paper_epochs']} epochs at "
                  f"held-out MSE {t['target_mse']}, a value its curve first reached after {t['paper_reference_seconds']} "
                  f"s of training; the recommended recipe in the project's pipeline ({t['recommended_precision']}) "
                  f"reaches it after {t['recommended_epochs']} epochs, {t['recommended_seconds']} s: "
                  f"**{t['speedup']}x**.", ""]
    lines += ["| image size | input pipeline, cold img/s | cached img/s | training consumes img/s |",
              "|---|---|---|---|"]
    for r in results["input_pipeline"]:
        lines.append(f"| {r['image_size']} | {r['cold_img_s']} | {r['cached_img_s']} | {r['training_img_s']} |")
    g = results.get("generation")
    if g:
        lines += ["", f"Generation at {g['image_size']}x{g['image_size']} from a reloaded model: 10 faces in "
                      f"{g['latency_10_ms']} ms; {g['batched_img_s']} faces/s in batches of {g['batch_size']} "
                      f"(model load {g['load_seconds']} s)."]
    if results["step_variants"]:
        lines += ["", "| image size | training step variant (batch 32) | img/s | vs the project's step [95% CI] |",
                  "|---|---|---|---|"]
        for r in results["step_variants"]:
            lines.append(f"| {r['image_size']} | {r['variant']} | {r['img_s']} | {r['relative']}x "
                         f"{_interval(r.get('interval'))} |")
    for p in results.get("op_profiles", []):
        total = p["op_ms_per_step"]
        lines += ["", f"Where the {p['image_size']}x{p['image_size']} step's time goes (TensorFlow's profiler, batch "
                      f"{p['batch_size']}: {p['step_ms']} ms per step; {total} ms of op time summed over threads): "
                  + ", ".join(f"{g} {100 * ms / total:.0f}%" for g, ms in p["groups_ms"].items()) + "."]
    lines += ["", "| phase | seconds | RSS at start MiB | peak RSS MiB | CPU steal |", "|---|---|---|---|---|"]
    for name, p in results["phases"].items():
        steal = p.get("cpu_steal")
        lines.append(f"| {name} | {p['seconds']} | {p['rss_at_start_mb']} | {p['peak_rss_mb']} | "
                     f"{'n/a' if steal is None else f'{100 * steal:.0f}%'} |")
    return "\n".join(lines)
