"""The conditional model: one-hot labels from the data, the label losses, the model's label inputs, its readers
(the latent adversary, the label critic) and their saving."""

import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from cartoon_vae import build_vae, load_config
from cartoon_vae.batches import make_datasets, make_training_datasets
from cartoon_vae.conditional import ConditionalVAE, conditioning, label_table, one_hot
from cartoon_vae.data import DataError, read_attributes
from cartoon_vae.model import CartoonVAE
from cartoon_vae.synthetic import make_dataset

from .conftest import ROOT, small_overrides

PAPER = ROOT / "configs" / "paper.yaml"


def _cfg(folder, *extra):
    return load_config(PAPER, [f"data.dir={folder}", "data.image_size=64", "data.batch_size=4",
                               "data.val_fraction=0.25", *extra])


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    out = tmp_path_factory.mktemp("faces") / "set"
    make_dataset(out, n=16, seed=5, workers=1, progress=False)
    return out


def test_one_hot_lays_out_one_block_per_attribute_in_the_models_order():
    y = one_hot((("glasses", 3), ("hair", 2)), ["hair", "glasses"], np.array([[1, 2], [0, 0]]))
    assert y.tolist() == [[0, 0, 1, 0, 1], [1, 0, 0, 1, 0]] and y.dtype == np.float32
    with pytest.raises(ValueError, match=r"hair: values must be in \[0, 1\]"):
        one_hot((("hair", 2),), ["hair"], np.array([[2]]))
    with pytest.raises(ValueError, match="'hats', which this data lacks"):
        one_hot((("hats", 2),), ["hair"], np.array([[0]]))


def test_a_conditional_config_gives_each_face_its_one_hot_labels(faces, tmp_path):
    cfg = _cfg(faces, "model.conditional=[glasses,hair_color]")
    attrs = read_attributes(faces)
    pairs, table = conditioning(cfg)
    assert pairs == (("glasses", 6), ("hair_color", 10)) and table.shape == (16, 16)
    for ds in make_datasets(cfg, with_index=True, labels=table):
        for batch in ds:
            idx, y = np.asarray(batch["index"]), np.asarray(batch["labels"])
            assert y.sum(1).tolist() == [2.0] * len(idx)  # one hot per attribute
            assert np.argmax(y[:, :6], 1).tolist() == attrs.column("glasses")[idx].tolist()
            assert np.argmax(y[:, 6:], 1).tolist() == attrs.column("hair_color")[idx].tolist()
    train, val, _ = make_training_datasets(cfg, labels=table)
    batch = next(iter(train))
    x, y = batch["image"], batch["labels"]
    assert x.shape[0] == y.shape[0] and y.shape[1] == 16 and y.dtype == "float32"
    assert conditioning(_cfg(faces)) is None  # the paper's model: no labels
    with pytest.raises(DataError, match="'hats'.*glasses"):
        conditioning(_cfg(faces, "model.conditional=[hats]"))
    partial = tmp_path / "partial"
    shutil.copytree(faces, partial)
    os.remove(partial / sorted(p.name for p in partial.glob("*.csv"))[0])
    with pytest.raises(DataError, match="no attribute CSV beside it"):
        conditioning(_cfg(partial, "model.conditional=[glasses]"))


def test_a_conditional_model_needs_labels_uses_them_and_keeps_them_on_save(tmp_path):
    vae = ConditionalVAE(image_size=32, latent_dim=4, encoder_filters=(8, 8), decoder_filters=(8,),
                         kl="exact", conditional=[("glasses", 3), ("hair", 2)], seed=0)
    assert vae.label_dim == 5
    y = vae.labels_of(["hair", "glasses"], np.array([[1, 2], [0, 0]]))
    assert y.tolist() == [[0, 0, 1, 0, 1], [1, 0, 0, 1, 0]]  # in the model's order: glasses, then hair
    with pytest.raises(ValueError, match=r"glasses: values must be in \[0, 2\]"):
        vae.labels_of(["glasses", "hair"], np.array([[3, 0]]))
    x = np.random.RandomState(0).rand(2, 32, 32, 3).astype("float32")
    with pytest.raises(ValueError, match="conditional on glasses, hair"):
        vae.encode(x)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = vae.fit({"image": x, "labels": y}, batch_size=2, epochs=2, verbose=0)  # train_step on a Batch
    assert all(np.isfinite(history.history["loss"]))
    mean, _ = vae.encode(x, y)
    same, swapped = np.asarray(vae.decode(mean, y)), np.asarray(vae.decode(mean, y[::-1]))
    assert np.abs(same - swapped).max() > 1e-4  # the decoder reads the labels
    vae.save(tmp_path / "c.keras")
    loaded = keras.models.load_model(tmp_path / "c.keras")
    assert loaded.conditional == (("glasses", 3), ("hair", 2))
    np.testing.assert_allclose(np.asarray(loaded.decode(mean, y)), same, atol=1e-6)


def _tiny_conditional(paper_config_path, weight):
    """A 32x32 model conditional on glasses (3 values) and hair (2) with ``weight`` (a loss key) set to 10, and a
    batch of 8 faces with their labels."""
    cfg = load_config(paper_config_path, [*small_overrides(size=32), "model.encoder_filters=[8,8]",
                                          "model.decoder_filters=[8]", "model.conditional=[glasses,hair]",
                                          f"loss.{weight}=10"])
    vae = build_vae(cfg, label_sizes=[3, 2])
    x = np.random.RandomState(0).rand(8, 32, 32, 3).astype("float32")
    return vae, x, vae.labels_of(["glasses", "hair"], np.array([[i % 3, i % 2] for i in range(8)]))


def _learns_and_loads_back(vae, x, y, network, metric, path):
    """Fits one epoch: ``network`` (a reader of the labels) must change and ``metric`` be logged; then saves and
    loads the model with every warning an error ("Skipping variable loading for optimizer ..." would fail)."""
    import warnings

    before = [np.asarray(w).copy() for w in network.weights]
    history = vae.fit({"image": x, "labels": y}, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history[metric][0])
    assert all(not np.allclose(b, np.asarray(w)) for b, w in zip(before, network.weights))  # it learns
    vae.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return keras.models.load_model(path)


def test_the_label_critic_trains_on_real_faces_its_swap_term_reaches_the_decoder_and_loads_back(tmp_path,
                                                                                               paper_config_path):
    vae, x, y = _tiny_conditional(paper_config_path, "swap_weight")
    assert vae.critic is not None and vae.critic.output_shape == (None, 5)
    with tf.GradientTape() as tape:  # the swap term's gradient reaches the decoder (the critic is not trained by it)
        ce = ops.mean(vae.swap_cross_entropy(vae.encode(x, y)[0], y))
    grads = tape.gradient(ce, vae.decoder.trainable_weights)
    assert all(g is not None for g in grads) and max(float(ops.max(ops.abs(g))) for g in grads) > 0
    loaded = _learns_and_loads_back(vae, x, y, vae.critic, "swap_ce", tmp_path / "s.keras")
    assert loaded.swap_weight == 10 and int(loaded.critic_optimizer.iterations) == 2
    for a, b in zip(loaded.critic.weights, vae.critic.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert type(build_vae(load_config(paper_config_path, [*small_overrides(), "loss.swap_weight=10"]))) is CartoonVAE


def test_build_vae_of_a_conditional_config_needs_the_label_sizes(paper_config_path):
    cfg = load_config(paper_config_path, [*small_overrides(), "model.conditional=[glasses]"])
    with pytest.raises(ValueError, match="label_sizes"):
        build_vae(cfg)
    assert build_vae(cfg, label_sizes=[12]).label_dim == 12 and isinstance(build_vae(cfg, label_sizes=[12]),
                                                                            ConditionalVAE)


def test_the_latent_adversary_trains_and_both_optimizers_load_back(tmp_path, paper_config_path):
    vae, x, y = _tiny_conditional(paper_config_path, "adversary_weight")
    loaded = _learns_and_loads_back(vae, x, y, vae.adversary, "adversary_ce", tmp_path / "a.keras")
    assert int(loaded.optimizer.iterations) == int(loaded.adversary_optimizer.iterations) == 2
    for a, b in zip(loaded.optimizer.variables, vae.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert type(build_vae(load_config(paper_config_path, [*small_overrides(), "loss.adversary_weight=10"]))) is CartoonVAE


def test_the_adversarys_cross_entropy_and_the_encoders_confusion_by_hand():
    from cartoon_vae.conditional import confusion, label_cross_entropy

    logits = np.array([[2.0, 0.0, 1.0, 0.0]], np.float32)  # two attributes: 2 values, then 2 values
    labels = np.array([[1.0, 0.0, 0.0, 1.0]], np.float32)
    first, second = np.log1p(np.exp(-2.0)), np.log1p(np.exp(1.0))  # -log softmax of the true value, each block
    assert float(label_cross_entropy(labels, logits, [2, 2])[0]) == pytest.approx(first + second, rel=1e-5)
    uniform = 0.5 * (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(2.0))) + 0.5 * (np.log1p(np.exp(-1.0)) + np.log1p(np.exp(1.0)))
    assert float(confusion(logits, [2, 2])[0]) == pytest.approx(uniform, rel=1e-5)
    assert float(confusion(np.zeros((1, 4), np.float32), [2, 2])[0]) == pytest.approx(2 * np.log(2), rel=1e-6)  # its minimum


def test_swapped_labels_shuffle_each_attribute_over_the_batch_on_its_own():
    import keras

    from cartoon_vae.conditional import swapped_labels

    rows = np.array([[i % 3, i % 3] for i in range(64)])  # the two attributes agree on every face
    labels = np.concatenate([np.eye(3)[rows[:, 0]], np.eye(4)[rows[:, 1]]], 1).astype(np.float32)
    out = np.asarray(swapped_labels(labels, [3, 4], seed=keras.random.SeedGenerator(0)))
    assert (out.sum(1) == 2).all()  # still one value per attribute
    for block in (slice(0, 3), slice(3, 7)):  # each block is a permutation of the batch's own values ...
        np.testing.assert_array_equal(np.sort(out[:, block].argmax(1)), np.sort(labels[:, block].argmax(1)))
    moved = [(out[:, b].argmax(1) != labels[:, b].argmax(1)).mean() for b in (slice(0, 3), slice(3, 7))]
    assert min(moved) > 0.4  # ... that moves most faces to another face's value
    assert (out[:, :3].argmax(1) != out[:, 3:].argmax(1)).mean() > 0.4  # the blocks are shuffled apart


