"""The decoded-image cache: ``data.cache`` says where a split's decoded, resized images are kept after the
first pass, so later epochs and later commands decode nothing.

``memory`` keeps them in this process (``tf.data``'s cache); ``file`` writes TensorFlow's cache files under
``data.cache_dir`` (default ``<data.dir>/.cache``), named by a key of the recipe and of each image file's size
and modification time, so a set drawn again under the same names is decoded again and never served stale.
One process writes a cache file at a time (an ``flock`` on ``PREFIX.writer``, released by the kernel however
the process ends); another that finds it taken keeps its images in memory. A cache whose index is there but
whose data was cut short since (a truncated file) is found out by reading its last element back, and written
again.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

log = logging.getLogger("cartoon_vae")


_CACHE_WRITERS = []  # descriptors of the file caches this process writes, locked until it exits


def _cache_whole(prefix) -> bool:
    """Whether a file cache that has its index still holds every element: its data files are written in order,
    so one cut short (truncated, a disk that filled) loses the last element, which is read back here."""
    import tensorflow as tf

    try:
        reader = tf.compat.v1.train.NewCheckpointReader(str(prefix))
        keys = [k for k in reader.get_variable_to_shape_map() if k.strip().replace("_", "").isdigit()]
        if not keys:
            return True  # an empty split
        last = max(int(k.strip().split("_")[0]) for k in keys)
        for k in keys:
            if int(k.strip().split("_")[0]) == last:
                reader.get_tensor(k)
        return True
    except Exception:  # TensorFlow raises several types for a short or damaged file
        return False


def cached(ds, cfg, split, paths):
    """``ds`` cached as ``data.cache`` says. A file cache is keyed by the recipe and by each file's size
    and modification time (a set drawn again under the same names is decoded again, never served stale),
    is shared by every later process that asks for the same split (``figures`` after ``train``, one demo
    after another), and has one writer at a time: a process that finds another one writing it keeps its
    own copy in memory instead."""
    if cfg.cache == "none":
        return ds
    if cfg.cache == "memory":
        return ds.cache()
    folder = Path(cfg.cache_dir or Path(cfg.dir) / ".cache")
    stats = [(st.st_size, st.st_mtime_ns) for st in map(os.stat, paths)]
    recipe = (paths, stats, cfg.image_size, cfg.load_size, cfg.crop, cfg.background)
    key = hashlib.sha1(repr(recipe).encode()).hexdigest()[:12]
    prefix = folder / f"{split}-{cfg.image_size}px-{key}"
    if Path(f"{prefix}.index").exists() and _cache_whole(prefix):  # written whole (TensorFlow writes the index
        return ds.cache(str(prefix))                                   # last) and not cut short since: read it
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{prefix}.writer", os.O_CREAT | os.O_RDWR | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as e:
        log.warning("%s: cannot write the image cache (%s); the images are cached in memory", folder, e)
        return ds.cache()
    import fcntl  # POSIX; only the file cache needs it

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        log.info("%s is being written by another process; this one caches its images in memory", prefix)
        return ds.cache()
    _CACHE_WRITERS.append(fd)
    if Path(f"{prefix}.index").exists():  # damaged (checked again now that no other process can be writing it)
        if _cache_whole(prefix):
            return ds.cache(str(prefix))
        log.warning("%s: the image cache is damaged (a data file is shorter than its index says); writing it again",
                    prefix)
        for damaged in folder.glob(f"{prefix.name}.*"):
            if not damaged.name.endswith(".writer"):
                damaged.unlink(missing_ok=True)
    # A writer killed mid-way leaves TensorFlow's lock file and no index; holding the writer lock, we
    # know it is stale: it goes, and the cache is written again.
    for lock in folder.glob(f"{prefix.name}*.lockfile"):
        lock.unlink()
    return ds.cache(str(prefix))
