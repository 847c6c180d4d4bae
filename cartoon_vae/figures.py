"""The paper's figures and a few more, written as PNG.

fig4_reconstruction.png  Fig. 4: held-out faces (top) above their reconstructions (bottom), decoded
                         from the latent means.
fig5_uniform_samples.png Fig. 5: 10 faces decoded from min-max uniform latents.
samples_normal.png       10 faces decoded from z ~ N(0, I).
interpolation.png        the straight line between two held-out faces' latent means.
loss_curves.png          history.csv: loss, reconstruction MSE, KL (trained form and exact).
logs/projector/          TensorBoard's embedding projector of the training faces' latent means.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .inference import decode, reconstruct, sample_labels, training_labels
from .latent import interpolate
from .runs import atomic_path, read_history


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(image) -> bytes:
    """(H, W, 3) in [0, 1] as PNG bytes."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def heat_map(images, truths, full_scale=0.5) -> np.ndarray:
    """(n, S, S, 3) in [0, 1]: each image's per-pixel mean absolute difference from its truth, black (none) through
    red and yellow to white at ``full_scale`` (matplotlib's "inferno"): where an edit missed or left a ghost."""
    from matplotlib import colormaps

    diff = np.abs(np.asarray(images, np.float32) - np.asarray(truths, np.float32)).mean(-1)
    return colormaps["inferno"](np.clip(diff / full_scale, 0.0, 1.0))[..., :3].astype(np.float32)


def save_grid(images, path, rows, cols, row_labels=None, title=None, scale=1.6, col_labels=None):
    """Images (N, H, W, 3) in [0, 1] as a rows x cols grid, with optional row and column labels."""
    plt = _plt()
    images = np.clip(np.asarray(images, np.float32), 0, 1)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * scale, rows * scale + (0.4 if title else 0)),
                             squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([]), ax.set_yticks([])
        for s in ax.spines.values():
            s.set_visible(False)
        if k < len(images):
            ax.imshow(images[k], interpolation="lanczos" if images.shape[1] < 128 else "antialiased")
        if row_labels and k % cols == 0:
            ax.set_ylabel(row_labels[k // cols], fontsize=10)
        if col_labels and k < cols:
            ax.set_title(col_labels[k], fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path):
    plt = _plt()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def plot_loss_curves(rows, path):
    """Four panels from history rows: loss, reconstruction MSE, KL (trained form), exact KL; train and val."""
    plt = _plt()
    epochs = [r["epoch"] for r in rows]
    panels = [("loss", "loss (objective at full KL weight)"), ("reconstruction_loss", "reconstruction MSE per image"),
              ("kl_loss", "KL, trained form (nats)"), ("kl_exact", "exact KL, eq. 4 (nats)")]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    for ax, (key, label) in zip(axes, panels):
        for prefix, style in (("", "-"), ("val_", "--")):
            ys = [r.get(prefix + key, np.nan) for r in rows]
            ax.plot(epochs, ys, style, marker="o", ms=3, label="validation" if prefix else "train")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if key in ("loss", "reconstruction_loss") and all(np.isfinite(r.get(key, np.nan)) and r[key] > 0
                                                          for r in rows):
            ax.set_yscale("log")
    axes[0].legend()
    fig.tight_layout()
    _save(fig, path)


def write_run_figures(run_dir, vae, config, val_images, samplers, out_dir=None, val_labels=None):
    """Every figure of a run. ``val_images``: held-out faces (``val_labels``: their one-hot labels, for a
    conditional model); ``samplers``: fitted samplers by name (:func:`cartoon_vae.samplers.fitted_samplers`):
    ``minmax`` gives Fig. 5, ``normal``, ``gmm`` and ``two_stage`` (when present) a grid each. A conditional model's
    samples are decoded with the labels of random training faces (:func:`cartoon_vae.inference.sample_labels`)."""
    run_dir = Path(run_dir)
    out = Path(out_dir or run_dir)
    s = config.sample
    n_rec = min(s.reconstructions, len(val_images))
    y = None if val_labels is None else val_labels[:n_rec]
    save_grid(np.concatenate([val_images[:n_rec], reconstruct(vae, val_images[:n_rec], y)]),
              out / "fig4_reconstruction.png", 2, n_rec, ["original", "reconstruction"],
              "Fig. 4: held-out faces and their reconstructions")
    cols = (s.n + 1) // 2
    labels = sample_labels(training_labels(config), s.n, s.seed)
    given = "; labels of random training faces" if labels is not None else ""
    titles = {"minmax": ("fig5_uniform_samples.png", "Fig. 5: min-max uniform latent sampling "
                         f"({samplers['minmax'].count if 'minmax' in samplers else 0} images' latent means{given})"),
              "normal": ("samples_normal.png", f"z ~ N(0, I){given}"),
              "gmm": ("samples_gmm.png", "Gaussian mixture fitted to the training codes "
                      f"({int(samplers['gmm'].state['components']) if 'gmm' in samplers else 0} components{given})"),
              "two_stage": ("samples_two_stage.png", f"two-stage VAE: a second VAE fitted to the training codes{given}")}
    for name, (file, title) in titles.items():
        if name in samplers:
            z = samplers[name].sample(s.n, np.random.default_rng(s.seed))
            save_grid(decode(vae, z, labels), out / file, 2, cols, title=title)
    if len(val_images) >= 2:
        y = None if val_labels is None else val_labels[:2]
        mean, _ = vae.encode(val_images[:2], y, training=False)
        mean = np.asarray(mean)
        z = interpolate(mean[0], mean[1], s.interpolation_steps)
        y = None if y is None else interpolate(y[0], y[1], s.interpolation_steps)  # the labels move with z
        save_grid(decode(vae, z, y), out / "interpolation.png", 1, s.interpolation_steps,
                  title="interpolation between two held-out faces (latent means)")
    rows = read_history(run_dir / "history.csv")
    if rows:
        plot_loss_curves(rows, out / "loss_curves.png")


_SHORT = {"label_swap": "label swap", "class_mean": "class mean", "probability": "p = 0.9"}  # each edit, in a line
_ON_THE_PHOTO = {"on_photo": "on the photo", "composite": "composited", "recolour": "recoloured"}  # edit.ON_PHOTO's
EDIT_COLUMNS = {"label_swap": "label swap", "class_mean": "latent edit\n(class mean)",
                "probability": "latent edit\n(p = 0.9)",
                **{f"{m}_{how}": f"{short}\n{put}" for m, short in _SHORT.items() for how, put in _ON_THE_PHOTO.items()}}


def counterfactual_figure(images, path, attribute, to, title=None):
    """Rows of held-out faces; columns: the original, the true counterfactual the generator draws, and each
    edit beside a heat map of its difference from the truth (:func:`heat_map`: a ghost of a removed part is a
    bright outline) (``images``: (originals, truths, {column label or method name: edits}))."""
    originals, truths, edits = images
    columns, labels = [originals, truths], ["original", "true\ncounterfactual"]
    for m, edited in edits.items():
        columns += [edited, heat_map(edited, truths)]
        labels += [EDIT_COLUMNS.get(m, m.replace(" (", "\n(")), "vs. truth"]
    grid = np.stack(columns, 1).reshape(-1, *originals.shape[1:])
    save_grid(grid, path, len(originals), len(columns), col_labels=labels, title=title or f"{attribute} -> {to}")


def colour_figure(originals, reconstructions, per_face, path, faces=8):
    """The ``faces`` held-out faces whose worst region is farthest from its own colour: originals above their
    reconstructions, each column titled with that region and its CIELAB distance (:mod:`cartoon_vae.colour`)."""
    worst = per_face["worst"]
    order = [i for i in np.argsort(-np.nan_to_num(worst, nan=-1.0)) if not np.isnan(worst[i])][:faces]
    regions = [name for name in per_face if not name.startswith("worst")]
    titles = []
    for i in order:
        name = max(regions, key=lambda r: np.nan_to_num(per_face[r][i], nan=-1.0))
        titles.append(f"{name.replace('_', ' ')}\ndE {worst[i]:.0f}")
    grid = np.concatenate([originals[order], reconstructions[order]])
    save_grid(grid, path, 2, max(len(order), 1), row_labels=["original", "reconstruction"], col_labels=titles,
              title="Worst colour per face (CIELAB distance of the region's mean colour)")


SAMPLE_BATCH = 256  # images decoded at once by write_samples


def write_samples(out, vae, z, labels=None) -> set:
    """``sample_NNNN.png`` for each code of ``z`` and ``latents.npy``, in ``out`` (made if missing), decoded
    and written a batch at a time so memory stays flat; each file written atomically. A conditional model's
    ``labels`` (one-hot rows, one per code) are decoded with them and kept in ``labels.npy``. The names written."""
    from PIL import Image

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for first in range(0, len(z), SAMPLE_BATCH):
        y = None if labels is None else labels[first:first + SAMPLE_BATCH]
        for i, img in enumerate(decode(vae, z[first:first + SAMPLE_BATCH], y), start=first):
            with atomic_path(out / f"sample_{i:04d}.png") as tmp:
                Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)).save(tmp, format="PNG")
    with atomic_path(out / "latents.npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, z)
    written = {f"sample_{i:04d}.png" for i in range(len(z))} | {"latents.npy"}
    if labels is not None:
        with atomic_path(out / "labels.npy") as tmp, open(tmp, "wb") as fh:
            np.save(fh, labels)
        written.add("labels.npy")
    return written


def load_faces(paths, size=128, background=(255, 255, 255)):
    """Image files composited onto ``background`` and resized: (N, size, size, 3) in [0, 1]."""
    from PIL import Image

    out = []
    for p in paths:
        im = Image.open(p).convert("RGBA")
        bg = Image.new("RGBA", im.size, tuple(background) + (255,))
        bg.alpha_composite(im)
        out.append(np.asarray(bg.convert("RGB").resize((size, size), Image.Resampling.LANCZOS), np.float32) / 255)
    return np.stack(out)


def compare_sets(left, right, path, titles, cols=4):
    """Two sets of faces side by side, each a grid with ``cols`` columns."""
    plt = _plt()

    def tile(images):
        rows = len(images) // cols
        return np.concatenate([np.concatenate(list(images[r * cols:(r + 1) * cols]), axis=1) for r in range(rows)])

    fig, axes = plt.subplots(1, 2, figsize=(12, 6.4))
    for ax, images, title in zip(axes, (left, right), titles):
        ax.imshow(tile(images))
        ax.set_title(title, fontsize=11)
        ax.axis("off")
    fig.tight_layout()
    _save(fig, path)


def write_projector(run_dir, limit=2000, encoded=None, config=None) -> Path:
    """TensorBoard's embedding projector for a run: the latent means of up to ``limit`` training faces
    (``tensors.tsv``), their file names and attributes (``metadata.tsv``), a sprite sheet of the faces,
    under ``logs/projector/``, and ``logs/projector_config.pbtxt``, so ``tensorboard --logdir RUN/logs``
    shows the latent space coloured by any attribute with faces as points. ``encoded``: the training faces
    already encoded in :func:`cartoon_vae.inference.training_batches` order (``encode_split``'s images, means,
    log-variances, indices), so they are not encoded again; ``config``: the run's (default: its config.yaml).
    Returns the logs folder."""
    import math

    from .data import read_attributes
    from .inference import encode_split, training_batches
    from .runs import atomic_path, load_run, write_text_atomic, writer

    if encoded is None:
        vae, loaded = load_run(run_dir)
        config = config or loaded
        encoded = encode_split(vae, training_batches(config, with_index=True), limit)
    elif config is None:
        from .config import load_config

        config = load_config(Path(run_dir) / "config.yaml")
    x, means, _, idx = (None if part is None else part[:limit] for part in encoded)
    attrs = read_attributes(config.data.dir)
    logs = Path(run_dir) / "logs"
    folder = logs / "projector"
    rows = ["\t".join(["file", *attrs.names])]
    for i in idx:
        values = [str(v) for v in attrs.values[i]] if attrs.names else []
        rows.append("\t".join([Path(attrs.paths[i]).name if attrs.paths else str(i), *values]))
    side = math.ceil(math.sqrt(len(x)))
    size = x.shape[1]
    sheet = np.ones((side * size, side * size, 3), np.float32)
    for k, image in enumerate(x):
        r, c = divmod(k, side)
        sheet[r * size:(r + 1) * size, c * size:(c + 1) * size] = image
    with writer(run_dir):
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / "tensors.tsv", "".join("\t".join(f"{v:.6g}" for v in m) + "\n" for m in means))
        write_text_atomic(folder / "metadata.tsv", "\n".join(rows) + "\n")
        with atomic_path(folder / "sprite.png") as tmp:
            Path(tmp).write_bytes(png_bytes(sheet))
        write_text_atomic(logs / "projector_config.pbtxt",
                          'embeddings {\n  tensor_name: "latent_means"\n  tensor_path: "projector/tensors.tsv"\n'
                          '  metadata_path: "projector/metadata.tsv"\n  sprite {\n    image_path: "projector/sprite.png"\n'
                          f'    single_image_dim: {size}\n    single_image_dim: {size}\n  }}\n}}\n')
    return logs
