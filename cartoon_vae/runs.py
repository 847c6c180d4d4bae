"""Run folders: what is in them, and writing files so a crash never leaves a half-written one.

A run folder holds:
    config.yaml          the resolved config the run was trained with
    checkpoints/epoch_NNNN.keras
                         the last two complete epochs: model, optimizer state, sampling RNG state
    history.csv          one row per epoch: train and validation loss, reconstruction, KL, exact KL
    logs/                TensorBoard logs
    model.keras          the final model
    loss_curves.png      the curves of history.csv
    latent_stats.npz     cached per-dimension min/max of latent means (min-max sampling)
    latent_gmm.npz       cached Gaussian mixture over the training latent means (mixture sampling)
    latent_two_stage.npz cached second-stage VAE fitted to the training latent means (two-stage sampling)
    fig4_reconstruction.png, fig5_uniform_samples.png, samples_normal.png, samples_gmm.png, samples_two_stage.png,
                         interpolation.png
    metrics.json, metrics.md   written by ``evaluate``
    .lock                the writer lock (see :func:`writer`)

One process writes a run folder at a time: ``train``, ``figures`` and ``evaluate`` hold an
exclusive ``flock`` on ``.lock`` while they write (``sample`` only for the moment it writes a
cache), which the kernel releases when the process ends however it ends (a SIGKILL never leaves
a stale lock). A new run folder is created atomically: made under a temporary name with its
lock already held, then renamed into place, so of two commands started at the same instant
only one owns it.

Run folders are zipped and shared, so one may hold symbolic links planted to point anywhere.
Nothing here follows one: the lock is opened with ``O_NOFOLLOW``, and a writer refuses a run
folder holding any link, naming it, before it writes a byte.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import os
import shutil
from pathlib import Path


class RunError(ValueError):
    """A run folder that is missing, incomplete, or would be overwritten. One line naming it."""


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps the suffix (Keras insists on ``.keras``) and starts with a dot.
    """
    path = Path(path)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:  # name the file the user knows, not the temporary one
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e
    finally:
        if tmp.exists():
            tmp.unlink()


def refuse_links(folder) -> None:
    """RunError naming the first symbolic link inside ``folder`` (the folder itself included): a writer
    following one would write, truncate or delete a file outside the folder."""
    folder = Path(folder)
    if folder.is_symlink():
        raise RunError(f"{folder}: is a symbolic link; give the real folder")
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            path = Path(root) / name
            if path.is_symlink():
                raise RunError(f"{path}: symbolic link inside the run folder (to {os.readlink(path)}); "
                               f"nothing is written through links; remove it")


_HELD: dict[str, int] = {}  # run folders whose lock this process holds, by real path: a nested writer reuses it


def _lock(folder, run_dir):
    """An open, exclusively flock-ed ``folder/.lock`` holding our PID, or RunError naming the holder."""
    import fcntl

    try:
        fd = os.open(Path(folder) / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise RunError(f"{Path(folder) / '.lock'}: symbolic link; nothing is written through links; "
                           f"remove it") from None
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunError(f"{run_dir}: another process (PID {holder}) is writing this run folder; wait for it to "
                       f"finish or stop it") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


@contextlib.contextmanager
def writer(run_dir, new=False):
    """Hold the run folder's writer lock for the block. ``new``: create the folder atomically (a
    temporary folder with the lock inside, renamed into place; an existing empty folder is
    replaced, a non-empty one is refused), and remove it again if the block fails before
    writing a checkpoint or a model, so a failed start leaves nothing behind."""
    run_dir = Path(run_dir)
    if not new:
        if not run_dir.is_dir():
            raise RunError(f"{run_dir}: run folder not found")
        key = os.path.realpath(run_dir)
        if key in _HELD:  # this process holds it already (figures writing a cache, say)
            yield run_dir
            return
        refuse_links(run_dir)
        fd = _lock(run_dir, run_dir)
        _HELD[key] = fd
        try:
            yield run_dir
        finally:
            del _HELD[key]
            os.close(fd)
        return
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = run_dir.parent / f".{run_dir.name}.new-{os.getpid()}"
    tmp.mkdir()
    fd = _lock(tmp, run_dir)
    try:
        os.rename(tmp, run_dir)
    except OSError:  # the folder exists and is not empty (perhaps another process just made it)
        os.close(fd)
        shutil.rmtree(tmp, ignore_errors=True)
        raise RunError(f"{run_dir}: run folder already exists; pass --resume to continue it, "
                       f"or choose another --run-dir") from None
    key = os.path.realpath(run_dir)
    _HELD[key] = fd
    try:
        yield run_dir
    except BaseException:
        if not checkpoints(run_dir) and not (run_dir / "model.keras").exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        del _HELD[key]
        os.close(fd)


def claim_outputs(folder, patterns, overwrite=False) -> list[Path]:
    """The files in ``folder`` named by the glob ``patterns`` (a link counts, dangling or not): a RunError
    naming the first one, unless ``overwrite``. The caller writes its files with :func:`atomic_path`
    (which replaces a link itself, never its target) and then unlinks those of the returned files it did
    not rewrite, so no stale file of an earlier call is left beside the new ones."""
    folder = Path(folder)
    for above in (folder, *folder.parents):  # a bad --out fails now, before any work (and nothing is made)
        if os.path.lexists(above):
            if not above.is_dir():
                raise RunError(f"{folder}: {above} is not a folder; choose another --out")
            if not os.access(above, os.W_OK | os.X_OK):
                raise RunError(f"{folder}: cannot write in {above} (permission denied)")
            break
    found = sorted({p for pattern in patterns for p in folder.glob(pattern) if os.path.lexists(p)})
    if found and not overwrite:
        more = f" and {len(found) - 1} more" if len(found) > 1 else ""
        raise RunError(f"{found[0]}{more}: already there from an earlier call; pass --overwrite to replace "
                       f"them, or choose another --out")
    for p in found:
        if p.is_dir() and not p.is_symlink():
            raise RunError(f"{p}: is a folder where a file would be written; remove it")
    return found


def write_text_atomic(path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


HISTORY_COLUMNS = ["epoch", "loss", "reconstruction_loss", "kl_loss", "kl_exact",
                   "val_loss", "val_reconstruction_loss", "val_kl_loss", "val_kl_exact",
                   "val_active_units", "val_kl_dim_min", "val_kl_dim_median", "val_kl_dim_max", "seconds",
                   "adversary_ce", "val_adversary_ce", "swap_ce", "val_swap_ce"]


def read_history(path) -> list[dict]:
    """history.csv's rows (epoch as int, the rest as float; empty cells left out); [] when there is none."""
    if not Path(path).exists():
        return []
    with open(path, newline="") as fh:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""}
                for row in csv.DictReader(fh)]


def write_history(path, rows) -> None:
    """history.csv, rewritten whole and atomically, with the columns of :data:`HISTORY_COLUMNS`."""
    out = io.StringIO()
    writer = csv.DictWriter(out, HISTORY_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, out.getvalue())


def checkpoint_path(run_dir, epoch) -> Path:
    return Path(run_dir) / "checkpoints" / f"epoch_{epoch:04d}.keras"


def checkpoints(run_dir) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary files start with a dot and are not listed)."""
    return sorted((Path(run_dir) / "checkpoints").glob("epoch_[0-9][0-9][0-9][0-9].keras"))


def require_model(run_dir) -> Path:
    """The run's final model, or its last checkpoint; a clear error when neither exists."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: run folder not found")
    if (run_dir / "model.keras").exists():
        return run_dir / "model.keras"
    done = checkpoints(run_dir)
    if done:
        return done[-1]
    raise RunError(f"{run_dir}: no model.keras and no checkpoint; train it first "
                   f"(cartoon-vae train --config ... --run-dir {run_dir})")


def load_run(run_dir):
    """(model, config) of a run folder."""
    import keras

    from .config import load_config
    from . import conditional  # noqa: F401  (registers the models and their layers with Keras)

    path = require_model(run_dir)
    config = load_config(Path(run_dir) / "config.yaml")
    try:
        vae = keras.models.load_model(path)
    except Exception as e:  # Keras raises many types for a broken file
        raise RunError(f"{path}: cannot load the model ({type(e).__name__}); "
                       f"retrain, or delete it to fall back to the last checkpoint") from None
    check_model_matches(vae, config, path, Path(run_dir) / "config.yaml")
    if vae.conditioned:  # the counts the model was built with, also for runs that predate the key
        config = config.replace(model={"conditional_variants": tuple(n for _, n in vae.conditional)})
    return vae, config


SHAPE_KEYS = {"image_size": ("data", "image_size"), "latent_dim": ("model", "latent_dim"),
              "encoder_filters": ("model", "encoder_filters"), "decoder_filters": ("model", "decoder_filters")}


def check_model_matches(vae, config, model_path, config_path) -> None:
    """RunError when a run's config.yaml no longer describes its model's shapes (edited by hand)."""
    for attr, (section, key) in SHAPE_KEYS.items():
        have, want = getattr(vae, attr), getattr(getattr(config, section), key)
        if (list(have) if isinstance(have, (list, tuple)) else have) != \
                (list(want) if isinstance(want, (list, tuple)) else want):
            raise RunError(f"{config_path}: {section}.{key} is {want}, but {model_path} was trained with {have}; "
                           f"restore config.yaml, or start a new run for the new setting")
    have = list(vae.conditioned)
    if have != list(config.model.conditional):
        raise RunError(f"{config_path}: model.conditional is {list(config.model.conditional)}, but {model_path} was "
                       f"trained with {have}; restore config.yaml, or start a new run for the new setting")
