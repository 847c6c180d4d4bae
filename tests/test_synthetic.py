"""The embedded generator: Cartoon Set's file format, determinism, and every attribute visible."""

import filecmp

import numpy as np
import pytest
from PIL import Image

from cartoon_vae.synthetic import ATTRIBUTES, REAL_VARIANTS, make_dataset, render, sample_attributes


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


@pytest.mark.parametrize("name,n", ATTRIBUTES)
def test_every_attribute_visibly_changes_the_image(name, n):
    base = sample_attributes(np.random.default_rng(11))
    # Beard and hair present so their colours show; glasses only where their colour is tested (bold
    # frames and tinted lenses cover the eye details, as in the real set).
    base.update(glasses=0 if name == "glasses_color" else 5, facial_hair=0, hair=2)
    images = [np.asarray(render(dict(base, **{name: v})), np.float32) for v in range(n)]
    for v in range(1, n):
        changed = np.abs(images[v] - images[0]).max(-1) > 10  # out of 255 in some channel
        assert changed.sum() > 50, f"{name}={v} changes only {changed.sum()} pixels"


def test_every_named_attribute_has_a_name_for_each_of_its_variants():
    from cartoon_vae.synthetic import ATTRIBUTES, GLASSES_STYLES, VALUE_NAMES

    counts = dict(ATTRIBUTES)
    for name, words in VALUE_NAMES.items():
        assert len(words) == counts[name] and len(set(words)) == len(words), name
    assert VALUE_NAMES["glasses"][-1] == VALUE_NAMES["facial_hair"][-1] == GLASSES_STYLES[-1] == "none"
