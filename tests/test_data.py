"""The loader (real fixtures, layouts, split, alpha, odd PNGs, bad files) and attribute CSVs."""

import logging
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from cartoon_vae import load_config
from cartoon_vae.batches import make_datasets
from cartoon_vae.data import DataError, list_images, load_splits, read_attributes
from cartoon_vae.synthetic import make_dataset

from .conftest import FIXTURES, ROOT

PAPER = ROOT / "configs" / "paper.yaml"


def _cfg(folder, *extra):
    return load_config(PAPER, [f"data.dir={folder}", "data.image_size=64", "data.batch_size=4",
                               "data.val_fraction=0.25", *extra])


def _all(ds):
    """(images, indices) of a with-index dataset of Batch dicts."""
    return _raw(ds.map(lambda batch: (batch["image"], batch["index"])))


def _raw(ds):
    """(images, indices) of a dataset of (images, indices) pairs (a split of load_splits, batched)."""
    xs, idx = [], []
    for x, i in ds:
        xs.append(np.asarray(x))
        idx.append(np.asarray(i))
    return np.concatenate(xs), np.concatenate(idx)


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    out = tmp_path_factory.mktemp("faces") / "set"
    make_dataset(out, n=16, seed=5, workers=1, progress=False)
    return out


def _reference(path, size=64, background=(255, 255, 255)):
    """PIL: composite onto the background first, then resize (box filter)."""
    im = Image.open(path).convert("RGBA")
    bg = Image.new("RGBA", im.size, tuple(background) + (255,))
    bg.alpha_composite(im)
    return np.asarray(bg.convert("RGB").resize((size, size), Image.Resampling.BOX), np.float32) / 255


def test_real_fixtures_load_with_white_background_and_match_pil():
    folder = FIXTURES / "cartoonset_real"
    train, val = make_datasets(_cfg(folder), with_index=True)
    x, idx = _all(train.concatenate(val))
    paths = list_images(folder)
    assert sorted(idx) == list(range(len(paths))) == list(range(4))
    assert x.shape[1:] == (64, 64, 3) and x.min() >= 0 and x.max() <= 1
    for img, i in zip(x, idx):
        corners = img[[0, 0, -1, -1], [0, -1, 0, -1]]
        np.testing.assert_allclose(corners, 1.0)                # transparent background -> white
        assert np.abs(img - _reference(paths[i])).mean() < 0.01  # composited before resizing


def test_background_colour_is_configurable():
    train, _ = make_datasets(_cfg(FIXTURES / "cartoonset_real", "data.background=[0,0,255]"))
    x = np.asarray(next(iter(train))["image"])
    np.testing.assert_allclose(x[:, 0, 0], [[0, 0, 1]] * len(x))


def test_flat_and_nested_layouts_give_the_same_images(faces, tmp_path):
    nested = tmp_path / "nested"
    for k, p in enumerate(sorted(faces.glob("*.png"))):
        sub = nested / str(k % 3)
        sub.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, sub / p.name)
        shutil.copy(p.with_suffix(".csv"), sub / p.with_suffix(".csv").name)
    flat_paths, nested_paths = list_images(faces), list_images(nested)
    assert len(flat_paths) == len(nested_paths) == 16
    assert sorted(map(os.path.basename, flat_paths)) == sorted(map(os.path.basename, nested_paths))
    x, _ = _all(make_datasets(_cfg(nested), with_index=True)[1])
    assert x.shape == (4, 64, 64, 3)


def test_order_matches_image_dataset_from_directory(faces):
    import keras
    ds = keras.utils.image_dataset_from_directory(faces, labels=None, shuffle=False, batch_size=None,
                                                  image_size=(8, 8), verbose=False)
    assert list_images(faces) == ds.file_paths


def test_split_is_deterministic_and_disjoint(faces):
    a = load_splits(_cfg(faces).data)
    b = load_splits(_cfg(faces).data)
    ta, va = set(_raw(a.train.batch(4))[1]), set(_raw(a.val.batch(4))[1])
    tb, vb = set(_raw(b.train.batch(4))[1]), set(_raw(b.val.batch(4))[1])
    assert (ta, va) == (tb, vb) and not ta & va and ta | va == set(range(16)) and len(va) == 4
    assert (a.n_train, a.n_val) == (12, 4)
    other = load_splits(_cfg(faces, "data.seed=1").data)
    assert set(_raw(other.val.batch(4))[1]) != va


def test_training_stream_is_seeded_by_epoch(faces):
    from cartoon_vae.batches import make_training_datasets

    def first_epochs(first, k):
        stream, _, steps = make_training_datasets(_cfg(faces, "train.epochs=3"), first_epoch=first)
        assert steps == 3
        batches = [np.asarray(batch["image"]) for batch in stream.take(steps * k)]
        return [np.concatenate(batches[e * steps:(e + 1) * steps]) for e in range(k)]

    from_zero, from_two = first_epochs(0, 3), first_epochs(2, 1)
    np.testing.assert_array_equal(from_zero[2], from_two[0])  # epoch 2 is the same whenever it starts
    assert not np.array_equal(from_zero[0], from_zero[1])     # and epochs differ in order


def test_attributes_align_with_images(faces):
    attrs = read_attributes(faces)
    assert len(attrs.names) == 18 and attrs.values.shape == (16, 18) and attrs.labelled.all()
    x, idx = _all(make_datasets(_cfg(faces), with_index=True)[1])
    refs = [_reference(p) for p in attrs.paths]
    for img, i in zip(x, idx):
        errors = [np.abs(img - r).mean() for r in refs]
        assert int(np.argmin(errors)) == i and errors[i] < 0.01  # image i is the file attrs.paths[i]
        line = open(os.path.splitext(attrs.paths[i])[0] + ".csv").read().splitlines()[12]
        assert line == f'"hair_color", {attrs.column("hair_color")[i]}, 10'


def test_images_without_csv_have_no_labels(tmp_path):
    shutil.copytree(FIXTURES / "cartoonset_real", tmp_path / "real")
    attrs = read_attributes(tmp_path / "real")
    assert attrs.names == () and not attrs.labelled.any()


def test_grayscale_palette_and_16bit_pngs_load_correctly(faces, tmp_path):
    src = Image.open(sorted(faces.glob("*.png"))[0])
    flat = Image.new("RGBA", src.size, (255, 255, 255, 255))
    flat.alpha_composite(src)
    odd = tmp_path / "odd"
    odd.mkdir()
    flat.convert("L").save(odd / "a_gray.png")
    flat.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE).save(odd / "b_palette.png")
    src.convert("P", palette=Image.Palette.ADAPTIVE).save(odd / "c_palette_alpha.png", transparency=0)
    Image.fromarray(np.asarray(flat.convert("L")).astype(np.uint16) * 257).save(odd / "d_gray16.png")
    train, val = make_datasets(_cfg(odd, "data.val_fraction=0.5"), with_index=True)
    x, idx = _all(train.concatenate(val))
    paths = list_images(odd)
    # PIL clips 16-bit values when converting, so the 16-bit file is checked against its 8-bit twin.
    expected = [_reference(odd / "a_gray.png" if p.endswith("gray16.png") else p) for p in paths]
    for img, i in zip(x, idx):
        assert np.abs(img - expected[i]).mean() < 0.01, paths[i]


def test_unreadable_files_are_skipped_with_a_logged_count(faces, tmp_path, caplog):
    bad = tmp_path / "bad"
    shutil.copytree(faces, bad)
    (bad / "zz_empty.png").write_bytes(b"")
    (bad / "zz_text.png").write_text("not an image")
    (bad / "zz_trunc.png").write_bytes((faces / "cs000000.png").read_bytes()[:2000])
    with caplog.at_level(logging.WARNING, logger="cartoon_vae"):
        train, val = make_datasets(_cfg(bad), with_index=True)
        x, idx = _all(train.concatenate(val))
    assert "skipping 3 unreadable" in caplog.text and "zz_empty.png: empty file" in caplog.text
    assert len(x) == 16 and max(idx) < 16  # the three bad files (indices 16-18) never appear


@pytest.mark.parametrize("make,words", [
    (lambda p: p / "missing", "data folder not found"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no images"),
    (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", "not a folder"),
])
def test_bad_folders_raise_one_line_naming_the_path(tmp_path, make, words):
    folder = make(tmp_path)
    with pytest.raises(DataError) as e:
        make_datasets(_cfg(folder))
    assert str(folder) in str(e.value) and words in str(e.value) and "\n" not in str(e.value)


def test_folder_of_only_bad_files_is_refused(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "b.png").write_text("x")
    with pytest.raises(DataError, match="none of the 2 image files is readable"):
        make_datasets(_cfg(tmp_path))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads everything")
def test_unreadable_folder_is_named(tmp_path):
    d = tmp_path / "locked"
    d.mkdir()
    d.chmod(0)
    try:
        with pytest.raises(DataError, match="not readable"):
            list_images(d)
    finally:
        d.chmod(0o755)


@pytest.mark.parametrize("line", ['"hair", x, 3', 'hair, 1, 3', '"hair", 5, 3', '"hair", 1'])
def test_malformed_csv_line_gives_file_and_line(faces, tmp_path, line):
    shutil.copytree(faces, tmp_path / "s")
    csv = tmp_path / "s" / "cs000003.csv"
    lines = csv.read_text().splitlines()
    lines[4] = line
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as e:
        read_attributes(tmp_path / "s")
    assert f"{csv}:5:" in str(e.value)


def test_paper_config_batches_on_generated_faces(faces):
    train, _ = make_datasets(load_config(PAPER, [f"data.dir={faces}"]))
    x = np.asarray(next(iter(train))["image"])
    assert x.shape == (15, 256, 256, 3)  # 16 faces, 10% (1) held out and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1


def test_prepared_shards_stream_the_same_images_and_labels(faces, tmp_path):
    from cartoon_vae.batches import make_training_datasets
    from cartoon_vae.data import prepare

    cfg = _cfg(faces, "train.epochs=2")
    out = prepare(cfg, tmp_path / "prepared", shard_images=3, log=None)
    assert len(list(out.glob("train-*.tfrecord"))) == 4 and (out / "prepared.json").is_file()
    folder, shards = load_splits(cfg.data), load_splits(cfg.replace(data={"dir": str(out)}).data)
    for split in ("train", "val"):
        (x1, i1), (x2, i2) = (_raw(getattr(s, split).batch(5)) for s in (folder, shards))
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(x1, x2)
    assert list_images(out) == [os.path.abspath(p) for p in list_images(faces)]
    assert read_attributes(out).values.tolist() == read_attributes(faces).values.tolist()
    # Training streams it with the same per-epoch shuffles as the folder.
    a, b = (make_training_datasets(c)[0] for c in (cfg, cfg.replace(data={"dir": str(out)})))
    for xa, xb in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.asarray(xa["image"]), np.asarray(xb["image"]))


def test_prepared_folder_refuses_another_recipe_and_is_not_overwritten(faces, tmp_path):
    from cartoon_vae.data import prepare

    cfg = _cfg(faces)
    out = prepare(cfg, tmp_path / "prepared", log=None)
    with pytest.raises(DataError, match=r"prepared with data.image_size=64, the config has 32"):
        load_splits(cfg.replace(data={"dir": str(out), "image_size": 32}).data)
    with pytest.raises(DataError, match="already exists"):
        prepare(cfg, out, log=None)
    (out / "train-00000.tfrecord").unlink()
    with pytest.raises(DataError, match="train-00000.tfrecord: shard listed in prepared.json is missing"):
        load_splits(cfg.replace(data={"dir": str(out)}).data)


def _train(cfg):
    return _raw(load_splits(cfg).train.batch(4))


def test_an_attribute_csv_that_is_a_fifo_or_a_device_is_refused_at_once(tmp_path):
    from cartoon_vae.data import parse_attribute_csv

    fifo = tmp_path / "cs1.csv"
    os.mkfifo(fifo)  # nobody writes: the open must not block, nothing must be read
    with pytest.raises(DataError, match="cs1.csv: not a regular file"):
        parse_attribute_csv(fifo)
    (tmp_path / "cs2.csv").symlink_to("/dev/zero")  # endless: refused before a byte is read
    with pytest.raises(DataError, match="cs2.csv: not a regular file"):
        parse_attribute_csv(tmp_path / "cs2.csv")
    (tmp_path / "cs3.csv").write_bytes(b'"hair", 1, 3\n' * 200_000)
    with pytest.raises(DataError, match="cs3.csv: attribute CSV of over"):
        parse_attribute_csv(tmp_path / "cs3.csv")
