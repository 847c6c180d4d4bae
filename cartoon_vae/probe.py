"""The attribute probe: a small CNN that reads every Cartoon Set attribute from an image.

It is this project's feature extractor (there is no ImageNet network to download):
its penultimate layer ("features") gives FD_attr / KID_attr / precision / recall,
and its softmax heads judge attribute accuracy of reconstructions, attribute
histograms of samples, and the success of attribute edits.

A probe folder holds ``probe.keras`` and ``probe.json`` (attribute names and variant
counts, the data settings it was trained with, and its held-out accuracy).

Example:
    >>> probe = Probe.load("probes/demo")
    >>> feats, preds = probe.features_and_predictions(images)   # preds: {name: (n,) variant}
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .runs import RunError, atomic_path, write_text_atomic


def build_probe(image_size, names, n_variants, width=32, features=128):
    """Conv blocks -> global average pool -> Dense("features") -> one softmax head per attribute."""
    import keras
    from keras import layers

    image = keras.Input((image_size, image_size, 3), name="image")
    x = image
    for i, f in enumerate([width, width * 2, width * 4, width * 4], start=1):
        x = layers.Conv2D(f, 3, strides=2, padding="same", name=f"conv_{i}")(x)
        # momentum 0.9, not Keras' 0.99: a probe trains for few steps, and slow moving statistics
        # would leave its inference-mode normalisation far from the data.
        x = layers.BatchNormalization(momentum=0.9, name=f"bn_{i}")(x)
        x = layers.ReLU(name=f"relu_{i}")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    feats = layers.Dense(features, activation="relu", name="features")(x)
    heads = {name: layers.Dense(int(n), activation="softmax", name=name)(feats) for name, n in zip(names, n_variants)}
    return keras.Model(image, heads, name="attribute_probe")


def labelled_splits(config):
    """(train, val) datasets of (images, {attribute: label}) for the labelled images of ``config.data.dir`` (the
    probe's own: Keras' (x, y) pairs, not :class:`cartoon_vae.batches.Batch`)."""
    import tensorflow as tf

    from .batches import make_datasets
    from .data import DataError, read_attributes, split_indices

    attrs = read_attributes(config.data.dir)
    if not attrs.names:
        raise DataError(f"{config.data.dir}: no attribute CSVs beside the images; the probe needs them")
    for name, rows in zip(("training", "validation"),
                          split_indices(len(attrs.paths), config.data.val_fraction, config.data.seed)):
        if not attrs.labelled[rows].any():
            raise DataError(f"{config.data.dir}: the {name} split has no image with an attribute CSV "
                            f"({int(attrs.labelled.sum())} labelled in all); the probe needs labelled images in both")
    table = tf.constant(attrs.values)
    labelled = tf.constant(attrs.labelled)

    def with_labels(batch):
        images, index = batch["image"], batch["index"]
        keep = tf.gather(labelled, index)
        rows = tf.gather(table, tf.boolean_mask(index, keep))
        return tf.boolean_mask(images, keep), {n: rows[:, k] for k, n in enumerate(attrs.names)}

    train, val = make_datasets(config, with_index=True)
    return train.map(with_labels), val.map(with_labels), attrs


def with_reconstructions(train, runs, batch_size, seed=0):
    """The labelled training batches of ``train`` plus, for each run folder in ``runs``, the same
    faces as that run's VAE reconstructs them (decoding the latent means), shuffled together.

    A probe trained on originals alone reads a VAE's softer reconstructions worse than the faces
    themselves, and then every edit score measures the probe as much as the edit; with the
    reconstructions mixed in it learns to read decoded faces too. Images are held as uint8.
    """
    import tensorflow as tf

    from .inference import decode
    from .runs import load_run

    images, labels = [], []
    for x, y in train:
        images.append(np.round(np.asarray(x) * 255).astype(np.uint8))
        labels.append({n: np.asarray(v) for n, v in y.items()})
    x = np.concatenate(images)
    y = {n: np.concatenate([b[n] for b in labels]) for n in labels[0]}
    parts = [x]
    for run in runs:
        vae, _ = load_run(run)
        if vae.image_size != x.shape[1]:
            raise RunError(f"{run}: its model is {vae.image_size}x{vae.image_size}, the probe's data "
                           f"{x.shape[1]}x{x.shape[1]}; mix in runs trained with the probe's config")
        given = None
        if vae.conditioned:  # a conditional run encodes and decodes each face with its own labels
            try:
                given = vae.labels_of(list(y), np.stack([y[n] for n in y], 1))
            except ValueError as e:
                raise RunError(f"{run}: {e}") from None
        means = np.concatenate([np.asarray(vae.encode(x[i:i + 256].astype(np.float32) / 255,
                                                      None if given is None else given[i:i + 256])[0])
                                for i in range(0, len(x), 256)])
        parts.append(np.round(decode(vae, means, given) * 255).astype(np.uint8))
    y = {n: np.tile(v, len(parts)) for n, v in y.items()}
    ds = tf.data.Dataset.from_tensor_slices((np.concatenate(parts), y))
    ds = ds.shuffle(len(x) * len(parts), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    return ds.map(lambda a, b: (tf.cast(a, tf.float32) / 255.0, b)).prefetch(tf.data.AUTOTUNE)


def train_probe(config, out, epochs=15, learning_rate=2e-3, verbose=1, mix_runs=()) -> dict:
    """Train a probe on ``config.data`` (images resized and cropped as the config says) into ``out``;
    with ``mix_runs``, on those runs' reconstructions of the training faces too
    (:func:`with_reconstructions`)."""
    import keras

    out = Path(out)
    if (out / "probe.keras").exists():
        raise RunError(f"{out}: a probe is already there; choose another --out")
    from .batches import quiet_fit_warnings

    keras.utils.set_random_seed(config.train.seed)
    quiet_fit_warnings()
    train, val, attrs = labelled_splits(config)
    if mix_runs:
        train = with_reconstructions(train, mix_runs, config.data.batch_size, config.train.seed)
    model = build_probe(config.data.image_size, attrs.names, attrs.n_variants)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss={n: "sparse_categorical_crossentropy" for n in attrs.names},
                  metrics={n: "accuracy" for n in attrs.names})
    model.fit(train, validation_data=val, epochs=epochs, verbose=verbose)
    result = model.evaluate(val, verbose=0, return_dict=True)
    accuracy = {n: float(result[f"{n}_accuracy"]) for n in attrs.names}
    chance = {n: float(1.0 / k) for n, k in zip(attrs.names, attrs.n_variants)}
    info = {"names": list(attrs.names), "n_variants": [int(k) for k in attrs.n_variants],
            "image_size": config.data.image_size, "crop": config.data.crop, "data_dir": str(config.data.dir),
            "epochs": epochs, "mixed_reconstructions_of": [str(r) for r in mix_runs],
            "heldout_accuracy": accuracy, "chance": chance}
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "probe.keras") as tmp:
        model.save(tmp)
    write_text_atomic(out / "probe.json", json.dumps(info, indent=1) + "\n")
    return info


MAX_INFO_BYTES = 1 << 20  # probe.json is a few kilobytes


def read_info(path) -> dict:
    """probe.json, checked: names and variant counts that agree, an image size and crop in range.
    A bad file is a RunError naming it."""
    path = Path(path)

    def bad(why):
        return RunError(f"{path}: {why}; train the probe again")

    try:
        if path.stat().st_size > MAX_INFO_BYTES:
            raise bad(f"{path.stat().st_size:,} bytes, at most {MAX_INFO_BYTES:,}")
        info = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise bad(f"not readable JSON ({type(e).__name__})") from None
    if not isinstance(info, dict):
        raise bad("not a JSON object")
    names, counts = info.get("names"), info.get("n_variants")
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)
            and isinstance(counts, list) and len(counts) == len(names)
            and all(isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= 10_000 for k in counts)):
        raise bad("'names' and 'n_variants' must be lists of equal length (names, counts in [1, 10,000])")
    size, crop = info.get("image_size"), info.get("crop")
    if not (isinstance(size, int) and 8 <= size <= 2048):
        raise bad(f"'image_size' must be an integer in [8, 2048], got {size!r}")
    if not (isinstance(crop, (int, float)) and not isinstance(crop, bool) and 0 < crop <= 1):
        raise bad(f"'crop' must be a number in (0, 1], got {crop!r}")
    return info


class Probe:
    """A trained probe: features and per-attribute predictions for images in [0, 1]."""

    def __init__(self, model, info):
        import keras

        self.model, self.info = model, info
        self.names = info["names"]
        self.n_variants = dict(zip(self.names, info["n_variants"]))
        self._both = keras.Model(model.input, [model.get_layer("features").output, model.output])

    @classmethod
    def load(cls, folder):
        import keras

        folder = Path(folder)
        if not (folder / "probe.keras").exists() or not (folder / "probe.json").exists():
            raise RunError(f"{folder}: no probe here (probe.keras, probe.json); train one with "
                           f"cartoon-vae train-probe --data DIR --out {folder}")
        info = read_info(folder / "probe.json")
        try:
            model = keras.models.load_model(folder / "probe.keras")
        except Exception as e:  # Keras raises many types for a broken file
            raise RunError(f"{folder / 'probe.keras'}: cannot load the probe ({type(e).__name__}); train it "
                           f"again") from None
        heads = {n: int(model.output[n].shape[-1]) for n in info["names"] if isinstance(model.output, dict)
                 and n in model.output}
        if heads != dict(zip(info["names"], info["n_variants"])):
            raise RunError(f"{folder / 'probe.keras'}: its heads do not match probe.json's attributes; train it "
                           f"again")
        return cls(model, info)

    def check_compatible(self, config):
        if abs(self.info["crop"] - config.data.crop) > 1e-9:
            raise RunError(f"probe was trained with data.crop={self.info['crop']}, the run uses "
                           f"{config.data.crop}; train a probe with the run's config")

    def probabilities(self, images, batch_size=128) -> dict:
        """{attribute: (n, variants) softmax probabilities}; images are resized to the probe's size."""
        out = {n: [] for n in self.names}
        for x in self._batches(images, batch_size):
            heads = self._both(x, training=False)[1]
            for n in self.names:
                out[n].append(np.asarray(heads[n]))
        return {n: np.concatenate(v) for n, v in out.items()}

    def _batches(self, images, batch_size):
        import tensorflow as tf

        size = self.info["image_size"]
        for i in range(0, len(images), batch_size):
            x = tf.convert_to_tensor(np.asarray(images[i:i + batch_size], np.float32))
            yield tf.image.resize(x, (size, size), method="area") if x.shape[1] != size else x

    def features_and_predictions(self, images, batch_size=128):
        """(n, d) features and {attribute: (n,) predicted variant}; images are resized to the probe's size."""
        feats, preds = [], {n: [] for n in self.names}
        for x in self._batches(images, batch_size):
            f, heads = self._both(x, training=False)
            feats.append(np.asarray(f))
            for n in self.names:
                preds[n].append(np.asarray(heads[n]).argmax(-1))
        return np.concatenate(feats), {n: np.concatenate(v) for n, v in preds.items()}
