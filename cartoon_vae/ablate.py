"""The paper's claims, tested: train variants on identical data with several seeds, measure, judge.

``configs/ablation.yaml`` names a base config, the variants (each changes one thing) and the
seeds; every run trains into ``runs_dir/VARIANT/seedN`` (a finished run is reused, an
unfinished one resumed), is evaluated with one probe, and ``docs/results.md`` gets, per claim,
the paired difference between two variants (or two samplers on the same models) seed by seed,
its t-interval, the effect size, the controls, and the verdict the interval supports
(:mod:`cartoon_vae.stats`).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import yaml

from .config import ConfigError, load_config, safe_load_config_text
from .reports import SAMPLERS, results_markdown
from .runs import write_text_atomic

ABLATION_KEYS = {"base", "data", "seeds", "set", "variants", "runs_dir", "probe", "probe_epochs", "results",
                 "samples", "confidence", "bootstrap", "equivalence", "fid"}
VARIANT_KEYS = {"name", "set", "base", "evaluate"}


def load_ablation(path) -> dict:
    """The ablation YAML, checked: unknown keys and malformed variants are one-line ConfigErrors."""
    path = Path(path)
    try:
        spec = safe_load_config_text(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: YAML syntax error: {getattr(e, 'problem', e)}") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: expected a mapping with keys {', '.join(sorted(ABLATION_KEYS))}")
    unknown = set(spec) - ABLATION_KEYS
    if unknown:
        raise ConfigError(f"{path}: {sorted(unknown)[0]}: unknown key (valid: {', '.join(sorted(ABLATION_KEYS))})")
    for v in spec.get("variants", []):
        if not isinstance(v, dict) or "name" not in v:
            raise ConfigError(f"{path}: variants: each needs a name and a list under set, got {v!r}")
        if set(v) - VARIANT_KEYS:
            raise ConfigError(f"{path}: variants: {v['name']}: {sorted(set(v) - VARIANT_KEYS)[0]}: unknown key "
                              f"(valid: {', '.join(sorted(VARIANT_KEYS))})")
    if not spec.get("variants") or not spec.get("seeds"):
        raise ConfigError(f"{path}: variants and seeds must be non-empty lists")
    if not 0.5 < float(spec.get("confidence", 0.95)) < 1:
        raise ConfigError(f"{path}: confidence: must be in (0.5, 1), got {spec['confidence']!r}")
    return spec


def variant_config(spec, variant, seed):
    """The config of one run: the variant's base (or the ablation's), the shared overrides, the
    variant's, then the seed."""
    base = [*spec.get("set", []), *([f"data.dir={spec['data']}"] if spec.get("data") else [])]
    overrides = [*base, *variant.get("set", []), f"train.seed={seed}", f"model.seed={seed}"]
    return load_config(variant.get("base", spec["base"]), overrides)


def write_report(path, report) -> Path:
    """docs/results.md (and results.json) from per-run records."""
    spec = load_ablation(path)
    results = Path(spec.get("results", "docs/results.md"))
    results.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(results, results_markdown(spec, report, path))
    write_text_atomic(results.with_suffix(".json"), json.dumps(report, indent=1) + "\n")
    return results


def report_only(path) -> Path:
    """Rebuild the report from the results.json of an earlier ``ablate`` run (no training)."""
    spec = load_ablation(path)
    stored = Path(spec.get("results", "docs/results.md")).with_suffix(".json")
    if not stored.exists():
        raise ConfigError(f"{stored}: no stored results; run cartoon-vae ablate --config {path} first")
    stored = json.loads(stored.read_text())
    if "rows" not in stored:
        raise ConfigError(f"{Path(spec.get('results', 'docs/results.md')).with_suffix('.json')}: results of an older "
                          f"ablate; run cartoon-vae ablate --config {path} again")
    return write_report(path, stored)


def run_ablation(path, verbose=1, train_only=False) -> dict:
    """Train every variant x seed (finished runs are reused, unfinished ones resumed, diverged ones
    remembered in ``diverged.json``), then evaluate and report unless ``train_only``."""
    from .probe import train_probe
    from .runs import read_history
    from .train import NonFiniteLoss, train

    spec = load_ablation(path)
    started = time.time()
    runs_dir = Path(spec.get("runs_dir", "runs/ablation"))
    probe_dir = Path(spec.get("probe", runs_dir / "probe"))
    rows = {}
    for variant in spec["variants"]:
        for seed in spec["seeds"]:
            run = runs_dir / variant["name"] / f"seed{seed}"
            record = {"variant": variant["name"], "seed": seed, "run": str(run), "diverged": False}
            if (run / "diverged.json").exists():
                record.update(json.loads((run / "diverged.json").read_text()))
            elif not (run / "model.keras").exists():
                try:
                    train(variant_config(spec, variant, seed), run, resume=(run / "config.yaml").exists(),
                          verbose=verbose)
                except NonFiniteLoss as e:
                    record.update(diverged=True, error=str(e))
                    run.mkdir(parents=True, exist_ok=True)  # a run that diverged in epoch 1 leaves no folder
                    write_text_atomic(run / "diverged.json", json.dumps({"diverged": True, "error": str(e)}) + "\n")
            if (run / "history.csv").exists():
                record.update(_training_summary(read_history(run / "history.csv")))
            if not train_only and not record["diverged"] and variant.get("evaluate", True) is not False:
                if not (probe_dir / "probe.keras").exists():
                    train_probe(variant_config(spec, spec["variants"][0], spec["seeds"][0]), probe_dir,
                                epochs=spec.get("probe_epochs", 15), verbose=verbose)
                record.update(_evaluate(spec, variant, seed, run, probe_dir))
                if seed == spec["seeds"][0]:
                    record["figure"] = str(_sampler_figure(spec, variant, run))
            rows.setdefault(variant["name"], []).append(record)
            if verbose:
                print(json.dumps({k: v for k, v in record.items() if not isinstance(v, (list, dict))}))
    if not train_only:
        write_report(path, {"rows": rows, "evaluation_seconds": time.time() - started, "machine": _machine()})
    return rows


def _training_summary(history) -> dict:
    """From history.csv: seconds per epoch (epoch 1, which also decodes images and traces the graph,
    left out), the final validation numbers, and the curve of validation MSE against seconds (epoch
    1 counted at the median epoch time, so every run starts equal)."""
    seconds = [r["seconds"] for r in history]
    steady = seconds[1:] or seconds
    elapsed = np.cumsum([float(np.median(steady))] + steady)[: len(history)]
    last = history[-1]
    return {"epochs": len(history), "seconds_per_epoch": float(np.mean(steady)), "train_seconds": float(sum(seconds)),
            "final_val_mse": last["val_reconstruction_loss"], "final_val_kl_exact": last["val_kl_exact"],
            "final_val_kl_trained": last["val_kl_loss"],
            "val_mse_curve": [[float(t), float(r["val_reconstruction_loss"])] for t, r in zip(elapsed, history)]}


def _fid_wanted(spec, variant, seed) -> bool:
    """Whether this run gets the Inception FID: ``fid.variants`` maps a variant to ``all`` or a list of seeds."""
    from .fid import FidUnavailable, require

    wanted = spec.get("fid", {}).get("variants", {})
    wanted = dict.fromkeys(wanted, "all") if isinstance(wanted, list) else wanted
    seeds = wanted.get(variant["name"])
    if seeds is None or (seeds != "all" and seed not in seeds):
        return False
    try:
        require()
        return True
    except FidUnavailable:
        return False


def _evaluate(spec, variant, seed, run, probe_dir) -> dict:
    """evaluate_run's numbers for one run, flattened (a stored metrics.json with the same settings is reused)."""
    from .evaluate import SETTINGS, evaluate_run

    fid = spec.get("fid", {})
    light = variant.get("evaluate", True) == "light"  # no edits: a variant outside the claims' comparisons
    settings = {"samples": spec.get("samples", 500), "bootstrap": spec.get("bootstrap", 200),
                "confidence": spec.get("confidence", 0.95), "fid": _fid_wanted(spec, variant, seed),
                "fid_images": fid.get("images", 150), "showcase": {}, "edit_faces": 50, "edits": not light}
    stored = run / "metrics.json"
    m = json.loads(stored.read_text()) if stored.exists() else None
    if m is None or any(m["settings"].get(k, SETTINGS.get(k)) != v for k, v in settings.items()):
        m = evaluate_run(run, probe_dir, settings=settings)
    out = {"mse": m["reconstruction"]["mse"], "ssim": m["reconstruction"]["ssim"],
           "kl_exact_heldout": m["latent"]["kl_exact_nats_per_image"],
           "kl_poly_heldout": m["latent"]["kl_poly_bound_nats_per_image"],
           "variance_above_one": m["latent"]["variance_above_one_fraction"],
           "active_units": m["latent"]["active_units"], "unevenness": m["latent"]["interpolation_unevenness"],
           "midpoint_fd_attr": m["latent"]["midpoint_fd_attr"],
           "edit_gain": m.get("editing", {}).get("gain_mean", math.nan),
           "edit_preservation": m.get("editing", {}).get("preservation_mean", math.nan)}
    for mode in SAMPLERS:
        b = m["samples"][mode]
        out.update({f"fd_attr_{mode}": b["fd_attr"], f"fd_attr_{mode}_interval": b["fd_attr_interval"],
                    f"kid_attr_{mode}": b["kid_attr"]["mean"], f"precision_{mode}": b["precision"],
                    f"recall_{mode}": b["recall"]})
        if "fid" in m:
            out.update({f"fid_{mode}": m["fid"][mode]["fid"], f"kid_{mode}": m["fid"][mode]["kid"]["mean"]})
    if "fid" in m:
        out["fid_images"] = m["fid"]["minmax"]["generated_images"]
    if "disentanglement" in m:
        d = m["disentanglement"]
        out.update(mig=d["mig"], dci_disentanglement=d["dci"]["disentanglement"],
                   dci_completeness=d["dci"]["completeness"], dci_informativeness=d["dci"]["informativeness"],
                   sap=d["sap"])
    return out


def _sampler_figure(spec, variant, run, n=8) -> Path:
    """One grid per variant (its first seed): a row of faces from each sampler beside real held-out faces,
    in the report's folder, so the verdict on realism has the pictures beside the numbers."""
    from .data import make_datasets
    from .figures import save_grid
    from .inference import decode, first_images
    from .runs import load_run
    from .samplers import sample_all

    vae, config = load_run(run)
    real = first_images(make_datasets(config, with_index=True, shuffle_train=False)[1], n)
    latents = sample_all(run, vae, config, n, 0)
    out = Path(spec.get("results", "docs/results.md")).parent / "figures" / f"ablation_{variant['name']}_samplers.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    save_grid(np.concatenate([real, *(decode(vae, latents[m]) for m in ("minmax", "normal", "gmm"))]), out, 4, n,
              row_labels=["held-out real", "min-max", "N(0, I)", "mixture"],
              title=f"{variant['name']} (seed {spec['seeds'][0]}): samples by sampler")
    return out


def _machine() -> str:
    import os

    from .hardware import cpu_model

    return f"{cpu_model()}, {os.cpu_count()} cores, no GPU used"
