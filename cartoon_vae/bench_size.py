"""One image size's part of the benchmark, run in a fresh process per size (:func:`size_section`):
the interleaved training loops, the reference loop under TensorFlow's defaults, the input pipeline,
generation, and the step variants with the op profile.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import numpy as np

from .bench_loops import project_epochs, reference_epochs
from .bench_measure import MEMORY, in_child, interleave, phase, rate_ratio, training_flops_per_image
from .bench_step import CHILD_VARIANTS, STEP_VARIANTS, generation_rates, input_pipeline_rates, op_profile, step_runner
from .config import load_config

def size_section(config_path, name, data_dir, plan, variants, roofline, roofline_auto, generation, log=print) -> dict:
    """Everything the benchmark measures at one config's image size, run by :func:`run_benchmark` in
    a fresh process (:func:`in_child`) per size: the interleaved training loops, the reference loop
    with TensorFlow's defaults, the input pipeline, generation (``generation``), and with
    ``variants`` the step variants and the op profile. ``name``: the config as the user gave it."""
    from .data import list_images
    from .hardware import resolve_precision

    auto = resolve_precision("auto")
    config = load_config(config_path).replace(data={"dir": data_dir, "cache": MEMORY})
    size, batch = config.data.image_size, config.data.batch_size
    n = len(list_images(data_dir))
    out = {"phases": {}, "step_variants": []}
    phases = out["phases"]
    log(f"training at {size}x{size}, batch {batch}, {n} images: {plan['rounds']} rounds of one epoch "
        f"per loop, interleaved, after a warm-up round ...")
    rates, vae, initial = _training_rates(config, auto, plan["rounds"], phases)
    with tempfile.TemporaryDirectory() as tmp:
        config_file, weights_file = _to_files(config, initial, Path(tmp))
        with phase(phases, f"train_reference_tf_defaults_{size}"):  # the child's own memory is not counted
            defaults = in_child("child_reference_training", {"TF_ENABLE_ONEDNN_OPTS": "0"},
                                config_path=config_file, epochs=2, weights_path=weights_file)
        row = _training_row(config, name, n, rates, defaults, training_flops_per_image(vae), auto,
                            roofline, roofline_auto)
        out["training"] = row
        _log_training(row, defaults, auto, log)
        out["input_pipeline"] = _input_pipeline_row(config, row["project_img_s"], phases, log)
        if generation:
            with phase(phases, f"generation_{size}"):
                g = out["generation"] = {"image_size": size, **generation_rates(vae, batch, plan["generation_reps"])}
            log(f"  generation: 10 faces in {g['latency_10_ms']} ms, {g['batched_img_s']} img/s batched")
        if variants:
            with phase(phases, f"step_variants_{size}"):
                out["step_variants"] = _variants(config, config_file, plan["variant_rounds"], log)
            p = out["op_profile"] = op_profile(config)
            if p:
                log(f"  where the step's time goes (ms per step over threads, step {p['step_ms']} ms): "
                    + ", ".join(f"{g} {ms}" for g, ms in p["groups_ms"].items()))
    return out


def _training_rates(config, auto, rounds, phases):
    """The training loops' images/s over ``rounds`` interleaved rounds (phase ``train_{size}``): the project's
    loop, the reference loop from the same initial weights and, where ``auto`` is not float32, the project's
    loop in ``auto`` (else its rates stand for it). Returns (rates per loop, the project's model, the initial
    weights)."""
    with phase(phases, f"train_{config.data.image_size}"):
        project, vae = project_epochs(config)
        initial = vae.get_weights()
        loops = {"project": project, "reference": reference_epochs(config, initial)}
        if auto != "float32":
            loops["auto"] = project_epochs(config, auto, initial)[0]
        rates = interleave(loops, rounds)
    rates.setdefault("auto", rates["project"])
    return rates, vae, initial


def _log_training(row, defaults, auto, log):
    """The training comparison of one size (:func:`_training_row`) in two lines of the log."""
    log(f"  project {row['project_img_s']} img/s, reference {row['reference_img_s']} img/s: "
        f"{row['speedup']}x {row['speedup_interval']} (reference with TensorFlow's defaults, oneDNN off, "
        f"own process: {defaults:.1f} img/s); {row['project_gflop_s']} GFLOP/s = "
        f"{100 * row['fraction_of_matmul']:.0f}% of matmul")
    log(f"  {auto}: {row['auto_img_s']} img/s, {row['auto_vs_float32']}x float32 "
        f"{row['auto_vs_float32_interval']}, {row['auto_speedup']}x the reference loop")


def _input_pipeline_row(config, training_img_s, phases, log) -> dict:
    """The input pipeline alone, cold and cached (phase ``input_pipeline_{size}``), beside the rate training
    consumes images."""
    size = config.data.image_size
    with phase(phases, f"input_pipeline_{size}"):
        pipeline = input_pipeline_rates(config)
    row = {"image_size": size, "cold_img_s": round(pipeline["cold"], 1),
           "cached_img_s": round(pipeline["cached"], 1), "training_img_s": training_img_s}
    log(f"  input pipeline: cold {pipeline['cold']:.0f} img/s, cached {pipeline['cached']:.0f} img/s")
    return row


def _median(values):
    return round(statistics.median(values), 2)


def _training_row(config, config_path, n, rates, defaults, flops, auto, roofline, roofline_auto) -> dict:
    """One size's training comparison from the interleaved rates: medians, paired ratios, FLOP/s."""
    project, reference, fast = (_median(rates[k]) for k in ("project", "reference", "auto"))
    speedup = rate_ratio(rates["project"], rates["reference"])
    auto_vs = rate_ratio(rates["auto"], rates["project"])
    auto_speedup = rate_ratio(rates["auto"], rates["reference"])
    return {"image_size": config.data.image_size, "batch_size": config.data.batch_size, "images": n,
            "config": str(config_path), "rounds": speedup["rounds"],
            "project_img_s": project, "reference_img_s": reference,
            "speedup": speedup["ratio"], "speedup_interval": speedup["interval"],
            "auto_precision": auto, "auto_img_s": fast, "auto_vs_float32": auto_vs["ratio"],
            "auto_vs_float32_interval": auto_vs["interval"], "auto_speedup": auto_speedup["ratio"],
            "auto_speedup_interval": auto_speedup["interval"],
            "auto_fraction_of_roofline": round(fast * flops / roofline_auto, 3),
            "reference_tf_defaults_img_s": round(defaults, 2), "speedup_vs_tf_defaults": round(project / defaults, 2),
            "gflop_per_image": round(flops / 1e9, 3), "project_gflop_s": round(project * flops / 1e9, 1),
            "fraction_of_matmul": round(project * flops / roofline, 3),
            "reference_fraction_of_matmul": round(reference * flops / roofline, 3),
            "rates": {k: [round(v, 2) for v in r] for k, r in rates.items()}}


def _variants(config, config_path, rounds, log, batch_size=32):
    """The training step under each of :data:`STEP_VARIANTS` and :data:`CHILD_VARIANTS` (the latter in
    fresh processes), interleaved, against the project's step."""
    size = config.data.image_size
    images = 128 if size > 128 else 1024
    runners = {v: step_runner(config, v, batch_size, images) for v in STEP_VARIANTS}
    for name, env in CHILD_VARIANTS.items():
        runners[name] = lambda env=env: in_child("child_step", env, config_path=config_path,
                                                 batch_size=batch_size, images=images)
    rates = interleave(runners, rounds, warmup=0)
    rows = []
    for name, r in rates.items():
        ratio = rate_ratio(r, rates["project"])
        rows.append({"image_size": size, "variant": name, "img_s": _median(r), "relative": ratio["ratio"],
                     "interval": ratio["interval"], "rounds": ratio["rounds"]})
        log(f"  step variant {name}: {rows[-1]['img_s']} img/s ({ratio['ratio']}x the project's step, "
            f"{ratio['interval']})")
    return rows


def _to_files(config, weights, folder):
    """Write a config and a weight list where a child process can read them."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    config_path, weights_path = folder / "config.yaml", folder / "weights.npz"
    config_path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    np.savez(weights_path, **{f"w{i}": w for i, w in enumerate(weights)})
    return str(config_path), str(weights_path)
