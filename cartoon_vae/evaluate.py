"""Measured quality of a run: reconstructions, the latent space, samples, and attribute edits.

``evaluate_run`` writes ``metrics.json`` and ``metrics.md`` in the run folder. Every
count and seed is fixed and written in the output. Reconstructions decode the latent
means (deterministic). Real images for the sample metrics are the held-out split.

Example:
    >>> metrics = evaluate_run("runs/demo", "probes/demo")
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .config import MAX_SEED, MIN_SAMPLES, _check, build
from .edit_scores import counterfactuals, evaluate_edits, generator_note
from .inference import decode, first_images, sample_labels
from .latent import interpolate
from .losses import kl_exact, kl_poly_bound
from .metrics import (active_units, ssim_psnr, dci, frechet_distance, interpolation_unevenness, kernel_inception_distance, mig,
                      precision_recall, sap, total_variation)
from .reports import metrics_markdown
from .runs import write_text_atomic
from .samplers import sample_all
from .stats import bootstrap_interval

def _at_least(low, high=None, integer=True):
    words = f"an integer in [{low:,}, {high:,}]" if high is not None else f"an integer >= {low}"
    return _check(lambda v: low <= v and (high is None or v <= high), words if integer else words.replace(
        "an integer", "a number"))


@dataclass(frozen=True)
class EvaluationSettings:
    """Every count, seed and threshold of ``evaluate_run`` (written into metrics.json): sample counts and
    seeds, the KID / precision-recall / bootstrap settings, the disentanglement estimators, and the edits
    (how many held-out faces, to which variant, how, which attributes count, the showcase edits)."""

    samples: int = field(default=1000, metadata=_at_least(MIN_SAMPLES, 1_000_000))
    sample_seed: int = field(default=0, metadata=_at_least(0, MAX_SEED))
    kid_subsets: int = field(default=10, metadata=_at_least(1, 10_000))
    kid_subset_size: int = field(default=100, metadata=_at_least(2, 1_000_000))
    pr_k: int = field(default=3, metadata=_at_least(1, 1000))
    bootstrap: int = field(default=200, metadata=_at_least(2, 100_000))
    confidence: float = field(default=0.95, metadata=_check(lambda v: 0.5 < v < 1, "a number in (0.5, 1)"))
    fid: bool = False
    fid_images: int = field(default=500, metadata=_at_least(2, 1_000_000))
    sap_train_codes: int = field(default=1000, metadata=_at_least(1, 10_000_000))
    mig_bins: int = field(default=20, metadata=_at_least(2, 10_000))
    dci_estimator: Literal["linear", "gbt"] = "linear"
    midpoint_pairs: int = field(default=500, metadata=_at_least(1, 1_000_000))
    edits: bool = True
    edit_faces: int = field(default=100, metadata=_at_least(1, 1_000_000))
    edit_target: int = field(default=1, metadata=_at_least(0, 10_000))
    edit_mode: Literal["class", "probability"] = "class"
    edit_probability: float = field(default=0.9, metadata=_check(lambda v: 0.5 < v < 1, "a number in (0.5, 1)"))
    edit_hold: Literal["readable", "none"] = "readable"
    interpolation_pairs: int = field(default=20, metadata=_at_least(1, 100_000))
    interpolation_steps: int = field(default=10, metadata=_at_least(2, 1000))
    max_images: int = field(default=2000, metadata=_at_least(1, 10_000_000))
    edit_readable: float = field(default=0.8, metadata=_check(lambda v: 0 <= v <= 1, "a number in [0, 1]"))
    showcase_faces: int = field(default=6, metadata=_at_least(1, 100_000))
    # attribute -> target variants (-1: the last variant, "none" for glasses)
    showcase: dict[str, tuple[int, ...]] = field(
        default_factory=lambda: {"glasses": (-1,), "hair_color": tuple(range(10))})
    # edits judged against the true counterfactual face (embedded set only): attribute -> target variants
    # (-1: the last, "none" for glasses and facial hair), on up to counterfactual_faces held-out faces each
    counterfactual_faces: int = field(default=200, metadata=_at_least(0, 100_000))
    counterfactual_edits: dict[str, tuple[int, ...]] = field(default_factory=lambda: {
        "hair_color": tuple(range(10)), "glasses": (-1, 0), "facial_hair": (-1,), "face_color": (0, 10), "hair": (0,)})
    counterfactual_on_photo: bool = True  # also judge each edit added to the photo and composited onto it (edit.ON_PHOTO)
    counterfactual_figures: dict[str, tuple[int, ...]] = field(default_factory=lambda: {
        "hair_color": (5,), "glasses": (-1,), "facial_hair": (-1,)})
    # colour fidelity per region (embedded set only, :mod:`cartoon_vae.colour`): held-out faces judged, and the
    # faces shown in colour_worst.png (those with the largest worst-region distance)
    colour_faces: int = field(default=200, metadata=_at_least(0, 100_000))
    colour_figure_faces: int = field(default=8, metadata=_at_least(1, 1000))


def evaluation_settings(overrides=None) -> dict:
    """The settings with ``overrides`` applied and checked (unknown keys, types, ranges: one-line
    ConfigErrors), as plain JSON values, in the order metrics.json records them."""
    built = build(EvaluationSettings, dict(overrides or {}), "evaluation settings")
    return json.loads(json.dumps(dataclasses.asdict(built)))


def _sample_block(probe, real_feats, real_preds, images, s):
    feats, preds = probe.features_and_predictions(images)
    # k-NN radii depend on the set size, so precision and recall compare equal numbers of each.
    precision, recall = precision_recall(real_feats, feats[: len(real_feats)], k=s["pr_k"])
    tv = {n: total_variation(np.bincount(preds[n], minlength=k) + 1e-12, np.bincount(real_preds[n], minlength=k)
                             + 1e-12) for n, k in probe.n_variants.items()}
    fd_interval = bootstrap_interval(frechet_distance, [real_feats, feats], s["bootstrap"], s["confidence"],
                                     s["sample_seed"])
    return {"fd_attr": frechet_distance(real_feats, feats), "fd_attr_interval": fd_interval, "images": int(len(feats)),
            "kid_attr": kernel_inception_distance(real_feats, feats, s["kid_subsets"], s["kid_subset_size"],
                                                  s["sample_seed"]),
            "precision": precision, "recall": recall,
            "attribute_tv_mean": float(np.mean(list(tv.values()))), "attribute_tv": tv}


def evaluate_run(run_dir, probe_dir, settings=None, write=True) -> dict:
    """Measure a run on its held-out faces and write metrics.json and metrics.md (unless not ``write``):
    reconstructions, the latent space, each sampler's faces beside two controls, the probe's accuracy,
    disentanglement, optionally the Inception FID, and attribute edits (:class:`EvaluationSettings`)."""
    from .loaded import open_run
    from .probe import Probe

    s = evaluation_settings(settings)
    run = open_run(run_dir, s["max_images"])
    vae, config, attrs, held = run.vae, run.config, run.attrs, run.heldout
    probe = Probe.load(probe_dir)
    probe.check_compatible(config)
    labels, keep = _heldout_labels(run.run_dir, attrs, held.index)
    x, recon = held.images, decode(vae, held.means, held.labels)
    mixed = probe.info.get("mixed_reconstructions_of") or []
    out = {"run": str(run_dir), "probe": str(probe_dir), "heldout_images": int(len(x)), "settings": s,
           "probe_trained_on": f"originals and reconstructions by {', '.join(mixed)}" if mixed else "originals only",
           "reconstruction": _reconstruction(x, recon), "latent": _latent(vae, held.means, held.log_vars)}
    real_feats, real_preds = probe.features_and_predictions(x)
    figures = {}
    if labels is not None:
        out["unlabelled_heldout_images"] = int((~keep).sum())
        out["probe_accuracy"] = _probe_accuracy(probe, attrs, real_preds, probe.features_and_predictions(recon)[1],
                                                labels[keep], keep)
        if s["colour_faces"]:
            out["colour"], figures["colour"] = _colour(config, attrs, labels[keep], x[keep], recon[keep], s)
    train = run.train
    train_x = first_images(run.train_ds, s["samples"])
    out["samples"] = _samples(run.run_dir, vae, config, probe, real_feats, real_preds, train.means, train_x, s,
                              train.labels)
    out["latent"].update(_smoothness(vae, probe, real_feats, held.means, train.means, s, held.labels, train.labels))
    scores = _attribute_scores(run, probe, out, labels, keep, x, recon, s, figures) if labels is not None else {}
    if scores:  # in metrics.json's order: disentanglement, fid, then the edits
        out["disentanglement"] = scores.pop("disentanglement")
    if s["fid"]:
        out["fid"] = _fid(run.run_dir, vae, config, x, train.means, train_x, s, train.labels)
    out.update(scores)
    if write:
        _write(run.run_dir, out, figures, s)
    return out


def _attribute_scores(run, probe, out, labels, keep, x, recon, s, figures) -> dict:
    """What needs the held-out faces' attributes: disentanglement, the probe's edit scores and the edits judged
    against the true counterfactuals (their showcase images added to ``figures``)."""
    train_keep = run.attrs.labelled[run.train.index]
    labelled = (run.train.means[train_keep], run.train.rows[train_keep], run.heldout.means[keep], labels[keep])
    scores = {"disentanglement": disentanglement(*labelled, run.attrs.names, s)}
    if s["edits"]:
        readable = {n for n, v in out["probe_accuracy"]["per_attribute"].items()
                    if v["reconstructions"] >= s["edit_readable"]}
        scores["editing"] = evaluate_edits(run.vae, probe, run.attrs, *labelled, s, readable)
    if s["counterfactual_faces"]:
        scores["counterfactual"], figures["counterfactual"] = counterfactuals(
            run.vae, probe, run.config, run.attrs, labelled, x[keep], recon[keep], s)
    return scores


def _write(run_dir, out, figures, s):
    """metrics.json, metrics.md and the figures of an evaluation."""
    from .figures import colour_figure, counterfactual_figure

    for (name, to), images in figures.get("counterfactual", {}).items():
        counterfactual_figure(images, run_dir / f"counterfactual_{name}_to{to}.png", name, to)
    if figures.get("colour"):
        colour_figure(*figures["colour"], run_dir / "colour_worst.png", s["colour_figure_faces"])
    write_text_atomic(run_dir / "metrics.json", json.dumps(out, indent=1) + "\n")
    write_text_atomic(run_dir / "metrics.md", metrics_markdown(out))


def _heldout_labels(run_dir, attrs, idx):
    """The held-out faces' attribute rows and which of them have a CSV ((None, None): no labels at all);
    faces without one are counted and said, and left out of every attribute score."""
    if not attrs.names:
        return None, None
    labels = attrs.values[idx]
    keep = labels[:, 0] >= 0
    if not keep.all():
        print(f"{run_dir}: {int((~keep).sum())} of {len(keep)} held-out faces have no attribute CSV; "
              f"they are left out of the attribute scores")
    return (labels, keep) if keep.any() else (None, None)


def _colour(config, attrs, labels, images, recon, s):
    """Colour fidelity per region of the held-out faces (:mod:`cartoon_vae.colour`) and the images for
    colour_worst.png; on data the generator did not draw: a note and no figure."""
    from .colour import colour_fidelity

    note = generator_note(config, attrs, labels, images, "no generator draws each part of the face, so no region "
                           "is known; colour fidelity is measured on the embedded set only", "measure colour fidelity")
    if note:
        return note, None
    summary, per = colour_fidelity(config.data, labels, list(attrs.names), images, recon, s["colour_faces"])
    n = summary["faces"]
    return summary, (images[:n], recon[:n], per)


def _reconstruction(x, recon) -> dict:
    ssim, psnr = ssim_psnr(x, recon)
    return {"mse": float(np.mean((x - recon) ** 2)), "psnr": float(psnr.mean()), "ssim": float(ssim.mean())}


def _latent(vae, means, log_vars) -> dict:
    log_vars = np.asarray(vae.posterior_log_var(log_vars))  # the posterior sampling draws from (eq. 6 as used)
    return {"kl_exact_nats_per_image": float(np.mean(np.asarray(kl_exact(means, log_vars)))),
            "kl_poly_bound_nats_per_image": float(np.mean(np.asarray(kl_poly_bound(means, log_vars)))),
            "variance_above_one_fraction": float(np.mean(np.exp(log_vars) > 1.0)),
            "active_units": active_units(means), "latent_dim": int(means.shape[1])}


def _probe_accuracy(probe, attrs, real_preds, recon_preds, labels, keep) -> dict:
    """Per attribute: the probe's accuracy on the labelled originals and on their reconstructions."""
    per = {}
    for k, n in enumerate(attrs.names):
        if n in probe.names:
            acc_o = float(np.mean(real_preds[n][keep] == labels[:, k]))
            acc_r = float(np.mean(recon_preds[n][keep] == labels[:, k]))
            per[n] = {"originals": acc_o, "reconstructions": acc_r, "relative": acc_r / max(acc_o, 1e-9)}
    return {"relative_mean": float(np.mean([v["relative"] for v in per.values()])), "per_attribute": per}


def _samples(run_dir, vae, config, probe, real_feats, real_preds, train_means, train_x, s, train_y=None) -> dict:
    """Each sampler's faces against the held-out ones, and two controls: the decoder's own floor (its
    reconstructions of training faces, no sampler involved) and the metric's floor on this data (real
    training faces). A conditional model decodes samples with the labels of random training faces."""
    n = s["samples"]
    y = sample_labels(train_y, n, s["sample_seed"])
    out = {mode: _sample_block(probe, real_feats, real_preds, decode(vae, z, y), s)
           for mode, z in sample_all(run_dir, vae, config, n, s["sample_seed"]).items()}
    out["reconstructions"] = _sample_block(probe, real_feats, real_preds,
                                           decode(vae, train_means[:n], None if train_y is None else train_y[:n]), s)
    out["real_train"] = _sample_block(probe, real_feats, real_preds, train_x, s)
    out["note"] = ("FD_attr/KID_attr are distances to the held-out real images, with "
                   f"{int(100 * s['confidence'])}% bootstrap intervals; 'reconstructions' decodes training "
                   "faces' latent means (the floor a sampler can reach with this decoder); 'real_train' "
                   "is real training faces (the floor of the metric on this data)")
    return out


def _smoothness(vae, probe, real_feats, means, train_means, s, val_y=None, train_y=None) -> dict:
    """How real the decodes of midpoints between two training codes look (FD_attr), and how evenly the
    image changes along straight lines between held-out codes (a conditional model's labels move with z)."""
    rng = np.random.default_rng(s["sample_seed"])
    pairs = rng.integers(0, len(train_means), (s["midpoint_pairs"], 2))

    def line(codes, labels, i, j, steps):
        return decode(vae, interpolate(codes[i], codes[j], steps),
                      None if labels is None else interpolate(labels[i], labels[j], steps))

    i, j = pairs[:, 0], pairs[:, 1]
    mid = decode(vae, 0.5 * (train_means[i] + train_means[j]), None if train_y is None else 0.5 * (train_y[i] + train_y[j]))
    n_lines = min(s["interpolation_pairs"], len(means) // 2)
    uneven = [interpolation_unevenness(line(means, val_y, 2 * i, 2 * i + 1, s["interpolation_steps"]))
              for i in range(n_lines)]
    return {"midpoint_fd_attr": frechet_distance(real_feats, probe.features_and_predictions(mid)[0]),
            "interpolation_unevenness": float(np.mean(uneven))}


def _fid(run_dir, vae, config, x, train_means, train_x, s, train_y=None) -> dict:
    """The standard Inception FID/KID of each sampler and of the two controls (the [fid] extra)."""
    from .fid import fid_kid, inception_features

    n = min(s["fid_images"], len(x))
    real = inception_features(x[:n])
    y = sample_labels(train_y, n, s["sample_seed"])
    sets = {mode: decode(vae, z[:n], y) for mode, z in sample_all(run_dir, vae, config, n, s["sample_seed"]).items()}
    sets.update(reconstructions=decode(vae, train_means[:n], None if train_y is None else train_y[:n]),
                real_train=train_x[:n])
    out = {mode: fid_kid(real, inception_features(images), s["kid_subsets"], min(s["kid_subset_size"], n),
                         s["sample_seed"]) for mode, images in sets.items()}
    out["note"] = (f"Inception-v3 pool3 FID/KID against {n} held-out real faces, {n} images per set; "
                   "comparable only at equal counts and image size")
    return out


def disentanglement(train_codes, train_factors, test_codes, test_factors, names, s) -> dict:
    """MIG over the held-out codes; DCI and SAP with classifiers trained on training codes and
    scored on held-out ones (:mod:`cartoon_vae.metrics`)."""
    sap_n = s["sap_train_codes"]
    return {"mig": mig(test_codes, test_factors, s["mig_bins"]),
            "dci": dci(train_codes, train_factors, test_codes, test_factors, s["dci_estimator"]),
            "sap": sap(train_codes[:sap_n], train_factors[:sap_n], test_codes, test_factors),
            "factors": list(names), "train_codes": int(len(train_codes)), "test_codes": int(len(test_codes)),
            "note": "latent means against the ground-truth attributes; 1 = each factor in its own dimension"}


