"""cartoon-vae: the JIIBC 2023 cartoon-face VAE in Keras 3, with data, figures, sampling and measurements.

Example:
    >>> import cartoon_vae
    >>> cfg = cartoon_vae.load_config("configs/paper.yaml")
    >>> vae = cartoon_vae.build_vae(cfg)

TensorFlow is imported only when a name that needs it is first used, so the data
generator and the command line start fast.
"""

import importlib
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512 VNNI/BF16 or AMX;
# on the others (the AVX2 AMD EPYC this project is benchmarked on) training runs about 1.6x
# faster with them (`cartoon-vae benchmark`, "oneDNN off" row). Must be set before TensorFlow
# is imported; TF_ENABLE_ONEDNN_OPTS=0 in the environment still turns them off.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"

_LAZY = {
    "Config": "config", "ConfigError": "config", "load_config": "config",
    "CartoonVAE": "model", "Sampling": "model", "BoundedLogVariance": "model", "build_vae": "build", "ConditionalVAE": "conditional",
}
__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'cartoon_vae' has no attribute {name!r}")
