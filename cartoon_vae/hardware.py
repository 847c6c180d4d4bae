"""What the machine computes natively, and the precision ``train.precision: auto`` picks from it.

bfloat16 halves the bytes of every activation and, on CPUs with AVX512_BF16 or AMX (or on GPUs
with bfloat16 tensor cores), runs matrix products natively; elsewhere TensorFlow emulates it and a
step gets several times slower, so ``auto`` takes mixed_bfloat16 only where it is native.

Example:
    >>> resolve_precision("auto")      # "mixed_bfloat16" on a Zen 4 / Sapphire Rapids CPU, else "float32"
"""

from __future__ import annotations

import platform

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")  # the ones that matter here


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def cpu_flags() -> dict:
    """{flag: present} for :data:`FLAGS`, read from /proc/cpuinfo (all False where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as fh:
            words = set(next(line for line in fh if line.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        words = set()
    return {f: f in words for f in FLAGS}


def _gpu_bf16() -> bool:
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        cc = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
        if tuple(cc) >= (8, 0):  # Ampere and later
            return True
    return False


def native_bf16() -> bool:
    flags = cpu_flags()
    return flags["avx512_bf16"] or flags["amx_bf16"] or _gpu_bf16()


def resolve_precision(name: str) -> str:
    """A concrete Keras dtype policy name for ``train.precision`` (``auto`` decided by the hardware)."""
    if name != "auto":
        return name
    return "mixed_bfloat16" if native_bf16() else "float32"


def cpu_ticks():
    """(all, steal) CPU ticks since boot from /proc/stat, or None where it cannot be read. On a shared
    virtual machine "steal" is time the hypervisor gave this machine's cores to someone else."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(fields[:8]), fields[7] if len(fields) > 7 else 0


def steal_fraction(start, end):
    """Fraction of CPU time stolen between two :func:`cpu_ticks` readings (None where unknown)."""
    if start is None or end is None or end[0] <= start[0]:
        return None
    return round((end[1] - start[1]) / (end[0] - start[0]), 3)
