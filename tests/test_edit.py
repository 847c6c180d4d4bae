"""The editing methods' registry: who chooses a label swap or a move of z, what each method draws, the probe's
verdict, the photo edits (the edit command's grid runs end to end in tests/test_pipeline.py)."""

import numpy as np
import pytest

from cartoon_vae.edit import (METHODS, ON_PHOTO, direction_for, edit_methods, edit_scores, methods_for, needs_direction,
                              relabel)


class Plain:
    """A model with no labels: decode(z) = z's first three numbers as one RGB pixel."""

    conditioned = ()

    def labels_of(self, names, rows):
        return None

    def decode(self, z, labels=None):
        assert labels is None
        return np.asarray(z)[:, None, None, :3]


class Conditional(Plain):
    """A model conditional on "a" (3 values): decode(z, y) = y as the pixel."""

    conditioned = ["a"]

    def labels_of(self, names, rows):
        return np.eye(3, dtype=np.float32)[np.asarray(rows)[:, list(names).index("a")]]

    def decode(self, z, labels=None):
        return np.asarray(labels)[:, None, None, :3]


def test_the_model_decides_a_label_swap_or_a_move_of_z_and_only_the_registry_says_so():
    assert needs_direction(Plain(), "a") and not needs_direction(Conditional(), "a")
    assert needs_direction(Conditional(), "b")  # an attribute it is not conditioned on still moves z
    assert methods_for(Conditional(), "a") == ["label_swap"] and methods_for(Plain(), "a") == ["class_mean",
                                                                                                "probability"]
    assert set(METHODS) == {f"{m}{how}" for m in ("label_swap", "class_mean", "probability")
                            for how in ("", *(f"_{h}" for h in ON_PHOTO))}
    assert direction_for(Conditional(), ["a"], None, None, "a", 1) is None  # a swap needs no direction, none fitted


def test_a_label_swap_draws_the_same_code_with_the_new_label():
    names, rows = ["a", "b"], np.array([[0, 1], [2, 0]])
    assert relabel(Conditional(), names, rows, "a", 1).tolist() == [[0, 1, 0], [0, 1, 0]]
    swapped = edit_methods(Conditional(), names, np.zeros((2, 4)), rows, "a", 1)["label_swap"](np.arange(2))
    assert swapped[:, 0, 0].tolist() == [[0, 1, 0], [0, 1, 0]]
    with pytest.raises(ValueError, match="needs a direction"):
        edit_methods(Plain(), names, np.zeros((2, 4)), rows, "a", 1)


def test_edit_scores():
    base = {"hair": np.array([0, 0, 1, 3]), "glasses": np.array([0, 1, 1, 1]), "eye": np.array([2, 2, 2, 2])}
    edited = {"hair": np.array([3, 3, 3, 1]), "glasses": np.array([0, 1, 0, 1]), "eye": np.array([2, 2, 2, 2])}
    img0, img1 = np.zeros((4, 2, 2, 3)), np.full((4, 2, 2, 3), 0.5)
    assert edit_scores(edited, base, "hair", 3, img1, img0) == {
        "success": 0.75, "gain": 0.5, "preservation": (0.75 + 1.0) / 2, "preservation_all": (0.75 + 1.0) / 2,
        "pixel_change": 0.5}
    judged = edit_scores(edited, base, "hair", 3, judged={"hair", "eye"})
    assert judged["preservation"] == 1.0 and judged["preservation_all"] == 0.875 and "pixel_change" not in judged


def _cartoon(size=32):
    """A flat-coloured face: skin, a block of hair with a dark outline, and an eye outside the hair."""
    face = np.full((1, size, size, 3), (0.9, 0.75, 0.6), np.float32)
    face[0, 2:12, 4:28] = (0.95, 0.85, 0.4)                      # blond hair
    face[0, 12, 4:28] = face[0, 2:12, 4] = face[0, 2:12, 27] = 0.1  # its outline
    face[0, 20:22, 10:14] = 0.2                                   # an eye
    return face


def test_recolouring_gives_a_flat_colour_its_new_colour_whole_on_the_photos_own_outlines():
    from cartoon_vae.edit import composite, recolour

    photo = _cartoon()
    truth = photo.copy()
    hair = (slice(None), slice(3, 12), slice(5, 27))
    truth[hair] = (0.3, 0.2, 0.1)  # dark brown
    recon = np.clip(photo + 0.01, 0, 1)
    rng = np.random.default_rng(0)
    edited = np.clip(truth + 0.01, 0, 1)
    blotch = rng.uniform(size=photo.shape[:3]) < 0.15  # the decoder leaves blotches of the old colour
    blotch[:, :3] = blotch[:, 12:] = False
    edited[blotch] = 0.7 * edited[blotch] + 0.3 * photo[blotch]
    out, drawn = recolour(photo, recon, edited), composite(photo, recon, edited)
    inner = (slice(None), slice(5, 10), slice(7, 25))  # two pixels in from the soft mask's edge
    np.testing.assert_allclose(out[inner], truth[inner] + 0.01, atol=1e-3)  # every hair pixel: the decoded median
    assert np.abs(drawn[hair] - truth[hair]).max() > 0.15                 # composited, the blotches stay
    np.testing.assert_allclose(out[:, 12, 6:26], photo[:, 12, 6:26], atol=0.02)  # the outline stays the photo's
    np.testing.assert_allclose(out[:, 20:, :], photo[:, 20:, :], atol=1e-6)      # outside the mask: the photo


def test_a_colour_that_splits_is_left_as_decoded():
    from cartoon_vae.edit import composite, recolour

    photo = _cartoon()
    recon = photo.copy()
    edited = photo.copy()
    edited[0, 2:7, 5:27] = (0.9, 0.75, 0.6)  # a new hair style: the top half of the hair becomes skin, the rest stays
    out = recolour(photo, recon, edited)
    np.testing.assert_allclose(out, composite(photo, recon, edited), atol=1e-6)
    np.testing.assert_allclose(out[0, 9:11, 8:24], photo[0, 9:11, 8:24], atol=1e-6)  # the hair that stays is hair


def test_recolouring_keeps_a_new_part_drawn_on_a_colour_that_stays():
    from cartoon_vae.edit import composite, recolour

    photo = _cartoon()
    recon = photo.copy()
    edited = photo.copy()
    edited[0, 16, 6:26] = 0.05   # a new frame drawn on the skin, which keeps its colour
    edited[0, 17, 6:26] = 0.5    # ... and its antialiased edge
    out = recolour(photo, recon, edited)
    np.testing.assert_allclose(out, composite(photo, recon, edited), atol=1e-6)
    assert out[0, 16, 15].mean() < 0.15 < photo[0, 16, 15].min()  # the frame is drawn (the soft mask lets a little skin in)


def test_colour_swaps_are_recoloured_onto_the_photo_and_the_rest_composited():
    from types import SimpleNamespace

    from cartoon_vae.edit import ON_PHOTO, photo_method

    vae = SimpleNamespace(conditioned=["hair_color", "face_color", "glasses"])  # eye_color: a latent move
    assert photo_method(vae, ["hair_color"]) == photo_method(vae, ["hair_color", "face_color"]) == "recolour"
    assert photo_method(vae, ["glasses"]) == photo_method(vae, ["glasses", "hair_color"]) == "composite"
    assert photo_method(vae, ["eye_color"]) == photo_method(vae, []) == "composite"  # not measured recoloured
    assert {photo_method(vae, ["hair_color"]), photo_method(vae, ["hair"])} <= set(ON_PHOTO)
