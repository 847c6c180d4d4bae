"""The embedded generator's data set: Cartoon Set's file format, determinism, a folder never overwritten."""

import filecmp

import numpy as np
import pytest
from PIL import Image

from cartoon_vae.synthetic import ATTRIBUTES, REAL_VARIANTS, make_dataset


def test_format_matches_cartoon_set(tmp_path):
    make_dataset(tmp_path / "s", n=6, seed=3, workers=1, progress=False)
    pngs, csvs = sorted((tmp_path / "s").glob("*.png")), sorted((tmp_path / "s").glob("*.csv"))
    assert len(pngs) == len(csvs) == 6
    for p in pngs:
        im = Image.open(p)
        assert im.mode == "RGBA" and im.size == (500, 500)
        a = np.asarray(im)[..., 3]
        assert a[0, 0] == 0 and a[250, 250] == 255   # transparent background, opaque face
    lines = csvs[0].read_text().splitlines()
    assert len(lines) == 18
    assert [line.split(",")[0].strip('"') for line in lines] == list(REAL_VARIANTS)
    for line, (name, n) in zip(lines, ATTRIBUTES):
        q, v, k = [s.strip() for s in line.split(",")]
        assert q == f'"{name}"' and 0 <= int(v) < int(k) == n <= REAL_VARIANTS[name]


def test_same_seed_gives_identical_files(tmp_path):
    make_dataset(tmp_path / "a", n=8, seed=3, workers=1, progress=False)
    make_dataset(tmp_path / "b", n=8, seed=3, workers=2, progress=False)
    make_dataset(tmp_path / "c", n=8, seed=4, workers=1, progress=False)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    match, mismatch, _ = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", names, shallow=False)
    assert not mismatch and len(match) == len(names) == 17
    assert not filecmp.cmp(tmp_path / "a" / "cs000000.png", tmp_path / "c" / "cs000000.png", shallow=False)


def test_refuses_a_folder_holding_something_else(tmp_path):
    make_dataset(tmp_path / "a", n=2, seed=0, workers=1, progress=False)
    make_dataset(tmp_path / "a", n=2, seed=0, workers=1, progress=False)  # same request: a no-op
    with pytest.raises(FileExistsError, match="seed"):
        make_dataset(tmp_path / "a", n=2, seed=1, workers=1, progress=False)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "photo.png").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="not a generated set"):
        make_dataset(tmp_path / "mine", n=2, seed=0, workers=1, progress=False)
    assert (tmp_path / "mine" / "photo.png").read_bytes() == b"x"


def test_the_attribute_table_and_the_drawing_stay_importable_from_here():
    from cartoon_vae import synthetic, synthetic_attributes, synthetic_drawing

    for name in ("ATTRIBUTES", "REAL_VARIANTS", "SKIN", "HAIR", "IRIS", "GLASSES", "GLASSES_STYLES", "VALUE_NAMES",
                 "sample_attributes", "csv_text"):
        assert getattr(synthetic, name) is getattr(synthetic_attributes, name), name
    for name in ("SIZE", "SS", "render"):
        assert getattr(synthetic, name) is getattr(synthetic_drawing, name), name
