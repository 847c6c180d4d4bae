"""The ``cartoon-vae`` command. Each subcommand parses its arguments and calls the library.

Bad input (a config, data folder, run folder or value) exits with code 2 and one
line naming the culprit; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cartoon_vae  # noqa: F401  (sets the Keras backend before anything imports keras)
from cartoon_vae.arguments import (MAX_VARIANT, MAX_WORKERS, attribute, count, host, integer, names, origin, path,
                                   probability, seed, strengths)
from cartoon_vae.config import MIN_SAMPLES
from cartoon_vae.samplers import SAMPLERS


def _add_config_args(p, required=True):
    p.add_argument("--config", type=path, required=required, help="YAML config, e.g. configs/recommended.yaml")
    p.add_argument("--data", type=path, help="data folder (sets data.dir)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.epochs=5 (repeatable)")


def _load(args):
    from .config import load_config

    overrides = list(args.set) + ([f"data.dir={args.data}"] if getattr(args, "data", None) else [])
    return load_config(args.config, overrides)


def cmd_make_data(args):
    from .synthetic import make_dataset

    out = make_dataset(args.out, n=args.n, seed=args.seed, workers=args.workers)
    print(f"{args.n} faces in {out}")


def cmd_check_data(args):
    from .data import list_images, read_attributes
    from .images import find_unreadable

    from collections import Counter

    paths = list_images(args.data)
    bad = find_unreadable(paths, decode=True)  # what training will decode, fully
    attrs = read_attributes(args.data, paths)
    kinds = Counter(Path(p).suffix.lower().lstrip(".") for p in paths)
    print(f"{args.data}: {len(paths)} image files ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}), "
          f"{len(bad)} unreadable, {int(attrs.labelled.sum())} with attribute CSVs; training uses "
          f"{len(paths) - len(bad)}")
    for p, why in bad.items():
        print(f"  unreadable: {p}: {why}")
    for name, n in zip(attrs.names, attrs.n_variants):
        print(f"  {name}: {n} variants")


def cmd_download(args):
    from .download import download_cartoonset

    target = download_cartoonset(args.variant, args.out, url=args.url)
    print(f"Cartoon Set {args.variant} is in {target}")


def cmd_train(args):
    from .config import load_config
    from .runs import RunError
    from .train import check_resume_overrides, train

    run_dir = Path(args.run_dir or Path("runs") / Path(args.config).stem)
    if args.resume:
        check_resume_overrides(args.set)
    if args.resume and args.config is None:
        if not (run_dir / "config.yaml").exists():
            raise RunError(f"{run_dir}: nothing to resume (no config.yaml); start it with --config")
        config = load_config(run_dir / "config.yaml", args.set)
    else:
        config = _load(args) if args.config else None
    train(config, run_dir, resume=args.resume)
    print(f"trained model: {run_dir / 'model.keras'}")


def cmd_prepare(args):
    from .data import prepare

    out = prepare(_load(args), args.out, shard_images=args.shard_images)
    print(f"train on it with --data {out} (or data.dir: {out}) and the same config")


def _run_data(args, config):
    if getattr(args, "data", None):
        config = config.replace(data={"dir": args.data})
    return config


def cmd_figures(args):
    from .figures import write_run_figures
    from .inference import encode_split, heldout_images, training_batches
    from .runs import load_run, writer
    from .samplers import SAMPLERS, fitted_samplers

    vae, config = load_run(args.run)
    config = _run_data(args, config)
    s = config.sample
    # The training faces are encoded once, for the samplers' fits and the projector both.
    encoded = encode_split(vae, training_batches(config, with_index=True), max(s.stats_images, s.projector_images))
    with writer(args.run):  # the samplers first: a set too small for a fit is refused before anything is written
        samplers = fitted_samplers(args.run, vae, config, list(SAMPLERS), s.stats_images,
                                   codes=encoded[1][:s.stats_images])
        images, labels = heldout_images(config, max(s.reconstructions, 2), with_labels=True)
        write_run_figures(args.run, vae, config, images, samplers, val_labels=labels)
    from .figures import write_projector

    write_projector(args.run, s.projector_images, encoded=encoded, config=config)
    print(f"figures written to {args.run}/; the latent space in TensorBoard's projector: "
          f"tensorboard --logdir {args.run}/logs")


def cmd_sample(args):
    import numpy as np

    from .figures import write_samples
    from .inference import sample_labels, training_labels
    from .runs import claim_outputs, load_run
    from .samplers import fitted_samplers

    out = Path(args.out)
    earlier = claim_outputs(out, ["sample_[0-9][0-9][0-9][0-9]*.png", "latents.npy", "labels.npy"], args.overwrite)
    vae, config = load_run(args.run)
    config = _run_data(args, config)
    sampler = fitted_samplers(args.run, vae, config, [args.mode], args.stats_images)[args.mode]
    written = write_samples(out, vae, sampler.sample(args.n, np.random.default_rng(args.seed)),
                            sample_labels(training_labels(config), args.n, args.seed))
    for stale in earlier:  # samples of an earlier, longer call
        if stale.name not in written:
            stale.unlink()
    print(f"{args.n} {args.mode} samples and latents.npy in {out}/")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2), like every other bad input."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def cmd_train_probe(args):
    from .probe import train_probe

    info = train_probe(_load(args), args.out, epochs=args.epochs, mix_runs=args.mix_run)
    print(f"probe saved to {args.out}/ ; held-out accuracy per attribute (chance in brackets):")
    for n, acc in info["heldout_accuracy"].items():
        print(f"  {n:22s} {acc:.3f}  ({info['chance'][n]:.3f})")


def cmd_evaluate(args):
    from .evaluate import evaluate_run

    if args.fid:
        from .fid import require

        require()  # without the extra: one line that says how to install it, before any work
    from .runs import require_model, writer

    require_model(args.run)
    with writer(args.run):
        m = evaluate_run(args.run, args.probe, settings={"samples": args.samples, "fid": args.fid,
                                                         "fid_images": args.fid_images, "bootstrap": args.bootstrap})
    print(Path(args.run, "metrics.md").read_text())
    print(f"written: {args.run}/metrics.json, {args.run}/metrics.md")
    return m


def cmd_edit(args):
    import json

    import numpy as np

    from .edit import edit_heldout
    from .figures import save_grid
    from .runs import claim_outputs, load_run, write_text_atomic

    out = Path(args.out)
    stem = f"edit_{args.attribute}_to{args.to}"
    claim_outputs(out, [f"{stem}.png", f"{stem}.json"], args.overwrite)
    probe = None
    if args.probe:  # a damaged probe fails now, before anything is written
        from .probe import Probe

        probe = Probe.load(args.probe)
    vae, config = load_run(args.run)
    if probe is not None:
        probe.check_compatible(config)
    config = _run_data(args, config)
    columns, report = edit_heldout(vae, config, args.attribute, args.to, args.from_, args.strengths, args.p,
                                   args.hold, args.faces)
    grid = np.stack(list(columns.values()), 1).reshape(-1, *columns["original"].shape[1:])
    out.mkdir(parents=True, exist_ok=True)
    save_grid(grid, out / f"{stem}.png", report["faces"], len(columns), col_labels=list(columns),
              title=f"{args.attribute} -> {args.to}" + (f" (from {args.from_})" if args.from_ is not None else "")
              + (f", holding {', '.join(args.hold)}" if args.hold else ""))
    if probe is not None:
        from .evaluate import probe_edit_columns

        report["scores"] = probe_edit_columns(probe, columns, args.attribute, args.to)
        for label, score in report["scores"].items():
            print(f"{label:>8}: target read on {score['succeeded']} of {report['faces']} faces "
                  f"(gain {score['gain']:+.3f}), preservation {score['preservation']:.3f}, "
                  f"pixel change {score['pixel_change']:.4f}")
    write_text_atomic(out / f"{stem}.json", json.dumps(report, indent=1) + "\n")
    print(f"written: {out / (stem + '.png')}, {out / (stem + '.json')}")


def cmd_compare_edits(args):
    import json

    from .counterfactual import compare_runs, summarise
    from .figures import counterfactual_figure
    from .runs import claim_outputs, write_text_atomic

    out = Path(args.out)
    report = out.with_suffix(".json")
    claim_outputs(out.parent, [out.name, report.name], args.overwrite)
    originals, truths, edits, judged, to = compare_runs(args.runs, args.attribute, args.to, args.faces,
                                                        photo=args.on_photo)
    out.parent.mkdir(parents=True, exist_ok=True)
    counterfactual_figure((originals, truths, edits), out, args.attribute, to,
                          title=f"{args.attribute} -> {to}: each run's edit of the same held-out faces")
    scores = {label: summarise(per) for label, per in judged.items()}
    write_text_atomic(report, json.dumps({"attribute": args.attribute, "to": to, "runs": [str(r) for r in args.runs],
                                          "scores": scores}, indent=1) + "\n")
    for label, r in scores.items():
        print(f"{label}: worked on {r['worked']} of {r['faces']} faces (edit MSE {r['edit']:.4f}, floor {r['floor']:.4f})")
    print(f"written: {out}, {report}")


def cmd_explore(args):
    from .explore import Explorer
    from .server import make_server

    explorer = Explorer(args.run, args.probe, faces=args.faces)
    server = make_server(explorer, args.host, args.port, args.allow_origin)
    host, port = server.server_address[:2]
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}: anyone who can reach this address can use the page (it has no "
              f"authentication); pages of other sites still cannot (see --allow-origin)", file=sys.stderr)
    print(f"explorer of {args.run} at http://{host}:{port}/ (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()


def cmd_ablate(args):
    from .ablate import load_ablation, report_only, run_ablation

    results = load_ablation(args.config).results
    if args.report_only:
        report_only(args.config)
    else:
        run_ablation(args.config, train_only=args.train_only)
        if args.train_only:
            print("trained; run the same command without --train-only to evaluate and report")
            return 0
    print(f"written: {results} and {Path(results).with_suffix('.json')}")


def cmd_benchmark(args):
    import json

    from .bench_report import format_table
    from .benchmark import run_benchmark
    from .runs import RunError, write_text_atomic

    if args.out and Path(args.out).exists() and not args.force:
        raise RunError(f"{args.out}: already exists; pass --force to overwrite it")
    if args.data:
        from .data import list_images
        list_images(args.data)  # a bad folder fails now, not after the first phases
    results = run_benchmark(quick=args.quick, data_dir=args.data, variants=args.variants)
    print()
    print(format_table(results))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.out, json.dumps(results, indent=1) + "\n")
        print(f"written: {args.out}")


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
