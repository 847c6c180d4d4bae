"""Measuring on a shared machine: memory per phase, FLOPs and the matmul roofline, interleaved timing
with paired ratio intervals, and running a measurement in a fresh process.

The cores of a shared virtual machine do not run at one speed (CPU steal moved a step's time by up to
2x within minutes here), so contenders run interleaved, one epoch each in turn (:func:`interleave`),
and are compared by per-round ratios (:func:`rate_ratio`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# data.cache of every measured config: each phase decodes into its own memory, so that none reads a file
# cache an earlier phase wrote (the demo configs cache to files, which would flatter a first epoch)
MEMORY = "memory"


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


def in_child(function, env, log=None, **kwargs):
    """Run the entry point ``function`` of :data:`cartoon_vae.bench_children.CHILDREN` with ``kwargs`` in a fresh Python with extra environment variables and
    return its (JSON) result: TensorFlow reads oneDNN and thread settings once, at start-up, and a
    fresh process carries none of the state (models, thread pools, allocator) an earlier phase left.
    With ``log``, the child's progress lines are passed to it as they come (``function`` then takes
    ``log`` too)."""
    code = ("import functools, json, sys; from cartoon_vae.bench_children import CHILDREN; a = json.loads(sys.argv[2]); "
            "a.update({'log': functools.partial(print, flush=True)} if sys.argv[3] == '1' else {}); "
            "print(json.dumps(CHILDREN[sys.argv[1]](**a)), flush=True)")
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
