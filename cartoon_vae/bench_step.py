"""The input pipeline alone, generation from a reloaded model, and the training step alone: under the
settings the project chose or rejected (:data:`STEP_VARIANTS`, :data:`CHILD_VARIANTS`), and profiled
op by op (:func:`op_profile`).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from .bench_loops import reference_step

def input_pipeline_rates(config):
    """Images/s of the training input alone: cold (decode, composite, resize) and from the memory cache."""
    from .batches import normalised
    from .data import load_splits

    rates = {}
    for name, cache in (("cold", "none"), ("cached", "memory")):
        s = load_splits(config.replace(data={"cache": cache}).data, verbose=False)
        batches = normalised(s.train.batch(config.data.batch_size), False)
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
    decode(loaded, z[:batch_size], batch_size=batch_size)
    t0 = time.perf_counter()
    decode(loaded, z, batch_size=batch_size)
    return {"load_seconds": round(load_s, 2), "latency_10_ms": round(1000 * statistics.median(latencies), 1),
            "batched_img_s": round(len(z) / (time.perf_counter() - t0), 1), "batch_size": batch_size}


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

    from .build import build_vae

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
        groups[group] = groups.get(group, 0.0) + ms   # summed unrounded: many tiny ops would add up rounding errors
    ops = sorted(by_op.items(), key=lambda kv: -kv[1])[:top]
    return {"image_size": config.data.image_size, "batch_size": batch_size, "step_ms": round(1000 * wall / steps, 1),
            "op_ms_per_step": round(sum(by_op.values()), 2),
            "groups_ms": {g: round(ms, 2) for g, ms in sorted(groups.items(), key=lambda kv: -kv[1])},
            "top_ops_ms": {k: round(v, 2) for k, v in ops}}


def kl_step_timing(config, rounds, batch_size=32, images=256, margin=0.10) -> dict:
    """Claim (a), "the bound (eq. 5) makes training much faster", timed so that a shared machine cannot
    decide it: the same model (the bounded variance head) on the same batch, its train step on eq. 5 and
    on eq. 4 interleaved round by round (:func:`cartoon_vae.bench_measure.interleave`), the paired rate
    ratio with its t-interval, and the verdict on the change in time per image: *supported* when the whole
    interval lies below -``margin`` ("much" = more than 10% less time, the ablation's margin), *not
    supported* when the whole interval lies above -``margin`` (less than a 10% gain, or a loss),
    *inconclusive* otherwise (:func:`cartoon_vae.stats.verdict` on the interval shifted by the margin)."""
    from .bench_measure import interleave, rate_ratio

    head = {"bounded_variance": True}
    runners = {"eq5": step_runner(config.replace(loss={"kl": "poly_bound"}, model=head), "project", batch_size, images),
               "eq4": step_runner(config.replace(loss={"kl": "exact"}, model=head), "project", batch_size, images)}
    rates = interleave(runners, rounds)
    ratio = rate_ratio(rates["eq5"], rates["eq4"])
    lo, hi = ratio["interval"]
    change = [1.0 / hi - 1.0, 1.0 / lo - 1.0] if lo and hi else [float("nan")] * 2
    return {"image_size": config.data.image_size, "batch_size": batch_size, "rounds": rounds,
            "eq5_img_s": round(statistics.median(rates["eq5"]), 1), "eq4_img_s": round(statistics.median(rates["eq4"]), 1),
            "rate_ratio_eq5_over_eq4": ratio, "time_change": [round(v, 4) for v in change], "margin": margin,
            "verdict": much_faster(change, margin) if lo and hi else "inconclusive"}


def much_faster(change, margin=0.10) -> str:
    """The verdict on "much faster" from an interval of the relative change in time: *supported* when it lies
    wholly below -``margin``, *not supported* when wholly above it, *inconclusive* when it straddles it."""
    from .stats import verdict

    return verdict([c + margin for c in change], "negative")
