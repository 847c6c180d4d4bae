"""The true counterfactual is exactly the data set's image of that face; the rule tells a real edit from
a no-op and from one that moved everything."""

import numpy as np
import pytest

from cartoon_vae import load_config
from cartoon_vae.edit import on_photo
from cartoon_vae.counterfactual import (attribute_mask, edit_faces, has_renderer, judge, summarise,
                                        true_counterfactual)
from cartoon_vae.data import load_splits, read_attributes
from cartoon_vae.synthetic import make_dataset

from .conftest import ROOT


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    out = tmp_path_factory.mktemp("cf") / "faces"
    make_dataset(out, n=8, seed=7, workers=1, progress=False)
    return out


def test_the_generator_redraws_a_face_exactly_as_the_pipeline_holds_it(faces):
    cfg = load_config(ROOT / "configs" / "recommended.yaml", [f"data.dir={faces}", "data.val_fraction=0.25"]).data
    s, attrs = load_splits(cfg), read_attributes(faces)
    assert has_renderer(faces) and not has_renderer(ROOT / "tests" / "fixtures" / "cartoonset_real")
    for image, index in s.val:
        drawn = true_counterfactual(dict(zip(attrs.names, map(int, attrs.values[int(index)]))), cfg)
        np.testing.assert_array_equal(np.round(drawn * 255), np.asarray(image))
        no_glasses = dict(zip(attrs.names, map(int, attrs.values[int(index)])), glasses=5)
        changed = attribute_mask(drawn[None], true_counterfactual(no_glasses, cfg)[None])[0]
        if attrs.values[int(index), attrs.names.index("glasses")] != 5:
            assert 0.005 < changed.mean() < 0.3  # the glasses' pixels, not the whole face


def _faces(n=20, seed=0, size=16):
    rng = np.random.default_rng(seed)
    original = rng.uniform(0, 1, (n, size, size, 3)).astype(np.float32)
    truth = original.copy()
    truth[:, 4:8, 4:8] = 1 - truth[:, 4:8, 4:8]  # the attribute: a patch that changes
    noise = lambda: rng.normal(0, 0.02, original.shape).astype(np.float32)  # noqa: E731  (the decoder's blur)
    return original, truth, noise


def test_an_edit_that_reaches_the_truth_works_a_no_op_does_not():
    original, truth, noise = _faces()
    recon = original + noise()
    good = judge(original, recon, truth + noise(), truth)
    assert good["worked"].all() and not good["others_changed"].any()
    no_op = judge(original, recon, recon, truth)
    assert not no_op["worked"].any()


def test_an_edit_that_moves_everything_changes_other_things():
    original, truth, noise = _faces()
    recon = original + noise()
    smeared = 0.5 * (truth + noise()) + 0.25  # right direction on the patch, but the whole face washed out
    verdict = judge(original, recon, smeared, truth)
    assert verdict["others_changed"].all() and not verdict["worked"].any()


def test_summary_rates_carry_a_wilson_interval():
    original, truth, noise = _faces(n=10)
    recon = original + noise()
    edited = np.concatenate([truth[:7] + noise()[:7], recon[7:]])
    s = summarise(judge(original, recon, edited, truth))
    assert (s["faces"], s["worked"], s["success_rate"]) == (10, 7, 0.7)
    lo, hi = s["success_interval"]
    assert 0.35 < lo < 0.7 < hi < 0.95


def test_an_edit_on_the_photo_keeps_the_faces_own_pixels_where_the_edit_changed_nothing():
    original, truth, noise = _faces()
    recon = np.clip(original + noise(), 0, 1)
    edited = recon.copy()
    edited[:, 4:8, 4:8] = 1 - recon[:, 4:8, 4:8]  # the decoder's drawing of the change, with the decoder's blur
    photo = on_photo(original, recon, edited)
    np.testing.assert_allclose(photo[:, :4], original[:, :4], atol=1e-6)  # untouched: the original, not the blur
    assert 0 <= photo.min() and photo.max() <= 1
    assert judge(original, recon, photo, truth)["edit_out"].max() < 1e-10
    assert not judge(original, recon, on_photo(original, recon, recon), truth)["worked"].any()  # a no-op stays one


def test_edit_faces_judges_each_method_and_its_edit_on_the_photo(faces):
    cfg = load_config(ROOT / "configs" / "recommended.yaml", [f"data.dir={faces}", "data.val_fraction=0.25"]).data
    attrs = read_attributes(faces)
    images = np.stack([true_counterfactual(dict(zip(attrs.names, map(int, row))), cfg) for row in attrs.values])
    blur = lambda a: 0.9 * a + 0.05  # noqa: E731  (a decoder that draws every face a little washed out)
    recon = blur(images)
    k = attrs.names.index("glasses")
    truth = lambda rows: np.stack([true_counterfactual(dict(zip(attrs.names, map(int, attrs.values[r])), glasses=5),  # noqa: E731
                                                       cfg) for r in rows])
    per, rows, (_, truths, edits) = edit_faces(cfg, attrs.values, list(attrs.names), images, recon, "glasses", 5,
                                               {"oracle": lambda rows: blur(truth(rows))}, 100, photo=True,
                                               redraw=lambda truths, rows: blur(truths))
    assert list(per) == list(edits) == ["oracle", "oracle_on_photo", "oracle_composite", "oracle_recolour"]
    assert (attrs.values[rows, k] != 5).all() and len(rows) == (attrs.values[:, k] != 5).sum()
    assert per["oracle"]["worked"].all() and per["oracle_on_photo"]["worked_whole_image"].all()
    # composited: the decoded truth where the drawing changed enough, the photo (old glasses and all) where the
    # change is below the mask's band, at antialiased edges: the whole image passes, the region not always
    assert per["oracle_composite"]["worked_whole_image"].all()
    # x + blur(c) - blur(x) = c + 0.1 (x - c): the truth, up to a tenth of the change
    np.testing.assert_allclose(edits["oracle_on_photo"], truths + 0.1 * (images[rows] - truths), atol=1e-5)


def test_a_ghost_of_the_old_attribute_passes_the_whole_image_rule_but_not_the_region_rule():
    original, truth, noise = _faces(n=6, size=32)  # 16 of 1,024 pixels change: a whole-image MSE barely sees them
    recon, drawn = original + noise(), truth + noise()  # the decoder's drawings of the face and of the truth
    ghost = truth + noise()
    ghost[:, 4:8, 4:8] = 0.85 * truth[:, 4:8, 4:8] + 0.15 * original[:, 4:8, 4:8]  # the old patch shows through
    verdict = judge(original, recon, ghost, truth, drawn)
    assert verdict["worked_whole_image"].all() and not verdict["worked_in_region"].any()
    assert not verdict["worked"].any()
    clean = judge(original, recon, truth + noise(), truth, drawn)
    assert clean["worked"].all() and clean["worked_whole_image"].all()
    s = summarise(verdict)
    assert (s["worked"], s["worked_whole_image"], s["success_rate_whole_image"]) == (0, 6, 1.0)


def test_compositing_keeps_the_photo_where_the_decoded_edit_changed_nothing_and_drops_the_old_attribute():
    from cartoon_vae.edit import composite, on_photo

    original, truth, _ = _faces(n=4, size=32)
    blur = np.random.default_rng(1).normal(0, 0.005, original.shape).astype(np.float32)  # below the mask's band
    recon = np.clip(original + blur, 0, 1)
    edited = np.clip(truth + blur, 0, 1)  # the decoder drew the new patch where the old one was
    out = composite(original, recon, edited)
    far = np.ones(original.shape[1:3], bool)
    far[:14, :14] = False  # beyond the patch's mask (grown by a pixel, softened by a Gaussian)
    np.testing.assert_allclose(out[:, far], original[:, far], atol=1e-6)  # the photo's own pixels
    patch = (slice(None), slice(5, 7), slice(5, 7))
    assert np.abs(out[patch] - truth[patch]).max() < 0.02  # inside: the decoded edit, no trace of the old patch
    added = on_photo(original, recon, edited)  # here the same: the change added to the photo
    np.testing.assert_allclose(added[patch], out[patch], atol=0.02)

