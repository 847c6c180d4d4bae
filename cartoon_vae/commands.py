"""What each ``cartoon-vae`` subcommand runs, given its parsed arguments (:mod:`cartoon_vae.cli` parses them)."""

from __future__ import annotations

import sys
from pathlib import Path


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
    from .loaded import open_run
    from .runs import claim_outputs, write_text_atomic

    out = Path(args.out)
    stem = f"edit_{args.attribute}_to{args.to}"
    claim_outputs(out, [f"{stem}.png", f"{stem}.json"], args.overwrite)
    probe = None
    if args.probe:  # a damaged probe fails now, before anything is written
        from .probe import Probe

        probe = Probe.load(args.probe)
    run = open_run(args.run, data=getattr(args, "data", None) or None)
    if probe is not None:
        probe.check_compatible(run.config)
    columns, report = edit_heldout(run, args.attribute, args.to, args.from_, args.strengths, args.p, args.hold,
                                   args.faces)
    grid = np.stack(list(columns.values()), 1).reshape(-1, *columns["original"].shape[1:])
    out.mkdir(parents=True, exist_ok=True)
    save_grid(grid, out / f"{stem}.png", report["faces"], len(columns), col_labels=list(columns),
              title=f"{args.attribute} -> {args.to}" + (f" (from {args.from_})" if args.from_ is not None else "")
              + (f", holding {', '.join(args.hold)}" if args.hold else ""))
    if probe is not None:
        from .edit_scores import probe_edit_columns

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


def _earlier_benchmark(path) -> dict:
    """An earlier benchmark's results (``--merge``), refused in one line before any race runs if it is not one."""
    import json

    from .runs import RunError

    try:
        earlier = json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunError(f"{path}: not a benchmark's JSON ({e})") from None
    if not isinstance(earlier, dict) or not isinstance(earlier.get("phases"), dict):
        raise RunError(f"{path}: not a benchmark's results (no 'phases'); --merge puts races into an earlier run's")
    return earlier


def cmd_benchmark(args):
    import json

    from .bench_report import format_table, time_to_quality_lines
    from .benchmark import run_benchmark
    from .runs import RunError, write_text_atomic

    if args.only and args.quick:
        raise RunError("--only runs the full plan's races; the quick plan has none (drop --quick)")
    if args.merge and not (args.only and args.out and Path(args.out).is_file()):
        raise RunError("--merge needs --only and an --out file of an earlier run to put the races into")
    if args.out and Path(args.out).exists() and not (args.force or args.merge):
        raise RunError(f"{args.out}: already exists; pass --force to overwrite it")
    earlier = _earlier_benchmark(args.out) if args.merge else None
    if args.data:
        from .data import list_images
        list_images(args.data)  # a bad folder fails now, not after the first phases
    results = run_benchmark(quick=args.quick, data_dir=args.data, variants=args.variants, only=args.only)
    if earlier is not None:  # each race keeps the CPU it ran on ("machine"): only ratios within one race compare
        earlier["phases"].update({name: results["phases"][name] for name in args.only if name in results})
        earlier.update({name: results[name] for name in args.only if name in results})
        results = earlier
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.out, json.dumps(results, indent=1) + "\n")
    print()
    print(format_table(results) if not args.only or earlier is not None else "\n".join(time_to_quality_lines(results)))
    if args.out:
        print(f"written: {args.out}")
