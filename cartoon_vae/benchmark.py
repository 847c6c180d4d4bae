"""``cartoon-vae benchmark``: the project's training pipeline against the paper's reference loop.

Everything runs in one process, on the same image files and the same initial weights:

* **training** images/s of (a) the project's pipeline (the cached, reshuffled, prefetched
  split of :func:`make_datasets` into ``fit``), in float32 and in the precision
  ``train.precision: auto`` picks, and (b) a reference loop written as the paper's
  reference code is: ``image_dataset_from_directory`` + ``map(Rescaling)`` decoding the
  PNGs every epoch, Keras' own BatchNormalization, two GradientTapes and two
  ``apply_gradients`` per step in a ``tf.function``; at the paper's 256x256 and at the
  demo size, each with its config's batch size. The loops run one epoch each in
  turn (:func:`interleave`), so that the drift of a shared machine's speed (CPU steal)
  falls on all of them; ratios are per-round ratios with intervals (:func:`rate_ratio`);
* the step's achieved FLOP/s (:func:`training_flops_per_image`, 3x the forward pass)
  as a fraction of a dense float32 (and, where native, bfloat16) matmul's FLOP/s;
* the input pipeline alone, cold (decoding PNGs) and from the cache, against the
  rate training consumes images;
* generation from a saved and reloaded model: latency for 10 faces, batched images/s;
* the peak resident memory (RSS) and the CPU steal of each phase (the kernel's
  high-water mark, reset between phases through /proc/self/clear_refs; /proc/stat);
* time to quality (the full run): wall seconds until held-out MSE reaches the paper
  recipe's final value, paper recipe + reference loop vs recommended recipe + pipeline, at 64x64 and at
  256x256 (``--only`` runs a race alone, ``--merge`` puts it into an earlier run's results);
* with ``--variants`` (the full run), the step alone under settings the project
  chose or rejected (:data:`STEP_VARIANTS`, :data:`CHILD_VARIANTS`: Keras'
  BatchNormalization, XLA, mixed_bfloat16, larger batches, oneDNN off, fewer threads; the
  last ones in child processes: TensorFlow reads them once, at start-up), interleaved.

Example:
    >>> from cartoon_vae.benchmark import run_benchmark
    >>> results = run_benchmark(quick=True)
"""

from __future__ import annotations

import os
import platform
import tempfile
from pathlib import Path

from .bench_measure import MEMORY, in_child, matmul_flops, phase
from .config import load_config

PLANS = {  # images (files) and measured rounds (one epoch of each loop, interleaved) after a warm-up round;
    # time_to_quality: epochs of the paper recipe in the reference loop (its final MSE is the target) and
    # the most epochs the recommended recipe gets to reach it (0: the phase is skipped); time_to_quality_256: the
    # same race at 256x256 (configs/paper.yaml, at configs/recommended-256.yaml's crop and batch size, against it)
    "quick": {"images": {256: 256, "demo": 512}, "rounds": 2, "variant_rounds": 2, "generation_reps": 3,
              "time_to_quality": (0, 0), "time_to_quality_256": (0, 0), "matmul_seconds": 2.0, "explore_requests": 25,
              "kl_rounds": 3},
    "full": {"images": {256: 768, "demo": 2000}, "rounds": 4, "variant_rounds": 3, "generation_reps": 10,
             "time_to_quality": (40, 40), "time_to_quality_256": (12, 24), "matmul_seconds": 5.0, "explore_requests": 100,
             "kl_rounds": 10},
}


def _machine():
    import keras
    import tensorflow as tf

    from .hardware import cpu_flags, cpu_model, resolve_precision

    return {"cpu": cpu_model(), "cpu_flags": cpu_flags(), "auto_precision": resolve_precision("auto"),
            "cores": os.cpu_count(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "keras": keras.__version__,
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}


def _subset(data_dir, n, out):
    """A folder of symbolic links to the first ``n`` images of ``data_dir`` and their attribute CSVs
    (identical data for both loops)."""
    from .data import list_images

    paths = list_images(data_dir)[:n]
    out.mkdir(parents=True)
    for i, p in enumerate(paths):
        (out / f"{i:06d}{Path(p).suffix}").symlink_to(os.path.abspath(p))
        if Path(p).with_suffix(".csv").exists():  # the attributes, for the explorer's edits
            (out / f"{i:06d}.csv").symlink_to(os.path.abspath(Path(p).with_suffix(".csv")))
    return len(paths)


RACES = ("time_to_quality", "time_to_quality_256")  # phases `--only` may run alone


def run_benchmark(quick=False, data_dir=None, paper_config="configs/paper.yaml", demo_config="configs/demo-paper.yaml",
                  variants=None, log=print, plan=None, recommended_config="configs/recommended.yaml",
                  recommended_256_config="configs/recommended-256.yaml", only=None) -> dict:
    """Run every phase (or only the races named in ``only``, of :data:`RACES`); return the results (see the module
    docstring). ``variants`` defaults to ``not quick``; ``plan`` replaces the image counts and epochs of
    :data:`PLANS` (tests)."""
    from .synthetic import make_dataset

    mode = "quick" if quick else "full"
    plan = plan or PLANS[mode]
    variants = (not quick) if variants is None else variants
    results = {"mode": mode, "machine": _machine(), "phases": {}, "training": [], "input_pipeline": [],
               "step_variants": []}
    phases = results["phases"]
    need = max(plan["images"].values())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if data_dir is None:
            data_dir = tmp / "faces"
            log(f"drawing {need} faces with the embedded generator")
            with phase(phases, "make_data"):
                make_dataset(data_dir, need, seed=0, progress=False)
        for label in ("256", "demo"):
            _subset(data_dir, plan["images"][256 if label == "256" else "demo"], tmp / f"subset-{label}")
        if not only:
            _every_measurement(results, plan, tmp, paper_config, demo_config, variants, log)
        races = {  # (the paper recipe, the recommended one, the paper's at the recommended crop and batch, the size)
            "time_to_quality": (demo_config, recommended_config, False, "64x64"),  # both read the demo's images
            "time_to_quality_256": (paper_config, recommended_256_config, True, "256x256")}
        for name, (paper, recommended, same_framing, size) in races.items():
            paper_epochs, max_epochs = plan.get(name, (0, 0))
            if paper_epochs and (not only or name in only):
                log(f"time to quality at {size} ({plan['images']['demo']} images): ...")
                with phase(phases, name):
                    results[name] = in_child(
                        "child_time_to_quality", {}, log, paper_config=str(Path(paper).resolve()),
                        recommended_config=str(Path(recommended).resolve()), data_dir=str(tmp / "subset-demo"),
                        paper_epochs=paper_epochs, max_epochs=max_epochs, same_framing=same_framing)
                results[name]["machine"] = results["machine"]["cpu"]
    return results


def _every_measurement(results, plan, tmp, paper_config, demo_config, variants, log):
    """Every phase but the races: the matmul rooflines, each size's section, the explorer and claim (a)'s step."""
    phases = results["phases"]
    roofline, roofline_auto = _rooflines(results, plan["matmul_seconds"], log)
    for label, config_path in (("256", paper_config), ("demo", demo_config)):
        section = in_child("size_section", {}, log, config_path=str(Path(config_path).resolve()),
                           name=str(config_path),
                           data_dir=str(tmp / f"subset-{label}"), plan=plan, variants=variants,
                           roofline=roofline, roofline_auto=roofline_auto, generation=label == "256")
        _add_section(results, section)
    log("explorer latency at the demo size, 4 clients ...")
    with phase(phases, "explore"):
        results["explore"] = _explore_phase(demo_config, tmp / "subset-demo", tmp / "explore-run",
                                            plan["explore_requests"])
    e = results["explore"]
    log(f"  decode p50 {e['decode']['p50_ms']} ms, p95 {e['decode']['p95_ms']} ms; edit p50 {e['edit']['p50_ms']} "
        f"ms, p95 {e['edit']['p95_ms']} ms; {e['decode']['requests_per_s']} decodes/s")
    results["kl_step"] = _kl_step_phase(phases, (demo_config, paper_config), plan["kl_rounds"], log)


def _rooflines(results, seconds, log):
    """The dense matmul FLOP/s the training rates are a fraction of (phases ``matmul`` and, where ``train.precision:
    auto`` picks mixed_bfloat16, ``matmul_bfloat16``), into ``results`` in GFLOP/s. Returns (float32, auto's)."""
    machine, phases = results["machine"], results["phases"]
    with phase(phases, "matmul"):
        roofline = matmul_flops(seconds=seconds)
    results["matmul_gflop_s"] = round(roofline / 1e9, 1)
    log(f"{machine['cpu']}; flags: " + " ".join(f for f, on in machine["cpu_flags"].items() if on)
        + f"; auto precision: {machine['auto_precision']}")
    log(f"dense float32 matmul: {roofline / 1e9:.1f} GFLOP/s")
    roofline_auto = roofline
    if machine["auto_precision"] == "mixed_bfloat16":
        with phase(phases, "matmul_bfloat16"):
            roofline_auto = matmul_flops(seconds=seconds, dtype="bfloat16")
        results["matmul_bf16_gflop_s"] = round(roofline_auto / 1e9, 1)
        log(f"dense bfloat16 matmul: {roofline_auto / 1e9:.1f} GFLOP/s")
    return roofline, roofline_auto


def _add_section(results, section):
    """One image size's section (:func:`cartoon_vae.bench_size.size_section`) into ``results``: its phases,
    its training, input pipeline and step-variant rows, and its generation and op profile where it has them."""
    results["phases"].update(section.pop("phases"))
    results["training"].append(section["training"])
    results["input_pipeline"].append(section["input_pipeline"])
    results["step_variants"] += section["step_variants"]
    if section.get("generation"):
        results["generation"] = section["generation"]
    if section.get("op_profile"):
        results.setdefault("op_profiles", []).append(section["op_profile"])


def _kl_step_phase(phases, config_paths, rounds, log) -> list:
    """Claim (a)'s timing (:func:`cartoon_vae.bench_step.kl_step_timing`) at each config's size (phase
    ``kl_step``): the train step on eq. 5 against eq. 4, same model and batch, interleaved."""
    log("claim (a): the train step on eq. 5 against eq. 4, same model and batch, interleaved ...")
    timings = []
    with phase(phases, "kl_step"):
        for config_path in config_paths:
            from .bench_step import kl_step_timing

            k = kl_step_timing(load_config(config_path), rounds)
            timings.append(k)
            log(f"  {k['image_size']}x{k['image_size']}: eq. 5 {k['eq5_img_s']} img/s, eq. 4 {k['eq4_img_s']} img/s, "
                f"time per image {100 * k['time_change'][0]:+.1f}% .. {100 * k['time_change'][1]:+.1f}%: {k['verdict']}")
    return timings


def _explore_phase(config_path, data_dir, run_dir, requests) -> dict:
    """The explorer's latency (:func:`cartoon_vae.bench_explore.explore_latency`) on a run of the demo
    config trained for one epoch (latency does not depend on how well a model is trained)."""
    from .bench_explore import explore_latency
    from .train import train

    config = load_config(config_path).replace(data={"dir": str(data_dir), "cache": MEMORY}, train={"epochs": 1})
    train(config, run_dir, verbose=0)
    return explore_latency(run_dir, clients=4, requests=requests)
