"""Images and attributes: Cartoon Set (10k flat, 100k in folders 0/..9/) or any folder of images.

The split and order are the paper's loader's, ``keras.utils.image_dataset_from_directory``
(the file list shuffled once with ``data.seed``, the last ``val_fraction`` held out, the
training split shuffled again in a 1024-image buffer; ``tests/test_data.py`` checks that
both give the same files in the same order), with three changes that correctness needs:

* One reader, PIL, both for the scan that decides which files are usable and for the
  decode that training sees, so nothing the scan accepted is dropped later and nothing it
  refused is trained on. It reads every format the README promises (PNG, JPEG including
  CMYK, the first frame of a GIF, WebP, BMP, TIFF), over the decompression-bomb limit
  refused. TensorFlow's own decoder rejects CMYK JPEGs, WebP and TIFF.
* Cartoon Set PNGs are RGBA with a transparent background, and the RGB under a
  transparent pixel is arbitrary. Images are read as RGBA at ``data.load_size``
  (500, Cartoon Set's own size, so that read is not a resize), composited onto
  ``data.background``, and only then resized to ``data.image_size``. Resizing
  first would smear the hidden RGB into the outlines; dropping alpha would show it.
* Each image carries its index in the sorted file list as its integer label, so
  attributes stay aligned with images through shuffling and skipped files.

Unreadable files (empty, not an image, truncated, too large) are found before training by a
header and checksum scan (PIL ``verify``), logged with their count and names, and skipped;
a file that passes the scan and still fails to decode is named in a warning and skipped.
A folder with no readable image is an error.

Decoded, composited, resized images are cached as uint8 (in memory, or in a file
cache for sets too big for memory: :mod:`cartoon_vae.cache`), so only the first epoch decodes images; the
paper's ``Rescaling(1/255)`` is applied after the cache.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cache import cached
from .config import read_regular_file
from .images import find_unreadable, read_rgba, why_unreadable

log = logging.getLogger("cartoon_vae")

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")  # what the reader decodes
MAX_VARIANTS = 10_000          # variants of one attribute in a CSV (Cartoon Set's most: 111)
MAX_CSV_BYTES = 1 << 20        # an attribute CSV is under a kilobyte
SHUFFLE_BUFFER = 1024          # image_dataset_from_directory's buffer for the training split (batch_size=None)


class DataError(ValueError):
    """Bad input data. The message is one line naming the path."""


def list_images(folder) -> list[str]:
    """Image files under ``folder``, recursively, in image_dataset_from_directory's (alphanumeric) order.
    For a folder written by :func:`prepare`: the source images it was made from, in the same order."""
    folder = Path(folder)
    manifest = prepared_manifest(folder)
    if manifest is not None:
        return list(manifest["paths"])
    if not folder.exists():
        raise DataError(f"{folder}: data folder not found")
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise DataError(f"{folder}: data folder is not readable (permission denied)")
    paths = []
    for root, dirs, files in sorted(os.walk(folder), key=lambda item: item[0]):
        paths += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)]
    if not paths:
        raise DataError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)}) found")
    return paths


@dataclass(frozen=True)
class Attributes:
    """Attribute labels aligned with :func:`list_images` order.

    Attributes:
        names: attribute names, in the CSV's line order.
        n_variants: (A,) number of variants of each attribute.
        values: (N, A) int32 variant index per image; -1 where an image has no CSV.
        paths: the N image paths.
    """

    names: tuple[str, ...]
    n_variants: np.ndarray
    values: np.ndarray
    paths: tuple[str, ...]

    @property
    def labelled(self) -> np.ndarray:
        """(N,) bool: which images have a CSV."""
        return self.values[:, 0] >= 0 if self.values.size else np.zeros(len(self.paths), bool)

    def column(self, name: str) -> np.ndarray:
        if name not in self.names:
            raise DataError(f"unknown attribute {name!r}; this data has: {', '.join(self.names)}")
        return self.values[:, self.names.index(name)]


def parse_attribute_csv(path) -> list[tuple[str, int, int]]:
    """Lines of ``"name", variant_index, n_variants``. A malformed line raises DataError with file:line."""
    rows = []
    try:
        data = read_regular_file(path, MAX_CSV_BYTES)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    if data is None:
        raise DataError(f"{path}: not a regular file; an attribute CSV is a text file")
    if len(data) > MAX_CSV_BYTES:
        raise DataError(f"{path}: attribute CSV of over {MAX_CSV_BYTES:,} bytes, the most that is read")
    lines = data.split(b"\n")
    for lineno, raw in enumerate(lines, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{path}:{lineno}: not UTF-8 text") from None
        if not line.strip():
            continue
        parts = [p.strip() for p in line.strip().split(",")]
        try:
            name, index, count = parts
            if not (len(name) >= 2 and name[0] == name[-1] == '"'):
                raise ValueError
            name, index, count = name[1:-1], int(index), int(count)
            if not (0 <= index < count <= MAX_VARIANTS):
                raise ValueError
        except ValueError:
            raise DataError(f"{path}:{lineno}: expected '\"name\", variant_index, n_variants' with "
                            f"0 <= variant_index < n_variants <= {MAX_VARIANTS:,}, got {line.strip()[:200]!r}") from None
        rows.append((name, index, count))
    return rows


def read_attributes(folder, paths=None) -> Attributes:
    """Read the ``csX.csv`` beside each image into an :class:`Attributes` table.

    Images without a CSV get -1. Every CSV must list the same attributes as the first.
    """
    paths = list_images(folder) if paths is None else list(paths)
    names, counts, values = None, None, []
    for p in paths:
        csv = os.path.splitext(p)[0] + ".csv"
        if not os.path.exists(csv):
            values.append(None)
            continue
        rows = parse_attribute_csv(csv)
        if names is None:
            names, counts, first = tuple(r[0] for r in rows), np.array([r[2] for r in rows], np.int32), csv
        elif tuple(r[0] for r in rows) != names:
            raise DataError(f"{csv}: attributes {[r[0] for r in rows]} differ from the first CSV's {list(names)}")
        elif [r[2] for r in rows] != counts.tolist():
            k = next(k for k, r in enumerate(rows) if r[2] != counts[k])
            raise DataError(f"{csv}: {names[k]} has {rows[k][2]} variants, the first CSV ({first}) says {counts[k]}")
        values.append([r[1] for r in rows])
    names = names or ()
    table = np.full((len(paths), len(names)), -1, np.int32)
    for i, v in enumerate(values):
        if v is not None:
            table[i] = v
    return Attributes(names, counts if counts is not None else np.zeros(0, np.int32), table, tuple(paths))


def _composite_and_resize(rgba, image_size, background, crop=1.0):
    """RGBA (float 0..255, straight alpha) -> central crop -> RGB over ``background`` -> resized -> uint8.
    (Cropping first composites only the pixels kept: the same values, less work.)"""
    import tensorflow as tf

    if crop < 1.0:
        rgba = tf.image.central_crop(rgba, crop)
    alpha = rgba[..., 3:] / 255.0
    rgb = rgba[..., :3] * alpha + tf.constant(background, tf.float32) * (1.0 - alpha)
    rgb = tf.image.resize(rgb, (image_size, image_size), method="area")
    return tf.cast(tf.clip_by_value(tf.round(rgb), 0, 255), tf.uint8)


@dataclass
class Splits:
    """Unbatched ``(uint8 image, index)`` datasets and their sizes (readable files only)."""

    train: object
    val: object
    paths: list
    n_train: int
    n_val: int


def split_indices(n, val_fraction, seed) -> tuple[list[int], list[int]]:
    """image_dataset_from_directory's split of ``n`` files: the list shuffled once with ``seed``
    (NumPy's RandomState), the last ``int(val_fraction * n)`` held out."""
    order = list(range(n))
    np.random.RandomState(seed).shuffle(order)
    n_val = int(val_fraction * n)
    return order[:n - n_val], order[n - n_val:]


def _crop_resize(rgba, size):
    """image_dataset_from_directory's ``crop_to_aspect_ratio`` read at ``size``: the central square, area-resized."""
    import tensorflow as tf

    h, w = tf.shape(rgba)[0], tf.shape(rgba)[1]
    side = tf.minimum(h, w)
    square = tf.cast(rgba[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side], tf.float32)
    out = tf.cond(tf.logical_and(h == size, w == size), lambda: square,  # already square at size: area resize is
                  lambda: tf.image.resize(square, (size, size), method="area"))  # the identity, and costs a third
    out.set_shape((size, size, 4))  # static, as the loader's: central_crop's offsets are computed from it
    return out


def preprocess(rgba, cfg):
    """One decoded (H, W, 4) uint8 RGBA image as training sees it: read at ``data.load_size`` (central
    square), central crop, composited onto ``data.background``, resized to ``data.image_size``: uint8 RGB.
    (``cfg`` is the ``data`` section.) The embedded generator's counterfactual faces go through it too."""
    return _composite_and_resize(_crop_resize(rgba, cfg.load_size), cfg.image_size, cfg.background, cfg.crop)


def _unreadable(cfg, paths, verbose):
    """{path: why} of the files the scan refuses (named in a warning); a DataError when no file is readable."""
    bad = find_unreadable(paths)
    if len(bad) == len(paths):
        raise DataError(f"{cfg.dir}: none of the {len(paths)} image files is readable "
                        f"(first: {paths[0]}: {bad[paths[0]]})")
    if bad and verbose:
        shown = "; ".join(f"{p}: {why}" for p, why in list(bad.items())[:5])
        log.warning("skipping %d unreadable image file(s) in %s: %s%s", len(bad), cfg.dir, shown,
                    " ..." if len(bad) > 5 else "")
    return bad


def load_splits(cfg, verbose=True) -> Splits:
    """The train and validation splits of ``cfg.dir`` (``cfg`` is the ``data`` section).

    The split is image_dataset_from_directory's (:func:`split_indices`); files the scan refuses
    are left out of it, each named in a warning. A folder written by :func:`prepare` is streamed
    from its shards (``cache`` does not apply: nothing is held in memory).
    """
    import tensorflow as tf

    manifest = prepared_manifest(cfg.dir)
    if manifest is not None:
        return _prepared_splits(cfg, manifest)
    paths = list_images(cfg.dir)
    bad = _unreadable(cfg, paths, verbose)
    train_idx, val_idx = split_indices(len(paths), cfg.val_fraction, cfg.seed)
    usable = np.array([p not in bad for p in paths])
    n_train, n_val = int(usable[train_idx].sum()), int(usable[val_idx].sum())
    if not n_train or not n_val:
        raise DataError(f"{cfg.dir}: {len(paths) - len(bad)} readable image(s) leave "
                        f"{'no training' if not n_train else 'no validation'} image with data.val_fraction="
                        f"{cfg.val_fraction}; add images or change data.val_fraction")

    def decode(index):
        path = paths[int(index)]
        try:
            return read_rgba(path)
        except Exception as e:  # the scan passed it, the full decode did not (a truncated JPEG, say)
            log.warning("skipping %s: %s", path, why_unreadable(e))
            return np.zeros((0, 0, 4), np.uint8)

    def read(index):
        rgba = tf.numpy_function(decode, [index], tf.uint8, stateful=False)
        rgba.set_shape((None, None, 4))
        return rgba, index

    def prepared(rgba, index):
        return preprocess(rgba, cfg), index

    def split(indices, name, shuffle):
        ds = tf.data.Dataset.from_tensor_slices(np.array(indices, np.int32))
        if shuffle:  # as image_dataset_from_directory shuffles its training split
            ds = ds.shuffle(SHUFFLE_BUFFER, seed=cfg.seed)
        ds = ds.filter(lambda i: tf.gather(tf.constant(usable), i))
        ds = ds.map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.filter(lambda rgba, i: tf.shape(rgba)[0] > 0)
        ds = ds.map(prepared, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return cached(ds, cfg, name, [paths[i] for i in indices if usable[i]])

    return Splits(split(train_idx, "train", True), split(val_idx, "val", False), paths, n_train, n_val)


PREPARED = "prepared.json"
_RECIPE = ("image_size", "load_size", "crop", "background", "seed", "val_fraction")  # what a prepared set fixes


def _recipe(cfg) -> dict:
    """The ``data`` keys a prepared set fixes, as they are stored in its manifest (JSON lists, not tuples)."""
    return {k: list(v) if isinstance(v, tuple) else v for k in _RECIPE for v in [getattr(cfg, k)]}


def prepared_manifest(folder):
    """The manifest of a folder written by :func:`prepare`, or None for an image folder."""
    path = Path(folder) / PREPARED
    if not path.is_file():
        return None
    import json

    try:
        manifest = json.loads(path.read_text())
        missing = [k for k in (*_RECIPE, "paths", "train", "val", "n_train", "n_val") if k not in manifest]
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a readable manifest ({e})") from None
    if missing:
        raise DataError(f"{path}: manifest lacks {', '.join(missing)}; run cartoon-vae prepare again")
    return manifest


def _prepared_splits(cfg, manifest) -> Splits:
    import tensorflow as tf

    folder = Path(cfg.dir)
    for key, want in _recipe(cfg).items():
        have = manifest[key]
        if want != have:
            raise DataError(f"{folder / PREPARED}: prepared with data.{key}={have}, the config has {want}; "
                            f"run cartoon-vae prepare again for this config")
    size = cfg.image_size
    features = {"image": tf.io.FixedLenFeature([], tf.string), "index": tf.io.FixedLenFeature([], tf.int64)}

    def parse(record):
        example = tf.io.parse_single_example(record, features)
        image = tf.reshape(tf.io.decode_raw(example["image"], tf.uint8), (size, size, 3))
        return image, tf.cast(example["index"], tf.int32)

    def stream(shards):
        missing = [name for name in shards if not (folder / name).is_file()]
        if missing:
            raise DataError(f"{folder / missing[0]}: shard listed in {PREPARED} is missing")
        files = tf.data.Dataset.from_tensor_slices([str(folder / name) for name in shards])
        records = files.flat_map(lambda f: tf.data.TFRecordDataset(f, buffer_size=8 << 20))  # in written order
        return records.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    return Splits(stream(manifest["train"]), stream(manifest["val"]), list(manifest["paths"]),
                  manifest["n_train"], manifest["n_val"])


def prepare(config, out, shard_images=1024, log=print) -> Path:
    """Decode, composite, crop and resize every image of ``config.data.dir`` once, into ``out``.

    Writes ``train-NNNNN.tfrecord`` and ``val-NNNNN.tfrecord`` shards of ``shard_images``
    raw uint8 images each (with their index in the source's file order) and ``prepared.json``,
    which records the recipe (size, crop, background, split) and the source paths.
    Training, latent statistics and evaluation then stream the shards with ``data.dir``
    set to ``out``. The folder is written under a temporary name and renamed when complete,
    so a killed run leaves nothing that looks prepared; an existing ``out`` is refused.
    """
    import json
    import shutil

    import tensorflow as tf

    out = Path(out)
    if out.exists():
        raise DataError(f"{out}: already exists; remove it or choose another --out")
    cfg = config.replace(data={"cache": "none"}).data
    s = load_splits(cfg)
    tmp = out.with_name(f".tmp-{out.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    manifest = {**_recipe(cfg),
                "source": str(cfg.dir), "paths": [os.path.abspath(p) for p in s.paths], "train": [], "val": [], "n_train": 0, "n_val": 0}
    for split, ds in (("train", s.train), ("val", s.val)):
        writer, count = None, 0
        for image, index in ds.prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
            if count % shard_images == 0:
                if writer:
                    writer.close()
                manifest[split].append(f"{split}-{len(manifest[split]):05d}.tfrecord")
                writer = tf.io.TFRecordWriter(str(tmp / manifest[split][-1]))
            example = tf.train.Example(features=tf.train.Features(feature={
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.tobytes()])),
                "index": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(index)]))}))
            writer.write(example.SerializeToString())
            count += 1
            if count % shard_images == 0 and log:
                log(f"{split}: {count} images written")
        if writer:
            writer.close()
        manifest[f"n_{split}"] = count
    (tmp / PREPARED).write_text(json.dumps(manifest, indent=1) + "\n")
    tmp.rename(out)
    if log:
        log(f"{out}: {manifest['n_train']} train and {manifest['n_val']} validation images at "
            f"{cfg.image_size}x{cfg.image_size} in {len(manifest['train']) + len(manifest['val'])} shards")
    return out
