"""The one image reader: every promised format to RGBA, broken and over-large files named."""

import numpy as np
import pytest
from PIL import Image

from cartoon_vae.images import MAX_IMAGE_PIXELS, find_unreadable, read_rgba


@pytest.fixture
def face():
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[10:30, 10:30] = (200, 120, 40, 255)  # an opaque square on a transparent background
    return Image.fromarray(rgba, "RGBA")


@pytest.mark.parametrize("name,convert", [("a.png", None), ("b.webp", None), ("c.gif", None), ("d.bmp", "RGB"),
                                          ("e.tiff", "RGB"), ("f.jpg", "RGB"), ("g.jpg", "CMYK")])
def test_every_format_reads_as_rgba(face, tmp_path, name, convert):
    (face.convert(convert) if convert else face).save(tmp_path / name, **({"quality": 95} if name.endswith("jpg")
                                                                          else {}))
    x = read_rgba(tmp_path / name)
    assert x.shape == (40, 40, 4) and x.dtype == np.uint8
    centre = x[20, 20, :3].astype(int)
    assert np.abs(centre - [200, 120, 40]).max() <= 12, centre  # CMYK JPEGs come back as RGB, not inverted
    if convert is None and not name.endswith("gif"):
        assert x[0, 0, 3] == 0  # alpha kept where the format has it


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    grey = np.full((8, 8), 128 * 257, np.uint16)
    Image.fromarray(grey).save(tmp_path / "g16.png")
    assert np.all(read_rgba(tmp_path / "g16.png")[..., :3] == 128)


def test_the_first_frame_of_an_animation(face, tmp_path):
    second = Image.new("RGBA", face.size, (0, 0, 255, 255))
    face.save(tmp_path / "anim.gif", save_all=True, append_images=[second])
    assert read_rgba(tmp_path / "anim.gif")[20, 20, 0] > 150  # the orange square, not the blue frame


def test_broken_and_over_large_files_are_named(tmp_path):
    noise = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "full.jpg")  # big enough that half of it cuts the scan data
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    side = int(MAX_IMAGE_PIXELS ** 0.5) + 1
    Image.new("1", (side, side)).save(tmp_path / "big.png")
    paths = [str(tmp_path / n) for n in ("full.jpg", "trunc.jpg", "empty.png", "text.png", "big.png")]
    header_only = find_unreadable(paths)
    assert set(header_only) == set(paths[2:])  # PIL's header scan passes a truncated JPEG
    full = find_unreadable(paths, decode=True)
    assert set(full) == set(paths[1:])
    assert full[paths[2]] == "empty file" and "decompression-bomb" in full[paths[4]]
