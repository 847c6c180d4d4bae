"""Training: ``model.fit`` with the custom train_step, and callbacks that keep a run folder whole.

Example:
    >>> from cartoon_vae.train import train
    >>> train(load_config("configs/recommended.yaml"), "runs/demo")
"""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path

import keras
import yaml

from .config import load_config
from .batches import make_training_datasets, quiet_fit_warnings
from .build import build_vae
from .conditional import conditioning
from .data import DataError
from .figures import plot_loss_curves
from .inference import encode_split, first_images
from .runs import (HISTORY_COLUMNS, RunError, atomic_path, check_model_matches, checkpoint_path, checkpoints,
                   read_history, write_history, write_text_atomic)

class WorkerLost(RuntimeError):
    """Multi-worker training lost a peer (it died, or a collective timed out)."""


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or Inf."""


def _fault(where: str, epoch: int) -> None:
    """Fault injection for the crash tests: CARTOON_VAE_FAULT="step:2" SIGKILLs this process during
    a training step of epoch 2, "checkpoint:2" after epoch 2's checkpoint is written to its
    temporary name but before it is renamed. Unset (always, outside tests), it does nothing."""
    if os.environ.get("CARTOON_VAE_FAULT") == f"{where}:{epoch}":
        os.kill(os.getpid(), signal.SIGKILL)


class LatentMonitor(keras.callbacks.Callback):
    """After each epoch, over up to ``limit`` held-out images: the active units (Burda et al. 2016)
    and the spread of the exact KL per latent dimension (min, median, max over dimensions, in nats).
    They go into the epoch's logs, so history.csv and TensorBoard get them: a collapsing code shows
    as falling active units and a median KL near 0."""

    def __init__(self, val_ds, limit=1000):
        super().__init__()
        self.val_ds, self.limit = val_ds, limit

    def on_epoch_end(self, epoch, logs=None):
        import numpy as np

        from .losses import kl_exact_per_dim
        from .metrics import active_units

        if logs is None:
            return
        try:
            _, means, log_vars, _ = encode_split(self.model, self.val_ds, self.limit, keep_images=False)
        except ValueError:  # no held-out image
            return
        per_dim = np.asarray(kl_exact_per_dim(means, self.model.posterior_log_var(log_vars))).mean(0)
        logs.update(val_active_units=float(active_units(means)), val_kl_dim_min=float(per_dim.min()),
                    val_kl_dim_median=float(np.median(per_dim)), val_kl_dim_max=float(per_dim.max()))


HELD_OUT_PATIENCE = 3  # epochs running a held-out metric may stay NaN/Inf (BatchNorm settling) before training stops


class RunKeeper(keras.callbacks.Callback):
    """After each epoch: history.csv, then the checkpoint, each written to a temporary name and renamed.

    Checkpoints are ``checkpoints/epoch_NNNN.keras`` (weights, optimizer state and the
    sampling layer's RNG state); the highest-numbered one is the resume point and the
    last ``keep`` are kept. history.csv is rewritten whole with the row of epoch N just
    before epoch N's checkpoint, and a resumed run drops rows past its checkpoint, so a
    kill at any moment leaves each epoch in the history exactly once.
    A NaN or Inf training loss stops training without a checkpoint, keeping the last good one; a held-out metric
    that overflows (early in training, BatchNorm's moving statistics can give a held-out face an enormous variance)
    is written as it is, with a warning, and training goes on, unless it stays so ``HELD_OUT_PATIENCE`` epochs.
    """

    def __init__(self, run_dir, rows, keep=2):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.rows = list(rows)
        self.keep = keep
        self.ckpt = self.run_dir / "checkpoints"
        self.ckpt.mkdir(parents=True, exist_ok=True)
        self.bad = None
        self.unsettled = 0  # epochs running whose held-out metrics were not finite

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if batch == 1:
            _fault("step", self.epoch_number)
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.bad = (self.epoch_number, batch + 1)
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.bad is not None:
            return
        logs = dict(logs or {})
        if "loss" not in logs:  # the data set yielded nothing: never a row of empty numbers
            raise DataError(f"{self.run_dir}: epoch {epoch + 1} saw no training image; check the data folder "
                            f"with cartoon-vae check-data")
        if not all(math.isfinite(float(v)) for k, v in logs.items() if not k.startswith("val_")):
            self.bad = (epoch + 1, "end")
            self.model.stop_training = True
            return
        unsettled = sorted(k for k, v in logs.items() if k.startswith("val_") and not math.isfinite(float(v)))
        self.unsettled = self.unsettled + 1 if unsettled else 0
        if self.unsettled >= HELD_OUT_PATIENCE:  # not the early BatchNorm statistics any more: a broken model
            self.bad = (epoch + 1, f"end (held-out {', '.join(unsettled)} not finite {self.unsettled} epochs running)")
            self.model.stop_training = True
            return
        if unsettled:  # held-out only: early BatchNorm moving statistics can overflow a held-out variance
            print(f"epoch {epoch + 1}: held-out {', '.join(unsettled)} not finite (training is; kept going)")
        row = {"epoch": epoch + 1, "seconds": round(time.perf_counter() - self.t0, 3)}
        row.update({k: float(logs[k]) for k in HISTORY_COLUMNS if k in logs})
        self.rows.append(row)
        write_history(self.run_dir / "history.csv", self.rows)
        _fault("history", epoch + 1)
        with atomic_path(checkpoint_path(self.run_dir, epoch + 1)) as tmp:
            self.model.save(tmp)
            _fault("checkpoint", epoch + 1)
        for old in checkpoints(self.run_dir)[:-self.keep]:
            old.unlink()

    @property
    def epoch_number(self):
        return len(self.rows) + 1


def distribution_strategy(name):
    """The tf.distribute strategy of ``train.distribute``.

    * ``none``: TensorFlow's default (one device).
    * ``mirrored``: ``MirroredStrategy``, a replica per GPU of this machine (or per logical
      CPU device where there is no GPU); each step splits ``data.batch_size`` across them.
    * ``multi_worker``: ``MultiWorkerMirroredStrategy`` across the hosts that the
      ``TF_CONFIG`` environment variable lists; every host runs the same command.
    """
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":  # a lost peer fails the step after COLLECTIVE_TIMEOUT_S instead of hanging
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=COLLECTIVE_TIMEOUT_S)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    return tf.distribute.get_strategy()


COLLECTIVE_TIMEOUT_S = float(os.environ.get("CARTOON_VAE_COLLECTIVE_TIMEOUT", 300))
RESUMABLE = {"train": ("epochs", "learning_rate")}  # what --resume may change; everything else is the run's


def train(config, run_dir, resume=False, verbose=1, callbacks=()):
    """Train ``config`` into ``run_dir`` (or continue it with ``resume``). Returns the model.

    A new run refuses an existing non-empty folder and is created atomically; ``resume``
    continues from the last complete epoch with the folder's own config.yaml (so ``config`` is
    ignored except for the keys in :data:`RESUMABLE`: ``train.epochs``, which may be raised to
    train longer, and ``train.learning_rate``). The newest checkpoint is checked by loading it;
    a damaged one is skipped for the one before, with a notice. The run folder's writer lock
    (:func:`cartoon_vae.runs.writer`) is held throughout, and nothing in the folder is rewritten
    before the model has loaded. ``callbacks`` are added to fit's.

    Raises:
        RunError: the folder exists (without ``resume``), has nothing to resume, no loadable
            checkpoint, or another process is writing it.
        NonFiniteLoss: the loss became NaN or Inf; the last good checkpoint is kept.
    """
    from .runs import writer

    run_dir = Path(run_dir)
    if resume and not (run_dir / "config.yaml").exists():
        raise RunError(f"{run_dir}: nothing to resume (no config.yaml); start it without --resume")
    if config is not None and config.train.distribute == "multi_worker" and not is_chief():
        # Every worker saves (saving reads distributed variables collectively), but only the chief
        # writes the run folder: the others write to a temporary folder that is deleted.
        import shutil
        import tempfile

        scratch = Path(tempfile.mkdtemp(prefix="cartoon-vae-worker-")) / "run"
        if resume:
            shutil.copytree(run_dir, scratch, ignore=shutil.ignore_patterns(".lock", "logs"))
        try:
            with writer(scratch, new=not resume):
                return _train(config, scratch, resume, verbose, callbacks)
        finally:
            shutil.rmtree(scratch.parent, ignore_errors=True)
    with writer(run_dir, new=not resume):
        return _train(config, run_dir, resume, verbose, callbacks)


def is_chief() -> bool:
    """Whether this process writes the run folder under ``multi_worker``: the task of type "chief", or
    worker 0 where the cluster has no chief (TensorFlow's convention)."""
    import json

    try:
        spec = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except ValueError:
        raise RunError("TF_CONFIG: not valid JSON") from None
    task, cluster = spec.get("task", {}), spec.get("cluster", {})
    kind = task.get("type", "chief")
    return kind == "chief" or (kind == "worker" and int(task.get("index", 0)) == 0 and "chief" not in cluster)


def check_resume_overrides(overrides) -> None:
    """RunError for a ``--set key=value`` that ``--resume`` may not change (only :data:`RESUMABLE` keys may)."""
    allowed = [f"{section}.{key}" for section, keys in RESUMABLE.items() for key in keys]
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key not in allowed:
            raise RunError(f"--set {key}: cannot change on --resume (the run keeps its config.yaml; only "
                           f"{', '.join(allowed)} may change); start a new run to change it")


def resume_point(run_dir, config):
    """(epoch, model path) to resume ``run_dir`` from: its newest checkpoint that loads (a damaged newer
    one is named and skipped). With no checkpoint, a ``model.keras`` whose history.csv counts its epochs
    is resumed from, saying so; anything else that shows the run trained is a RunError, never a silent
    start from epoch 1. (0, None): nothing trained yet."""
    done = checkpoints(run_dir)
    for path in reversed(done):
        try:
            vae = keras.models.load_model(path)
        except Exception as e:  # Keras raises many types for a truncated or zeroed file
            print(f"{path}: damaged checkpoint ({type(e).__name__}); trying the one before", flush=True)
            continue
        check_model_matches(vae, config, path, run_dir / "config.yaml")
        return int(path.stem.split("_")[1]), path
    if done:
        raise RunError(f"{run_dir}: none of the {len(done)} checkpoints loads; start the run again")
    model, rows = run_dir / "model.keras", read_history(run_dir / "history.csv")
    if model.exists() and rows and [r["epoch"] for r in rows] == list(range(1, len(rows) + 1)):
        try:
            vae = keras.models.load_model(model)
        except Exception as e:
            raise RunError(f"{model}: no checkpoint to resume from and model.keras does not load "
                           f"({type(e).__name__}); start a new run") from None
        check_model_matches(vae, config, model, run_dir / "config.yaml")
        print(f"{run_dir}: no checkpoint in checkpoints/; resuming from model.keras, which history.csv says "
              f"finished epoch {len(rows)}", flush=True)
        return len(rows), model
    if model.exists() or rows:
        what = "model.keras" if model.exists() else f"history.csv with {len(rows)} epoch(s)"
        raise RunError(f"{run_dir}: no checkpoint to resume from, but {what} is there, so --resume would train "
                       f"again from epoch 1; restore checkpoints/ (or history.csv), or start a new --run-dir")
    return 0, None


PALETTE_IMAGES = 500  # training faces whose pixels the palette decoder's colours are fitted to


def fit_palette(images, k, seed=0):
    """(k, 3) float32 colours for the palette decoder (``loss.reconstruction: palette``): k-means over the distinct
    colours of ``images`` (n, S, S, 3) in [0, 1], each weighted by the square root of its pixel count, so that a
    colour drawn on few pixels (a red frame) gets its own entry instead of being outvoted by the background."""
    import numpy as np
    from sklearn.cluster import KMeans

    colours, counts = np.unique(np.round(np.asarray(images).reshape(-1, 3) * 255).astype(np.uint8), axis=0,
                                return_counts=True)
    if len(colours) <= k:  # as many entries as colours: each its own (repeated to fill the palette)
        return (colours[np.arange(k) % len(colours)] / 255.0).astype(np.float32)
    fit = KMeans(n_clusters=int(k), n_init=1, random_state=seed).fit(colours / 255.0, sample_weight=np.sqrt(counts))
    return np.clip(fit.cluster_centers_, 0.0, 1.0).astype(np.float32)


def learning_rate(config, steps_per_epoch):
    """``train.learning_rate``, or with ``train.lr_schedule: cosine`` a cosine decay from it to 0 over every
    step of ``train.epochs`` (a resume that raises the epochs stretches the rest of the curve to the new end)."""
    t = config.train
    if t.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(t.learning_rate, decay_steps=max(1, t.epochs * steps_per_epoch))
    return t.learning_rate


def _run_config(config, run_dir, resume):
    """The config a run trains with: a resumed run's own (its resumable train keys from ``config``), the precision
    resolved so that a resume elsewhere computes the same way."""
    from .hardware import resolve_precision

    if resume:
        saved = load_config(run_dir / "config.yaml")
        config = saved.replace(train={k: getattr(config.train, k) for k in RESUMABLE["train"]}) \
            if config is not None else saved
    return config.replace(train={"precision": resolve_precision(config.train.precision)})


def _model(config, run_dir, start, resume_from, steps, train_ds, labels, verbose):
    """The model to fit (in the caller's strategy scope): the checkpoint ``resume_from`` after epoch ``start``, or a
    new one (a conditional config's built for its ``labels`` layout; a palette decoder's palette fitted)."""
    if start:
        vae = keras.models.load_model(resume_from)  # in the strategy's scope
        vae.optimizer.learning_rate = learning_rate(config, steps)
        if verbose:
            print(f"resuming {run_dir} after epoch {start}")
        return vae
    vae = build_vae(config, label_sizes=None if labels is None else [n for _, n in labels[0]],
                    learning_rate=learning_rate(config, steps))
    if vae.palette is not None:
        vae.palette.assign(fit_palette(first_images(train_ds, PALETTE_IMAGES), vae.palette_size, config.train.seed))
    return vae


def _train(config, run_dir, resume, verbose, callbacks):
    config = _run_config(config, run_dir, resume)
    for stale in run_dir.rglob(".tmp-*"):  # what a killed process was writing
        stale.unlink()
    start, resume_from = resume_point(run_dir, config) if resume else (0, None)
    rows = [r for r in read_history(run_dir / "history.csv") if r["epoch"] <= start]
    if start >= config.train.epochs and (run_dir / "model.keras").exists():
        if verbose:
            print(f"{run_dir}: already trained for {start} epochs (train.epochs={config.train.epochs})")
        return keras.models.load_model(run_dir / "model.keras")

    keras.utils.set_random_seed(config.train.seed)  # before the datasets: TF's global seed enters their shuffles
    strategy = distribution_strategy(config.train.distribute)
    labels = conditioning(config)  # a conditional config's layout and one-hot table (a resumed run's checked)
    train_ds, val_ds, steps = make_training_datasets(config, first_epoch=start, replicas=strategy.num_replicas_in_sync,
                                                     labels=None if labels is None else labels[1])
    steps = config.train.steps_per_epoch or steps
    with strategy.scope():
        vae = _model(config, run_dir, start, resume_from, steps, train_ds, labels, verbose)
    if labels is not None:  # the run records its labels' layout; a resumed one's data must have the model's
        config = config.replace(model={"conditional_variants": tuple(n for _, n in labels[0])})
    write_text_atomic(run_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    keeper = RunKeeper(run_dir, rows)
    quiet_fit_warnings()
    vae.kl_warmup_steps = config.loss.kl_warmup_epochs * steps  # read by train_step when it is traced
    import tensorflow as tf

    try:
        vae.fit(train_ds, validation_data=val_ds, epochs=config.train.epochs, initial_epoch=start,
                steps_per_epoch=steps, verbose=verbose,
                callbacks=[*callbacks, LatentMonitor(val_ds), keeper,
                           keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False)])
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError) as e:
        if config.train.distribute != "multi_worker":
            raise
        first = (e.message or type(e).__name__).strip().splitlines()[0][:200]
        raise WorkerLost(f"{run_dir}: a worker was lost during training ({type(e).__name__}: {first}); the last "
                         f"complete checkpoint is kept; restart every worker with --resume") from None
    if keeper.bad is not None:
        epoch, step = keeper.bad
        kept = (f"the last good checkpoint (epoch {len(keeper.rows)}) is kept in {run_dir / 'checkpoints'}; try a "
                f"lower train.learning_rate, then --resume" if checkpoints(run_dir) else
                "no epoch had finished, so nothing was kept; try a lower train.learning_rate")
        raise NonFiniteLoss(f"{run_dir}: loss became NaN/Inf at epoch {epoch}, step {step}; {kept}")
    with atomic_path(run_dir / "model.keras") as tmp:
        vae.save(tmp)
    plot_loss_curves(keeper.rows, run_dir / "loss_curves.png")
    return vae
