"""cartoon-vae: the JIIBC 2023 cartoon-face VAE in Keras 3, with data, figures, sampling and measurements.

Example:
    >>> import cartoon_vae
    >>> cfg = cartoon_vae.load_config("configs/paper.yaml")
    >>> vae = cartoon_vae.build_vae(cfg)
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .config import Config, ConfigError, load_config  # noqa: E402
from .model import BoundedLogVariance, CartoonVAE, Sampling, build_vae  # noqa: E402

__all__ = ["Config", "ConfigError", "load_config", "CartoonVAE", "Sampling", "BoundedLogVariance", "build_vae"]
__version__ = "0.1.0"
