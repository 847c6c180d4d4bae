"""Running the model over batches: encode (with or without indices, up to a limit), decode, first images."""

import numpy as np
import pytest

from cartoon_vae.inference import decode, encode_means, encode_split, first_images, reconstruct, traced


class Doubler:
    """encode(x) = (2x, x); decode(z) = z + 1; records the batch sizes it saw."""

    def __init__(self):
        self.sizes = []

    def encode(self, x, labels=None, training=False):
        self.sizes.append(len(x))
        return np.asarray(x) * 2.0, np.asarray(x)

    def decode(self, z, labels=None):
        self.sizes.append(len(z))
        return np.asarray(z) + 1.0


IMAGES = [np.array([[1.0, -3.0]]), np.array([[0.5, 4.0], [2.0, 0.0]]), np.array([[9.0, 9.0]])]
BATCHES = [{"image": b} for b in IMAGES]  # cartoon_vae.batches.Batch dicts


def test_encode_means_streams_up_to_the_limit():
    vae = Doubler()
    means = list(encode_means(vae, BATCHES, limit=2))
    assert [len(m) for m in means] == [1, 1] and vae.sizes == [1, 1]  # the second batch cut, the third unread
    np.testing.assert_allclose(np.concatenate(means), [[2.0, -6.0], [1.0, 8.0]])


def test_encode_split_keeps_indices_and_images():
    batches = [{"image": b, "index": np.arange(len(b)) + 10 * k} for k, b in enumerate(IMAGES)]
    x, means, log_vars, idx = encode_split(Doubler(), batches)
    np.testing.assert_allclose(x, np.concatenate(IMAGES))
    np.testing.assert_allclose(means, 2 * x) and np.testing.assert_allclose(log_vars, x)
    assert idx.tolist() == [0, 10, 11, 20]
    x, means, _, idx = encode_split(Doubler(), BATCHES, limit=3, keep_images=False)
    assert x is None and idx is None and len(means) == 3
    with pytest.raises(ValueError, match="no images"):
        encode_split(Doubler(), [])


def test_decode_in_batches_and_reconstruct_decodes_the_means():
    vae = Doubler()
    z = np.arange(10, dtype=np.float32).reshape(5, 2)
    np.testing.assert_allclose(decode(vae, z, batch_size=2), z + 1)
    assert vae.sizes == [2, 2, 1]
    np.testing.assert_allclose(reconstruct(Doubler(), IMAGES[1]), 2 * IMAGES[1] + 1)


def test_first_images_of_plain_and_indexed_batches():
    np.testing.assert_allclose(first_images(BATCHES, 3), np.concatenate(IMAGES)[:3])
    indexed = [{"image": b, "index": np.arange(len(b))} for b in IMAGES]
    np.testing.assert_allclose(first_images(indexed, 2), np.concatenate(IMAGES)[:2])


def test_traced_gives_the_eager_answer():
    f = traced(lambda z: z * 2.0 + 1.0, (None, 3))
    z = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(np.asarray(f(z)), z * 2 + 1)


def test_labelled_batches_are_encoded_and_decoded_with_their_labels():
    from cartoon_vae.inference import sample_labels

    class Labelled(Doubler):
        def encode(self, x, labels=None, training=False):
            return np.asarray(x) + np.asarray(labels).sum(1, keepdims=True), np.asarray(x)

        def decode(self, z, labels=None):
            return np.asarray(z) * np.asarray(labels)[:, :1]

    y = [np.eye(2, dtype=np.float32)[[0]], np.eye(2, dtype=np.float32)[[1, 0]], np.eye(2, dtype=np.float32)[[1]]]
    x, means, _, idx = encode_split(Labelled(), [{"image": b, "labels": l} for b, l in zip(IMAGES, y)])
    assert idx is None and np.allclose(means, x + 1)
    _, means, _, idx = encode_split(Labelled(), [{"image": b, "index": np.arange(len(b)), "labels": l}
                                                 for b, l in zip(IMAGES, y)])
    assert idx.tolist() == [0, 0, 1, 0]
    images, labels = first_images([{"image": b, "labels": l} for b, l in zip(IMAGES, y)], 2, with_labels=True)
    assert labels.tolist() == [[1, 0], [0, 1]]
    assert decode(Labelled(), np.ones((2, 2)), labels).tolist() == [[1, 1], [0, 0]]
    table = np.eye(3, dtype=np.float32)
    drawn = sample_labels(table, 5, seed=0)
    assert drawn.shape == (5, 3) and np.allclose(drawn, sample_labels(table, 5, seed=0))
    assert sample_labels(None, 5, 0) is None
