"""The ``cartoon-vae`` command. Each subcommand parses its arguments and calls the library.

Bad input (a config, data folder, run folder or value) exits with code 2 and one
line naming the culprit; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys

import cartoon_vae  # noqa: F401  (sets the Keras backend before anything imports keras)
from cartoon_vae.arguments import (MAX_VARIANT, MAX_WORKERS, attribute, count, host, integer, names, origin, path,
                                   probability, seed, strengths)
from cartoon_vae.config import MIN_SAMPLES
from cartoon_vae.benchmark import RACES
from cartoon_vae.commands import (cmd_ablate, cmd_benchmark, cmd_check_data, cmd_compare_edits, cmd_download,
                                  cmd_edit, cmd_evaluate, cmd_explore, cmd_figures, cmd_make_data, cmd_prepare,
                                  cmd_sample, cmd_train, cmd_train_probe)
from cartoon_vae.samplers import SAMPLERS


def _add_config_args(p, required=True):
    p.add_argument("--config", type=path, required=required, help="YAML config, e.g. configs/recommended.yaml")
    p.add_argument("--data", type=path, help="data folder (sets data.dir)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.epochs=5 (repeatable)")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2), like every other bad input."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _args_make_data(s):
    s.add_argument("--out", type=path, default="data/synthetic")
    s.add_argument("--n", type=count, default=2000)
    s.add_argument("--seed", type=seed, default=0)
    s.add_argument("--workers", type=integer(1, MAX_WORKERS), default=None, help="processes (default: all cores)")


def _args_check_data(s):
    s.add_argument("--data", type=path, required=True)


def _args_download_cartoonset(s):
    s.add_argument("--variant", choices=["10k", "100k"], default="10k")
    s.add_argument("--out", type=path, default="data")
    s.add_argument("--url", help="tarball URL, http or https (default: the dataset's public bucket)")


def _args_train(s):
    _add_config_args(s, required=False)
    s.add_argument("--run-dir", type=path, help="run folder (default: runs/<config name>)")
    s.add_argument("--resume", action="store_true", help="continue an existing run folder")


def _args_prepare(s):
    _add_config_args(s)
    s.add_argument("--out", type=path, required=True, help="folder to create")
    s.add_argument("--shard-images", type=count, default=1024, help="images per shard file")


def _args_figures(s):
    s.add_argument("--run", type=path, required=True)
    s.add_argument("--data", type=path, help="data folder (default: the run's data.dir)")


def _args_sample(s):
    s.add_argument("--run", type=path, required=True)
    s.add_argument("--n", type=count, default=10)
    s.add_argument("--mode", choices=list(SAMPLERS), default="minmax",
                   help="minmax: the paper's Fig. 5; normal: the prior N(0, I); gmm: a Gaussian mixture fitted "
                        "to the training codes (usually the most faithful)")
    s.add_argument("--stats-images", type=count, default=5000,
                   help="training images whose latent means give min/max or the mixture")
    s.add_argument("--seed", type=seed, default=0)
    s.add_argument("--out", type=path, required=True)
    s.add_argument("--overwrite", action="store_true", help="replace samples an earlier call left in --out")
    s.add_argument("--data", type=path, help="data folder (default: the run's data.dir)")


def _args_train_probe(s):
    s.add_argument("--config", type=path, default="configs/recommended.yaml", help="image size and crop to train at")
    s.add_argument("--data", type=path, help="labelled data folder (sets data.dir)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--out", type=path, required=True)
    s.add_argument("--epochs", type=count, default=15)
    s.add_argument("--mix-run", type=path, action="append", default=[], metavar="RUN",
                   help="also train on this run's reconstructions of the training faces, so the probe reads "
                        "decoded faces (repeatable)")


def _args_evaluate(s):
    s.add_argument("--run", type=path, required=True)
    s.add_argument("--probe", type=path, required=True)
    s.add_argument("--samples", type=integer(MIN_SAMPLES, 1_000_000), default=1000,
                   help=f"samples per sampler (at least {MIN_SAMPLES}: the k-nearest-neighbour and mixture scores need them)")
    s.add_argument("--fid", action="store_true", help="also the standard Inception FID/KID (needs the [fid] extra)")
    s.add_argument("--fid-images", type=count, default=500,
                   help="images per set for FID/KID, at most the held-out count (default 500)")
    s.add_argument("--bootstrap", type=integer(2, 100_000), default=200,
                   help="resamples behind each bootstrap interval (default 200)")


def _args_edit(s):
    s.add_argument("--run", type=path, required=True)
    s.add_argument("--attribute", type=attribute, required=True)
    s.add_argument("--to", type=integer(0, MAX_VARIANT), required=True, help="target variant")
    s.add_argument("--from", dest="from_", type=integer(0, MAX_VARIANT), default=None,
                   help="edit faces of this variant only, and "
                                                                         "contrast with it (default: all others)")
    s.add_argument("--strengths", type=strengths, default="1,2,3",
                   help="columns moved by these many standard deviations of the codes along the direction; the "
                        "last column moves each face to the target's class mean in the classifier's subspace")
    s.add_argument("--p", type=probability, default=None, help="add a column moved until the classifier reads the "
                                                          "target at this probability (e.g. 0.9)")
    s.add_argument("--hold", type=names, default=[],
                   help="comma-separated attributes whose classifiers the edit leaves unchanged (projection)")
    s.add_argument("--faces", type=count, default=6)
    s.add_argument("--probe", type=path, help="probe folder: also measure success and preservation")
    s.add_argument("--out", type=path, required=True)
    s.add_argument("--overwrite", action="store_true", help="replace the figure and report of an earlier call")
    s.add_argument("--data", type=path, help="data folder (default: the run's data.dir)")


def _args_compare_edits(s):
    s.add_argument("--runs", type=path, nargs="+", required=True, help="run folders trained on the same embedded set")
    s.add_argument("--attribute", type=attribute, required=True)
    s.add_argument("--to", type=integer(0, MAX_VARIANT), required=True, help="target variant")
    s.add_argument("--faces", type=count, default=6, help="held-out faces (rows of the figure)")
    s.add_argument("--on-photo", action="store_true",
                   help="also each edit applied to the photo: original + edit - reconstruction")
    s.add_argument("--out", type=path, required=True, help="the figure (.png); the scores go beside it (.json)")
    s.add_argument("--overwrite", action="store_true", help="replace an earlier figure and report")


def _args_explore(s):
    s.add_argument("--run", type=path, required=True)
    s.add_argument("--probe", type=path, help="probe folder: the page shows its reading of the face")
    s.add_argument("--port", type=integer(0, 65535), default=8008, help="0: any free port")
    s.add_argument("--host", type=host, default="127.0.0.1", help="address to listen on (default: this machine only)")
    s.add_argument("--faces", type=integer(1, 200), default=24, help="held-out faces to start from")
    s.add_argument("--allow-origin", type=origin, action="append", default=[], metavar="URL",
                   help="also answer pages of this origin (http://name:port; repeatable); by default only the "
                        "server's own pages may call it")


def _args_ablate(s):
    s.add_argument("--config", type=path, default="configs/ablation.yaml")
    s.add_argument("--report-only", action="store_true", help="rebuild the report from stored results.json")
    s.add_argument("--train-only", action="store_true", help="train (and reuse) the runs, evaluate nothing")


def _args_benchmark(s):
    s.add_argument("--quick", action="store_true", help="fewer images and epochs, no step variants (minutes)")
    s.add_argument("--out", type=path, help="write the results as JSON here")
    s.add_argument("--force", action="store_true", help="overwrite --out")
    s.add_argument("--data", type=path, help="image folder (default: faces drawn by the embedded generator)")
    s.add_argument("--variants", action=argparse.BooleanOptionalAction, default=None,
                   help="also time the step under rejected settings (default: on unless --quick)")
    s.add_argument("--only", nargs="+", choices=RACES, help="run only these time-to-quality races (full plan)")
    s.add_argument("--merge", action="store_true",
                   help="with --only: put the races into --out's earlier results, keeping everything else")


SUBCOMMANDS = [  # (name, its arguments, what it runs, its help)
    ("make-data", _args_make_data, cmd_make_data,
        "draw Cartoon Set-format faces (the embedded data set)"),
    ("check-data", _args_check_data, cmd_check_data,
        "check a data folder: images, unreadable files, attribute CSVs"),
    ("download-cartoonset", _args_download_cartoonset, cmd_download,
        "download and extract Google's Cartoon Set"),
    ("train", _args_train, cmd_train,
        "train a config into a run folder"),
    ("prepare", _args_prepare, cmd_prepare,
        "decode and resize a data folder once into TFRecord shards that training "
        "streams (sets bigger than memory)"),
    ("figures", _args_figures, cmd_figures,
        "write Fig. 4, Fig. 5 and the other figures of a run"),
    ("sample", _args_sample, cmd_sample,
        "decode new faces from min-max uniform, N(0, I) or Gaussian-mixture latents"),
    ("train-probe", _args_train_probe, cmd_train_probe,
        "train the attribute probe (features for FD_attr/KID_attr, edit scores)"),
    ("evaluate", _args_evaluate, cmd_evaluate,
        "measure a run: reconstructions, latent space, samples, edits"),
    ("edit", _args_edit, cmd_edit,
        "edit held-out faces along an attribute classifier's latent direction"),
    ("compare-edits", _args_compare_edits, cmd_compare_edits,
        "edit the same held-out faces with several runs, beside the true counterfactual"),
    ("explore", _args_explore, cmd_explore,
        "a local page to steer the latent space: edit, sample, interpolate, upload a face"),
    ("ablate", _args_ablate, cmd_ablate,
        "test the paper's claims: train variants x seeds, evaluate, write results"),
    ("benchmark", _args_benchmark, cmd_benchmark,
        "training speed against the paper's reference loop, input pipeline, "
        "generation, memory"),
]


def build_parser():
    p = _Parser(prog="cartoon-vae", description=__doc__.splitlines()[0])
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, add_arguments, command, help_text in SUBCOMMANDS:
        s = sub.add_parser(name, help=help_text)
        add_arguments(s)
        s.set_defaults(fn=command)
    return p


def _import_tensorflow_quietly():
    """Import TensorFlow with the process's stderr closed: its C++ start-up logs CUDA probes at INFO
    level before any setting can silence them, and a command's error must be its only stderr line.
    A failing import still raises, after stderr is back."""
    if "tensorflow" in sys.modules:
        return
    import os

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def main(argv=None):
    args = build_parser().parse_args(argv)
    if not args.debug:
        _import_tensorflow_quietly()
    if args.command == "train" and not args.config and not (args.resume and args.run_dir):
        build_parser().error("train: --config is required (or --resume with --run-dir)")
    from .config import ConfigError
    from .data import DataError
    from .download import DownloadError
    from .fid import FidUnavailable
    from .runs import RunError

    expected = (ConfigError, DataError, RunError, DownloadError, FidUnavailable)
    try:
        args.fn(args)
    except expected as e:
        if args.debug:
            raise
        print(f"cartoon-vae {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # unwritable folder, disk full, ...: name the file
        if args.debug:
            raise
        where = f"{e.filename}: " if e.filename else ""
        print(f"cartoon-vae {args.command}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # NaN/Inf loss: not bad input, but no traceback either
        from .train import NonFiniteLoss, WorkerLost
        if args.debug or not isinstance(e, (NonFiniteLoss, WorkerLost)):
            raise
        print(f"cartoon-vae {args.command}: error: {e}", file=sys.stderr)
        if isinstance(e, WorkerLost):  # the broken collective's pools fail again in __del__ as the process winds
            sys.unraisablehook = lambda unraisable: None  # down ("Exception ignored in ..."): said above already
        return 1
    except KeyboardInterrupt:
        print(f"cartoon-vae {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        message = _disk_full(e)
        if args.debug or message is None:
            raise
        print(f"cartoon-vae {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


def _disk_full(e) -> str | None:
    """One line for TensorFlow's error when a disk fills under it (the image cache, a checkpoint), else None."""
    text = str(getattr(e, "message", "") or e)
    if type(e).__module__.startswith("tensorflow") and "No space left on device" in text:
        first = text.strip().splitlines()[0][:200]
        return (f"the disk is full ({first}); free some space, or set data.cache: memory (or data.cache_dir to "
                f"another disk)")
    return None


if __name__ == "__main__":
    sys.exit(main())
