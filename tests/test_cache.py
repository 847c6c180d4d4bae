"""The decoded-image file cache: shared by later loads, never stale, one writer at a time, and written again when
it was cut short."""

import logging
import os
import shutil

import numpy as np

from cartoon_vae.synthetic import make_dataset

from .test_data import _cfg, _train, faces  # noqa: F401  (faces: the module's fixture of drawn faces)


def test_a_file_cache_is_shared_by_later_loads_never_stale_and_has_one_writer(faces, tmp_path, monkeypatch):
    import fcntl

    from cartoon_vae import data

    folder = tmp_path / "set"
    shutil.copytree(faces, folder)
    cfg = _cfg(folder, "data.cache=file").data
    first = _train(cfg)
    assert len(list((folder / ".cache").glob("train-64px-*.index"))) == 1  # written whole by the first pass

    def no_decode(path):
        raise AssertionError(f"decoded {path} again")

    with monkeypatch.context() as m:  # a later load (figures after train) reads the cache, decodes nothing
        m.setattr(data, "read_rgba", no_decode)
        again = _train(cfg)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])

    def redraw(seed):  # other faces under the same file names
        make_dataset(tmp_path / f"other{seed}", n=16, seed=seed, workers=1, progress=False)
        for png in (tmp_path / f"other{seed}").glob("*.png"):
            shutil.copyfile(png, folder / png.name)

    redraw(6)  # a new key: the new faces are decoded, not the cached ones served
    redrawn = _train(cfg)
    fresh = _train(_cfg(folder, "data.cache=none").data)
    assert not np.array_equal(first[0], redrawn[0])
    assert np.array_equal(redrawn[0], fresh[0]) and np.array_equal(redrawn[1], fresh[1])

    redraw(7)  # while another process writes this cache (its lock is taken), this one keeps its images in memory
    with monkeypatch.context() as m:
        m.setattr(fcntl, "flock", lambda fd, op: (_ for _ in ()).throw(BlockingIOError("locked")))
        meanwhile = _train(cfg)
    assert len(list((folder / ".cache").glob("train-64px-*.index"))) == 2  # no third cache was written
    assert np.array_equal(meanwhile[0], _train(_cfg(folder, "data.cache=none").data)[0])


def test_a_file_cache_cut_short_after_it_was_written_is_written_again(faces, tmp_path, caplog):
    folder = tmp_path / "set"
    shutil.copytree(faces, folder)
    cfg = _cfg(folder, "data.cache=file").data
    first = _train(cfg)
    (shard,) = (folder / ".cache").glob("train-64px-*.data-*")
    os.truncate(shard, shard.stat().st_size // 3)  # the index is intact, the data is not
    from cartoon_vae import cache

    while cache._CACHE_WRITERS:  # as when the writing process has ended: its writer locks are released
        os.close(cache._CACHE_WRITERS.pop())
    with caplog.at_level(logging.WARNING):
        again = _train(cfg)
    assert "the image cache is damaged" in caplog.text
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert shard.stat().st_size > 0 and np.array_equal(first[0], _train(cfg)[0])  # rebuilt whole, read back
