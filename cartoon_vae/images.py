"""Reading one image file, the one way every part of the project reads images: PIL.

The scan that decides which files a data set may use (:func:`find_unreadable`) and the decode that
training, ``check-data`` and the download check run (:func:`read_rgba`) share this reader, so a file
the scan accepts is never dropped later and one it refuses is never trained on. An image over
PIL's decompression-bomb limit is refused from its header, before any pixel is decoded.
"""

from __future__ import annotations

import os

import numpy as np

MAX_IMAGE_PIXELS = 89_478_485  # PIL's decompression-bomb warning limit; an image over it is refused, not decoded


def _open(path, max_pixels=None):
    """PIL's image of ``path``, refusing one over ``max_pixels`` (default :data:`MAX_IMAGE_PIXELS`) before it is
    decoded."""
    from PIL import Image

    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    im = Image.open(path)
    if im.width * im.height > limit:
        im.close()
        kind = "the decompression-bomb limit" if limit == MAX_IMAGE_PIXELS else "the limit"
        raise ValueError(f"{im.width}x{im.height} pixels, over {kind} of {limit:,}")
    return im


def why_unreadable(e: Exception) -> str:
    """Why a file did not open or decode, in a few words."""
    from PIL import Image

    if isinstance(e, PermissionError):
        return "permission denied"
    if isinstance(e, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return f"over the decompression-bomb limit of {MAX_IMAGE_PIXELS:,} pixels"
    return f"not a readable image ({type(e).__name__}{': ' + str(e) if isinstance(e, ValueError) else ''})"


def find_unreadable(paths, decode=False) -> dict[str, str]:
    """``{path: reason}`` for files that are empty, not images, too large, or fail PIL's checksum scan;
    with ``decode``, also those that fail the full decode training does (:func:`read_rgba`), such as a
    truncated JPEG, whose header scan passes."""
    import warnings

    from PIL import Image

    bad = {}
    for p in paths:
        try:
            if os.path.getsize(p) == 0:
                bad[p] = "empty file"
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with _open(p) as im:
                    im.verify()
                if decode:
                    read_rgba(p)
        except Exception as e:  # PIL raises many types for broken files
            bad[p] = why_unreadable(e)
    return bad


def read_rgba(path, max_pixels=None) -> np.ndarray:
    """The image at ``path`` as (H, W, 4) uint8 RGBA, through PIL: the first frame of an animation,
    CMYK and palette images converted, 16-bit greys scaled to 8 bits, no alpha read as opaque. An image of more
    than ``max_pixels`` (default :data:`MAX_IMAGE_PIXELS`) is refused before it is decoded."""
    from PIL import Image

    with _open(path, max_pixels) as im:
        im.seek(0)
        if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
            grey = np.asarray(im, np.float64)
            im = Image.fromarray(np.clip(np.round(grey / 257.0), 0, 255).astype(np.uint8), "L")
        return np.asarray(im.convert("RGBA"), np.uint8)
