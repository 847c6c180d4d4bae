"""``cartoon-vae explore``: a local page to steer a trained model's latent space, and the JSON/PNG API behind it.

The run is loaded once; what the page asks for is computed on demand and kept: held-out faces and
their codes, each (attribute, value) direction (the same :func:`cartoon_vae.edit.run_direction` and
:func:`cartoon_vae.edit.edit_to_class` that ``cartoon-vae edit`` uses), the samplers (from the run
folder's caches, :func:`cartoon_vae.samplers.fitted_samplers`), and the principal directions of the
training codes (scikit-learn's PCA). The run folder is only read, except the caches the other
commands also write, under the writer lock for the moment of writing; a run that ``train`` still
holds is explored from its last complete checkpoint, its caches kept in memory.

Its JSON/PNG API is listed in :mod:`cartoon_vae.server`.

A conditional model (``model.conditional``) decodes every code with labels, ``{attribute: value}`` for each
conditioned attribute (``info["conditional"]``; null for the paper's model): a face's own come with it,
and an edit of a conditioned attribute is a label swap (``amount`` 1; between 0 and 1 a blend) instead of
a move of z. An upload's labels are read by the probe.

The HTTP server in front of it, with what it promises a local web server should, is :mod:`cartoon_vae.server`.

Example:
    $ cartoon-vae explore --run runs/demo --probe probes/demo
"""

from __future__ import annotations

import base64
import io
import threading
from pathlib import Path

import numpy as np

from .edit import needs_direction
from .figures import png_bytes

MAX_CODE = 1e3           # the largest |z_i| accepted (codes live within a few units of 0)
MAX_AMOUNT = 3.0         # how far past the class mean an edit may be pushed
MAX_STEPS = 32           # interpolation frames
MAX_UPLOAD_PIXELS = 2048 * 2048  # an upload decodes to at most 16 MiB of RGBA (Cartoon Set faces are 500 x 500)


class BadRequest(ValueError):
    """A request the explorer refuses: its message is the JSON error, its ``status`` the HTTP code."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def data_url(image) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode()


class Explorer:
    """The model side of the page: a loaded run, its held-out faces, directions, samplers and PCA."""

    def __init__(self, run_dir, probe_dir=None, faces=24, components=12, log=print):
        import tensorflow as tf

        from .inference import traced
        from .loaded import open_run

        self.run_dir, self.log = Path(run_dir), log
        run = open_run(run_dir, heldout_limit=faces)
        self.vae, self.config, self.attrs = run.vae, run.config, run.attrs
        self.probe = None
        if probe_dir:
            from .probe import Probe

            self.probe = Probe.load(probe_dir)
            self.probe.check_compatible(self.config)
        log(f"encoding {run_dir}'s training and held-out faces ...")
        self.train_means, self.train_labels = run.train.means, run.train.rows if self.attrs.names else None
        self.face_images, self.face_means = run.heldout.images, run.heldout.means
        # A conditional model decodes z with labels: each face's own, changed by a label-swap edit.
        self.conditioned = self.vae.conditioned
        self.face_labels = run.heldout.rows if self.attrs.names else None
        self.values = {}  # the attributes an edit can move: name -> the values the training faces show
        for k, name in enumerate(self.attrs.names):
            seen = sorted(int(v) for v in np.unique(self.train_labels[:, k]) if v >= 0)
            if len(seen) >= 2:
                self.values[name] = seen
        self.components, self.spreads = self._pca(components)
        self._directions, self._samplers, self._held = {}, {}, None
        self._cache, self._lock, self._sampler_lock = {}, threading.Lock(), threading.Lock()
        d, c = int(self.vae.latent_dim), len(self.label_vector(self.labels_of(0))) if self.conditioned else 0
        self._decoder = traced((lambda zy: self.vae.decode(zy[:, :d], zy[:, d:])) if c else self.vae.decode,
                               (None, d + c))
        if self.probe is not None:
            size = int(self.probe.info["image_size"])
            self._reader = traced(lambda x: self.probe.model(tf.image.resize(x, (size, size), method="area")
                                                             if x.shape[1] != size else x, training=False),
                                  (None, int(self.vae.image_size), int(self.vae.image_size), 3))

    def _pca(self, k):
        from sklearn.decomposition import PCA

        pca = PCA(n_components=min(k, *self.train_means.shape), random_state=0).fit(self.train_means)
        return pca.components_.astype(np.float32), np.sqrt(pca.explained_variance_).astype(np.float32)

    # --- what the page can ask for ------------------------------------------------------------

    def info(self) -> dict:
        from .samplers import SAMPLERS

        from .counterfactual import has_renderer
        from .synthetic import ATTRIBUTES, VALUE_NAMES

        drawn = has_renderer(self.config.data.dir)  # the embedded generator's faces: its variants have names
        attributes = []
        for name, values in self.values.items():
            n = int(self.attrs.n_variants[self.attrs.names.index(name)])
            words = VALUE_NAMES.get(name) if drawn and dict(ATTRIBUTES).get(name) == n else None
            attributes.append({"name": name, "values": values, "n_variants": n,
                               "names": [words[v] if words else str(v) for v in values]})
        return {"run": str(self.run_dir), "latent_dim": int(self.vae.latent_dim),
                "image_size": int(self.vae.image_size), "faces": len(self.face_means), "attributes": attributes,
                "samplers": list(SAMPLERS), "components": len(self.components), "probe": self.probe is not None,
                "conditional": self.conditioned}

    def face(self, i) -> dict:
        i = self._face_index(i)
        z, labels = self.face_means[i], self.labels_of(i)
        return {"z": z.tolist(), "labels": labels, "original": data_url(self.face_images[i]),
                "reconstruction": data_url(self.decode(z, labels))}

    def labels_of(self, i):
        """Held-out face ``i``'s {attribute: value} of the conditioned attributes (None: unconditional)."""
        return self._own_labels(self.face_labels[i]) if self.conditioned else None

    def face_png(self, i) -> bytes:
        return png_bytes(self.face_images[self._face_index(i)])

    def decode(self, z, labels=None) -> np.ndarray:
        """The face of code ``z``; a conditional model's with ``labels`` ({attribute: value} or one-hot rows
        as :meth:`label_vector` gives)."""
        zy = np.asarray(z, np.float32)
        if self.conditioned:
            y = labels if isinstance(labels, np.ndarray) else self.label_vector(labels)
            zy = np.concatenate([zy, y])
        return np.asarray(self._decoder(zy[None]))[0]

    def label_vector(self, labels) -> np.ndarray:
        """A conditional model's one-hot labels from a request's ``{attribute: value}`` (checked)."""
        if not isinstance(labels, dict) or sorted(labels) != sorted(self.conditioned):
            raise BadRequest(f"labels: this model is conditional: give an object with a value for each of "
                             f"{', '.join(self.conditioned)}")
        rows = np.zeros((1, len(self.attrs.names)), np.int64)
        for name, value in labels.items():
            n = int(self.attrs.n_variants[self.attrs.names.index(name)])
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n:
                raise BadRequest(f"labels: {name} has values 0..{n - 1}, got {str(value)[:40]}")
            rows[0, self.attrs.names.index(name)] = value
        return self.vae.labels_of(self.attrs.names, rows)[0]

    def _own_labels(self, row):
        """{attribute: value} of the conditioned attributes of an attribute row (None: unconditional)."""
        if not self.conditioned:
            return None
        return {name: int(row[self.attrs.names.index(name)]) for name in self.conditioned}

    def view(self, base, edits=(), hold=False, pcs=(), labels=None, face=None) -> dict:
        """``base`` moved by each edit (a conditioned attribute's edit moves its one-hot label from the face's
        ``labels`` towards the target by ``amount``: 1 is the label swap), then along the principal directions.
        With ``face``, the held-out face that ``base`` is the code of, also the edit on its photo and,
        where the embedded generator drew the face, the true edited face and a heat map of the difference
        (:meth:`beside`)."""
        z = self.code(base)
        y = self.label_vector(labels) if self.conditioned else None
        for e in edits:
            if not isinstance(e, dict):
                raise BadRequest("edits: each must be an object with attribute, to, amount")
            if isinstance(e.get("attribute"), str) and not needs_direction(self.vae, e["attribute"]):
                y = self.relabel(y, e.get("attribute"), e.get("to"), e.get("amount", 1.0))
            else:
                z = self.edit(z, e.get("attribute"), e.get("to"), e.get("amount", 1.0), hold)
        pcs = self._numbers(pcs, "pcs", len(self.components), exact=False)
        z = z + (np.asarray(pcs, np.float32) * self.spreads[:len(pcs)]) @ self.components[:len(pcs)]
        image = self.decode(z, y)
        out = {"z": z.tolist(), "image": data_url(image), "probe": self.read(image)}
        if face is not None:
            out.update(self.beside(face, image, edits, any(pcs)))
        return out

    def beside(self, face, image, edits, moved=False) -> dict:
        """What the page shows beside the decoded edit ``image`` of held-out ``face``: the edit on the photo
        (``photo_method``: :func:`cartoon_vae.edit.photo_method`, composited where a principal direction moved), and
        the truth the embedded generator draws with each edit's
        target (every edit at amount 1, no principal direction ``moved``) with a heat map of the photo edit's
        difference from it (:func:`cartoon_vae.figures.heat_map`); else ``truth`` is null and a note says why."""
        from .edit import ON_PHOTO, photo_method
        from .figures import heat_map

        if isinstance(face, bool) or not isinstance(face, int):
            raise BadRequest("face: must be a held-out face's number")
        i = self._face_index(face)
        if ("reconstruction", i) not in self._cache:  # drawn once per face, not on every slider move
            self._cache[("reconstruction", i)] = self.decode(self.face_means[i], self.labels_of(i))
        named = [e.get("attribute") for e in edits if isinstance(e, dict)]
        method = "composite" if moved else photo_method(self.vae, named)  # a principal direction: a change of shape
        photo = ON_PHOTO[method](self.face_images[i][None], self._cache[("reconstruction", i)][None], image[None])[0]
        out = {"photo": data_url(photo), "photo_method": method, "truth": None, "difference": None}
        truth, out["truth_note"] = self.truth(i, edits, moved)
        if truth is not None:
            out["truth"], out["difference"] = data_url(truth), data_url(heat_map(photo[None], truth[None])[0])
        return out

    def truth(self, i, edits, moved=False):
        """(the true edited face or None, why not): held-out face ``i`` drawn by the embedded generator with each
        edit's attribute at its target."""
        from .counterfactual import has_renderer, true_counterfactual

        if not has_renderer(self.config.data.dir) or self.face_labels is None:
            return None, "no true face: the generator did not draw this data set"
        if moved or any(not isinstance(e, dict) or e.get("amount", 1.0) != 1.0 for e in edits):
            return None, "no true face: it is defined for whole edits (amount 1) and no principal direction"
        attributes = dict(zip(self.attrs.names, (int(v) for v in self.face_labels[i])))
        for e in edits:
            name, to = self._attribute(e.get("attribute"), e.get("to"))
            attributes[name] = to
        key = ("truth", tuple(sorted(attributes.items())))
        if key not in self._cache:
            self._cache[key] = true_counterfactual(attributes, self.config.data)
        return self._cache[key], "the face the generator draws with these attributes"

    def relabel(self, y, attribute, to, amount=1.0) -> np.ndarray:
        """The one-hot labels ``y`` with ``attribute``'s block moved towards value ``to`` by ``amount`` (1: the
        label swap of :func:`cartoon_vae.edit.relabel`; between 0 and 1 a blend of the two labels)."""
        attribute, to = self._attribute(attribute, to)
        amount = self._number(amount, "amount", -MAX_AMOUNT, MAX_AMOUNT)
        block = self.vae.label_block(attribute)
        y = y.copy()
        y[block] = y[block] + amount * (np.eye(block.stop - block.start, dtype=np.float32)[to] - y[block])
        return y

    def edit(self, z, attribute, to, amount=1.0, hold=False) -> np.ndarray:
        from .directions import edit_to_class

        z = self.code(z)
        if isinstance(attribute, str) and not needs_direction(self.vae, attribute):  # a label, not a direction of z
            raise BadRequest(f"attribute: {attribute} is a label of this conditional model; edit it as a label swap "
                             f"through /api/view")
        amount = self._number(amount, "amount", -MAX_AMOUNT, MAX_AMOUNT)
        return edit_to_class(z[None], self.direction(attribute, to, bool(hold)), amount)[0]

    def direction(self, attribute, to, hold=False) -> dict:
        """The direction ``cartoon-vae edit`` moves along (:func:`cartoon_vae.edit.run_direction`), fitted
        once per (attribute, value); ``hold``: every other attribute's classifier held fixed."""
        from .directions import hold as hold_others
        from .edit import run_direction

        attribute, to = self._attribute(attribute, to)
        key = (attribute, to, hold)
        with self._lock:
            if key not in self._directions:
                free = self._directions.get((attribute, to, False))
                if free is None:
                    free = run_direction(self.attrs.names, self.train_labels, self.train_means, attribute, to,
                                         where=str(self.run_dir))
                    self._directions[(attribute, to, False)] = free
                if hold:
                    self._directions[key] = hold_others(free, [c for n, c in self._classifiers().items()
                                                               if n != attribute])
            return self._directions[key]

    def swatch(self, attribute, to) -> bytes:
        """The decoded mean code of the training faces with this value (a conditional model: with their
        mean labels, so the value's own label is one-hot)."""
        attribute, to = self._attribute(attribute, to)
        key = ("swatch", attribute, to)
        if key not in self._cache:
            chosen = self.train_labels[:, self.attrs.names.index(attribute)] == to
            y = None
            if self.conditioned:
                y = self.vae.labels_of(self.attrs.names, self.train_labels[chosen]).mean(0)
            self._cache[key] = png_bytes(self.decode(self.train_means[chosen].mean(0), y))
        return self._cache[key]

    def sample(self, name, seed=0) -> dict:
        """{"z": a code from sampler ``name``, "labels": a random training face's (a conditional model)}."""
        from .samplers import SAMPLERS

        if not isinstance(name, str) or name not in SAMPLERS:
            raise BadRequest(f"sampler: must be one of {', '.join(SAMPLERS)}, got {str(name)[:40]!r}")
        seed = int(self._number(seed, "seed", 0, 2 ** 31 - 1))
        z = self._fitted_sampler(name).sample(1, np.random.default_rng(seed))[0]
        row = self.train_labels[np.random.default_rng(seed).integers(len(self.train_labels))] \
            if self.conditioned else None
        return {"z": z.tolist(), "labels": None if row is None else self._own_labels(row)}

    def encode(self, body: bytes) -> np.ndarray:
        """The mean code of an uploaded image, read by the project's one reader and preprocessed as
        training preprocesses (a non-image, truncated or over-large upload is a BadRequest)."""
        import tensorflow as tf

        from .data import preprocess
        from .images import read_rgba, why_unreadable

        try:
            rgba = read_rgba(io.BytesIO(body), max_pixels=MAX_UPLOAD_PIXELS)
        except Exception as e:  # PIL raises many types for a broken file
            raise BadRequest(f"upload: {why_unreadable(e)}") from None
        x = np.asarray(preprocess(tf.constant(rgba), self.config.data), np.float32)[None] / 255.0
        if not self.conditioned:
            return {"z": np.asarray(self.vae.encode(x, training=False)[0])[0].tolist(), "labels": None}
        if self.probe is None:  # the encoder needs the face's labels, and only the probe can read them
            raise BadRequest("upload: this model is conditional; start the explorer with --probe so it can read "
                             "the uploaded face's labels")
        read = self.read(x[0])
        labels = {name: read[name]["value"] for name in self.conditioned}
        y = self.label_vector(labels)[None]
        return {"z": np.asarray(self.vae.encode(x, y, training=False)[0])[0].tolist(), "labels": labels}

    def interpolate(self, z0, z1, steps=8, labels0=None, labels1=None) -> list:
        """Frames from z0 to z1 (a conditional model's labels blend from ``labels0`` to ``labels1`` alongside)."""
        from .latent import interpolate

        steps = int(self._number(steps, "steps", 2, MAX_STEPS))
        zs = interpolate(self.code(z0), self.code(z1), steps)
        if not self.conditioned:
            return [data_url(self.decode(z)) for z in zs]
        ys = interpolate(self.label_vector(labels0), self.label_vector(labels1), steps)
        return [data_url(self.decode(z, y)) for z, y in zip(zs, ys)]

    def read(self, image) -> dict | None:
        """The probe's reading of a face: per attribute, the most likely value and its probability."""
        if self.probe is None:
            return None
        heads = self._reader(np.asarray(image, np.float32)[None])
        return {n: {"value": int(np.argmax(heads[n][0])), "p": round(float(np.max(heads[n][0])), 3)}
                for n in self.probe.names}

    # --- checks and lazy fits ------------------------------------------------------------------

    def code(self, z) -> np.ndarray:
        """A code from a request (a list, checked) or from this explorer (an array, as it is)."""
        if isinstance(z, np.ndarray):
            return z.astype(np.float32)
        return np.asarray(self._numbers(z, "z", int(self.vae.latent_dim)), np.float32)

    @staticmethod
    def _number(value, name, low, high) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise BadRequest(f"{name}: must be a number in [{low:g}, {high:g}], got {str(value)[:40]}")
        return float(value)

    @staticmethod
    def _numbers(values, name, length, exact=True) -> list:
        ok = isinstance(values, list) and (len(values) == length if exact else len(values) <= length)
        if not ok or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) <= MAX_CODE
                             for v in values):
            raise BadRequest(f"{name}: must be a list of {'' if exact else 'at most '}{length} finite numbers "
                             f"in [-{MAX_CODE:g}, {MAX_CODE:g}]")
        return values

    def _attribute(self, attribute, to):
        if not isinstance(attribute, str) or attribute not in self.values:
            raise BadRequest(f"attribute: must be one of {', '.join(self.values)}, got {str(attribute)[:40]!r}")
        values = self.values[attribute]
        if isinstance(to, bool) or not isinstance(to, int) or to not in values:
            raise BadRequest(f"to: {attribute} has values {', '.join(map(str, values))}, got {str(to)[:40]}")
        return attribute, int(to)

    def _face_index(self, i) -> int:
        if not 0 <= i < len(self.face_means):
            raise BadRequest(f"face: must be in [0, {len(self.face_means) - 1}], got {i}", 404)
        return i

    def _classifiers(self) -> dict:
        from .directions import attribute_classifier

        if self._held is None:
            self.log("fitting every attribute's classifier, for 'hold the other attributes' ...")
            self._held = {}
            for k, name in enumerate(self.attrs.names):
                try:
                    self._held[name] = attribute_classifier(self.train_means, self.train_labels[:, k])
                except ValueError:  # a single value: nothing to hold
                    pass
        return self._held

    def _fitted_sampler(self, name):
        """Sampler ``name``, read from its cache or fitted once, on its own lock: the first draw of one sampler
        (a second-stage VAE takes seconds to fit) neither fits the others nor holds up edits."""
        from .runs import RunError
        from .samplers import fitted_samplers

        with self._sampler_lock:
            if name not in self._samplers:
                n = self.config.sample.stats_images
                try:
                    fitted = fitted_samplers(self.run_dir, self.vae, self.config, [name], n, codes=self.train_means[:n])
                except RunError:  # train holds the folder: fit here, keep the fit in memory
                    fitted = fitted_samplers(self.run_dir, self.vae, self.config, [name], n,
                                             codes=self.train_means[:n], write=False)
                self._samplers[name] = fitted[name]
            return self._samplers[name]
