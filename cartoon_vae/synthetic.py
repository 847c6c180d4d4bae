"""An embedded generator of Cartoon Set-format faces, drawn with Pillow.

No machine this project is built on can download Google's Cartoon Set, so the
project ships this generator: each face is a 500x500 RGBA PNG with a transparent
background and a CSV beside it with Cartoon Set's 18 attribute lines
(``"name", variant_index, n_variants``), in the real set's order. Faces are drawn
at twice the size and downsampled, which gives anti-aliased dark outlines like the
real set's.

Variant counts are smaller than the real set's where drawing 111 hair styles would
be pointless; :data:`ATTRIBUTES` lists ours, and the real counts are in
``REAL_VARIANTS``. As in the real set, the last variant of ``facial_hair`` and
``glasses`` means "none". Every attribute visibly changes the image.

The attribute table is in :mod:`cartoon_vae.synthetic_attributes` and the drawing in
:mod:`cartoon_vae.synthetic_drawing`; this module writes the data set, and its names
stay importable from here.

Example:
    >>> from cartoon_vae.synthetic import make_dataset
    >>> make_dataset("data/synthetic", n=2000, seed=0)
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from .synthetic_attributes import (ATTRIBUTES, GLASSES, GLASSES_STYLES, HAIR, IRIS, REAL_VARIANTS, SKIN, VALUE_NAMES,
                                   csv_text, sample_attributes)
from .synthetic_drawing import SIZE, SS, render

__all__ = ["ATTRIBUTES", "GENERATOR_VERSION", "GLASSES", "GLASSES_STYLES", "HAIR", "IRIS", "MANIFEST", "REAL_VARIANTS",
           "SIZE", "SKIN", "SS", "VALUE_NAMES", "csv_text", "face_name", "make_dataset", "render", "sample_attributes"]

GENERATOR_VERSION = 2  # 2: bold glasses frames, tinted lenses, dark sunglasses


def face_name(index: int) -> str:
    return f"cs{index:06d}"


def _write_one(args):
    out, seed, index = args
    a = sample_attributes(np.random.default_rng([seed, index]))
    name = face_name(index)
    tmp = Path(out) / f".{name}.png.tmp"
    render(a).save(tmp, format="PNG", compress_level=1)
    os.replace(tmp, Path(out) / f"{name}.png")
    (Path(out) / f"{name}.csv").write_text(csv_text(a))
    return index


MANIFEST = "synthetic.json"


def make_dataset(out, n: int, seed: int = 0, workers: int | None = None, progress: bool = True) -> Path:
    """Write ``n`` faces (PNG + CSV) to ``out``. Same seed, same bytes.

    The folder gets a ``synthetic.json`` manifest. Asking again for the same set is a
    no-op that finishes what an interrupted run left; a folder holding anything else
    is refused, never overwritten.

    Raises:
        FileExistsError: ``out`` holds a different set or files of its own.
    """
    out = Path(out)
    manifest = {"generator_version": GENERATOR_VERSION, "n": int(n), "seed": int(seed)}
    if out.exists() and any(out.iterdir()):
        try:
            existing = json.loads((out / MANIFEST).read_text())
        except (OSError, ValueError):
            raise FileExistsError(f"{out}: folder is not empty and is not a generated set; choose another --out")
        if existing != manifest:
            raise FileExistsError(f"{out}: holds a generated set with {existing}, not {manifest}; "
                                  f"choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    todo = [i for i in range(n) if not ((out / f"{face_name(i)}.png").exists()
                                        and (out / f"{face_name(i)}.csv").exists())]
    if not todo:
        return out
    jobs = [(str(out), seed, i) for i in todo]
    workers = workers or min(len(todo) // 64 + 1, os.cpu_count() or 1)
    from tqdm import tqdm
    bar = tqdm(total=len(jobs), desc=f"drawing faces -> {out}", unit="face", disable=not progress)
    if workers <= 1:
        for job in jobs:
            _write_one(job)
            bar.update()
    else:
        with ProcessPoolExecutor(workers) as pool:
            for _ in pool.map(_write_one, jobs, chunksize=16):
                bar.update()
    bar.close()
    return out


def has_renderer(data_dir) -> bool:
    """Whether ``data_dir`` is a set drawn by the embedded generator (it has the generator's manifest)."""
    return (Path(data_dir) / MANIFEST).is_file()


def true_edits(names, attribute_rows, attribute, to, data_cfg) -> np.ndarray:
    """(n, S, S, 3): each face of ``attribute_rows`` (its values in the order ``names``) with ``attribute`` set to
    ``to``, drawn as the data set would hold it (:func:`true_counterfactual`)."""
    return np.stack([true_counterfactual({**dict(zip(names, (int(v) for v in row))), attribute: int(to)}, data_cfg)
                     for row in attribute_rows])


def true_counterfactual(attributes: dict, data_cfg) -> np.ndarray:
    """The face with these attributes, as the data set holds it: (S, S, 3) float32 in [0, 1]."""
    import tensorflow as tf

    from .data import preprocess

    rgba = tf.constant(np.asarray(render(attributes), np.uint8))
    return np.asarray(preprocess(rgba, data_cfg), np.float32) / 255.0
