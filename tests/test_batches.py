"""The one shape of a dataset element (a Batch dict read by name), and the pipelines that yield it."""

import numpy as np
import pytest

from cartoon_vae import load_config
from cartoon_vae.batches import as_batch, make_datasets, make_training_datasets
from cartoon_vae.synthetic import make_dataset

from .conftest import ROOT


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    out = tmp_path_factory.mktemp("faces") / "set"
    make_dataset(out, n=12, seed=2, workers=1, progress=False)
    return load_config(ROOT / "configs" / "paper.yaml", [f"data.dir={out}", "data.image_size=32", "data.batch_size=4",
                                                          "data.val_fraction=0.25", "train.epochs=2"])


def test_images_alone_are_a_batch_and_a_batch_is_itself():
    x = np.zeros((2, 4, 4, 3), "float32")
    assert as_batch(x)["image"] is x and as_batch((x,))["image"] is x and as_batch({"image": x})["image"] is x
    assert as_batch(({"image": x, "labels": x},))["labels"] is x  # what Keras' fit passes for a dict of arrays
    with pytest.raises(TypeError, match="a tuple of 2"):
        as_batch((x, x))


def test_every_pipeline_yields_batches_with_exactly_the_keys_asked_for(config):
    table = np.eye(12, dtype=np.float32)  # face i's "labels" are the one-hot of its own index
    plain, _ = make_datasets(config)
    assert set(next(iter(plain))) == {"image"}
    train, val = make_datasets(config, with_index=True, shuffle_train=False, labels=table)
    for batch in val:
        assert set(batch) == {"image", "index", "labels"}
        image, index, labels = np.asarray(batch["image"]), np.asarray(batch["index"]), np.asarray(batch["labels"])
        assert image.dtype == np.float32 and image.shape[1:] == (32, 32, 3) and 0 <= image.min() <= image.max() <= 1
        assert labels.argmax(1).tolist() == index.tolist()  # each face's own row of the table
    stream, val, steps = make_training_datasets(config, labels=table)
    assert steps == 3 and set(next(iter(stream))) == {"image", "labels"}
