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
import re
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal, Optional, Union

import numpy as np
import yaml

from .config import (MAX_SEED, ConfigError, _check, _positive_int, build, load_config, read_config_text,
                     safe_load_config_text)
from .reports import SAMPLERS, results_markdown
from .runs import write_text_atomic

_SAFE_NAME = re.compile(r"[A-Za-z0-9_@+-][A-Za-z0-9._@+-]{0,99}")


@dataclass(frozen=True)
class Variant:
    """One variant: a name, overrides of the base config (or of its own ``base``), and whether it is
    evaluated (``light``: without edit scores, for a variant outside the claims' comparisons)."""

    name: str
    set: tuple[str, ...] = ()
    base: Optional[str] = None
    evaluate: Union[bool, Literal["light"]] = True


@dataclass(frozen=True)
class FidSpec:
    """The standard Inception FID: ``images`` per set, and which variants get it (``all`` seeds or a list)."""

    images: int = field(default=150, metadata=_positive_int(100_000))
    variants: dict[str, Union[Literal["all"], tuple[int, ...]]] = field(default_factory=dict)


@dataclass(frozen=True)
class AblationSpec:
    """configs/ablation.yaml: the base config, the variants x seeds, and how runs are evaluated and judged."""

    base: str
    # distinct seeds: one run counted twice would narrow every interval and could turn a verdict
    seeds: tuple[int, ...] = field(metadata=_check(lambda v: len(set(v)) == len(v) and all(0 <= s <= MAX_SEED for s in v),
                                                   f"a list of distinct integers in [0, {MAX_SEED:,}]"))
    # a variant's name is its run folder under runs_dir: one plain folder name, never a path
    variants: tuple[Variant, ...] = field(metadata=_check(
        lambda v: len({x.name for x in v}) == len(v) and all(_SAFE_NAME.fullmatch(x.name) for x in v),
        "a list of variants with distinct names of letters, digits and . _ @ + - (not starting with '.')"))
    data: Optional[str] = None
    set: tuple[str, ...] = ()
    runs_dir: str = "runs/ablation"
    probe: Optional[str] = None
    probe_epochs: int = field(default=15, metadata=_positive_int(10_000))
    results: str = "docs/results.md"
    samples: int = field(default=500, metadata=_positive_int(1_000_000))
    confidence: float = field(default=0.95, metadata=_check(lambda v: 0.5 < v < 1, "a number in (0.5, 1)"))
    bootstrap: int = field(default=200, metadata=_positive_int(100_000))
    equivalence: dict[str, float] = field(default_factory=dict)
    fid: FidSpec = FidSpec()


def load_ablation(path) -> AblationSpec:
    """The ablation YAML as an :class:`AblationSpec`: unknown keys, wrong types and bad ranges are
    one-line ConfigErrors (the training config's machinery, :func:`cartoon_vae.config.build`)."""
    path = Path(path)
    try:
        raw = safe_load_config_text(read_config_text(path))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: YAML syntax error: {getattr(e, 'problem', e)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with keys {', '.join(f.name for f in fields(AblationSpec))}")
    spec = build(AblationSpec, raw, path)
    if not spec.variants or not spec.seeds:
        raise ConfigError(f"{path}: variants and seeds must be non-empty lists")
    return spec


def variant_config(spec, variant, seed):
    """The config of one run: the variant's base (or the ablation's), the shared overrides, the
    variant's, then the seed."""
    base = [*spec.set, *([f"data.dir={spec.data}"] if spec.data else [])]
    overrides = [*base, *variant.set, f"train.seed={seed}", f"model.seed={seed}"]
    return load_config(variant.base or spec.base, overrides)


def write_report(path, report) -> Path:
    """docs/results.md (and results.json) from per-run records."""
    spec = load_ablation(path)
    results = Path(spec.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(results, results_markdown(spec, report, path))
    write_text_atomic(results.with_suffix(".json"), json.dumps(report, indent=1) + "\n")
    return results


def report_only(path) -> Path:
    """Rebuild the report from the results.json of an earlier ``ablate`` run (no training)."""
    spec = load_ablation(path)
    stored = Path(spec.results).with_suffix(".json")
    if not stored.exists():
        raise ConfigError(f"{stored}: no stored results; run cartoon-vae ablate --config {path} first")
    stored = json.loads(stored.read_text())
    if "rows" not in stored:
        raise ConfigError(f"{Path(spec.results).with_suffix('.json')}: results of an older "
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
    runs_dir = Path(spec.runs_dir)
    probe_dir = Path(spec.probe or runs_dir / "probe")
    rows = {}
    for variant in spec.variants:
        for seed in spec.seeds:
            run = runs_dir / variant.name / f"seed{seed}"
            record = {"variant": variant.name, "seed": seed, "run": str(run), "diverged": False}
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
            if not train_only and not record["diverged"] and variant.evaluate is not False:
                if not (probe_dir / "probe.keras").exists():
                    train_probe(variant_config(spec, spec.variants[0], spec.seeds[0]), probe_dir,
                                epochs=spec.probe_epochs, verbose=verbose)
                record.update(_evaluate(spec, variant, seed, run, probe_dir))
                if seed == spec.seeds[0]:
                    record["figure"] = str(_sampler_figure(spec, variant, run))
            rows.setdefault(variant.name, []).append(record)
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

    seeds = spec.fid.variants.get(variant.name)
    if seeds is None or (seeds != "all" and seed not in seeds):
        return False
    try:
        require()
        return True
    except FidUnavailable:
        return False


def _evaluate(spec, variant, seed, run, probe_dir) -> dict:
    """evaluate_run's numbers for one run, flattened (a stored metrics.json with the same settings is reused)."""
    from .evaluate import evaluate_run, evaluation_settings

    light = variant.evaluate == "light"  # no edits: a variant outside the claims' comparisons
    settings = {"samples": spec.samples, "bootstrap": spec.bootstrap, "confidence": spec.confidence,
                "fid": _fid_wanted(spec, variant, seed), "fid_images": spec.fid.images, "showcase": {},
                "edit_faces": 50, "edits": not light}
    stored = run / "metrics.json"
    m = json.loads(stored.read_text()) if stored.exists() else None
    defaults = evaluation_settings()
    if m is None or any(m["settings"].get(k, defaults[k]) != v for k, v in settings.items()):
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
    from .batches import make_datasets
    from .figures import save_grid
    from .inference import decode, first_images
    from .runs import load_run
    from .samplers import sample_all

    vae, config = load_run(run)
    real = first_images(make_datasets(config, with_index=True, shuffle_train=False)[1], n)
    latents = sample_all(run, vae, config, n, 0)
    out = Path(spec.results).parent / "figures" / f"ablation_{variant.name}_samplers.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    save_grid(np.concatenate([real, *(decode(vae, latents[m]) for m in ("minmax", "normal", "gmm"))]), out, 4, n,
              row_labels=["held-out real", "min-max", "N(0, I)", "mixture"],
              title=f"{variant.name} (seed {spec.seeds[0]}): samples by sampler")
    return out


def _machine() -> str:
    import os

    from .hardware import cpu_model

    return f"{cpu_model()}, {os.cpu_count()} cores, no GPU used"
