"""The embedded generator's drawing: every attribute visibly changes the face."""

import numpy as np
import pytest

from cartoon_vae.synthetic_attributes import ATTRIBUTES, sample_attributes
from cartoon_vae.synthetic_drawing import SIZE, SS, render


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


def test_a_face_is_an_rgba_image_on_a_transparent_background():
    image = render(sample_attributes(np.random.default_rng(0)))
    alpha = np.asarray(image)[..., 3]
    assert image.mode == "RGBA" and image.size == (SIZE, SIZE) and SS > 1
    assert alpha[0, 0] == 0 and alpha[SIZE // 2, SIZE // 2] == 255
