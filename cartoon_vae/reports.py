"""Markdown reports, apart from the numbers they render: ``metrics.md`` of ``evaluate``,
``docs/results.md`` of ``ablate`` (the claims judged in :mod:`cartoon_vae.claims`) and ``docs/fidelity.md``.
``docs/editing.md`` is in :mod:`cartoon_vae.editing_report`; its names stay importable from here.

Every function here formats numbers it is given; none computes a metric or a verdict.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .claims import CLAIMS, EFFECTS, P, E, compare, judge, rank_agreement, stability_facts, values
from .editing_report import EDIT_TARGET, edit_verdict, editing_markdown

__all__ = ["CONTROLS", "EDIT_TARGET", "SAMPLERS", "comparison_table", "edit_verdict", "editing_markdown",
           "fidelity_markdown", "metrics_markdown", "results_markdown"]

SAMPLERS = ("minmax", "normal", "gmm", "reconstructions", "real_train")  # the ablation's sample sets, then the two controls
CONTROLS = ("reconstructions", "real_train")


def _ms(values_, digits):
    v = values_[np.isfinite(values_)]
    if not len(v):
        return "n/a"
    return f"{v.mean():.{digits}f} +- {v.std(ddof=1) if len(v) > 1 else 0:.{digits}f}"


def comparison_table(results, confidence) -> list:
    """Rows of paired comparisons (:func:`cartoon_vae.claims.compare`) as a Markdown table."""
    lines = ["| comparison (a vs b) | a | b | mean a - b | {:.0%} interval | d_z | pairs | equivalence margin | "
             "verdict |".format(confidence), "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        k, (lo, hi) = r["digits"], r["interval"]
        unit = " (relative)" if r["relative"] else ""
        lines.append(f"| {r['label']}{unit} | {_ms(r['a'], k)} | {_ms(r['b'], k)} | {r['mean']:+.{k}f} | "
                     f"[{lo:+.{k}f}, {hi:+.{k}f}] | {r['effect_size']:+.2f} | {r['n']} | "
                     f"{'+-' + str(r['margin']) if r['margin'] else '-'} | {r['verdict']} |")
    return lines


def _header(spec, report, path, rows, seeds, conf) -> list:
    minutes = sum(r.get("train_seconds", 0.0) for recs in rows.values() for r in recs) / 60
    return ["# The paper's claims, tested", "",
            f"Produced by `cartoon-vae ablate --config {path}` on {report.get('machine', 'this machine')}: "
            f"{sum(len(r) for r in rows.values())} runs, {minutes:.0f} min of training in all (the "
            f"runs' history.csv); this report's pass took {report.get('evaluation_seconds', math.nan) / 60:.0f} min "
            f"(evaluations stored in the run folders are reused). Base config `{spec.base}` with `{' '.join(spec.set)}`, data "
            f"`{spec.data or 'as in the base config'}`, seeds {seeds}. Each variant changes one thing; every "
            f"run trains on the same images and split, and a seed fixes weight initialisation and sampling noise, "
            f"so comparisons are **paired by seed**: the difference a - b per seed, its mean, a {conf:.0%} "
            f"Student t-interval (n - 1 degrees of freedom) and the effect size d_z (mean difference / standard "
            f"deviation of the differences). A verdict is read off the interval (`cartoon_vae/stats.py`): "
            f"**supported** if it lies entirely on the side the claim predicts, **not supported** if it lies "
            f"entirely on the other side or inside the equivalence margin (the effect, if any, is too small to "
            f"matter), **inconclusive** otherwise. Within a run, FD_attr carries a {conf:.0%} normal bootstrap "
            f"interval over faces ({spec.bootstrap} resamples); the mean half-width is shown beside "
            f"the controls. Cells are mean +- standard deviation over seeds.", ""]


def _runs_table(rows, names, seeds) -> list:
    lines = ["## Runs", "", "| variant | diverged | s/epoch | val MSE | SSIM | exact KL | active units | "
             "interp. unevenness | midpoint FD_attr | MIG | DCI D | DCI C | DCI I | SAP |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for n in names:
        div = sum(r["diverged"] for r in rows[n])
        cells = [_ms(values(rows, n, k, seeds), d) for k, d in (
            ("seconds_per_epoch", 2), ("final_val_mse", 4), ("ssim", 3), ("kl_exact_heldout", 1), ("active_units", 1),
            ("unevenness", 3), ("midpoint_fd_attr", 1), ("mig", 3), ("dci_disentanglement", 3),
            ("dci_completeness", 3), ("dci_informativeness", 3), ("sap", 3))]
        lines.append(f"| {n} | {div}/{len(rows[n])} | " + " | ".join(cells) + " |")
    return lines


def _samples_tables(rows, names, seeds) -> list:
    def vals(n, k):
        return values(rows, n, k, seeds)

    lines = ["", "## Samples beside their controls", "",
             "FD_attr against the held-out faces, per sampler, with two controls: `reconstructions` (decoded "
             "training codes: the floor any sampler can reach with this decoder) and `real_train` (real training "
             "faces: the floor of the metric on this data). ± is the spread over seeds; the last column is the "
             "mean bootstrap half-width of one run's FD_attr (its sampling error).", "",
             "| variant | " + " | ".join(SAMPLERS) + " | bootstrap half-width (min-max) | recall min-max | recall gmm |",
             "|---|" + "---|" * (len(SAMPLERS) + 3)]
    for n in names:
        if not np.isfinite(vals(n, "fd_attr_minmax")).any():
            continue
        half = [0.5 * (r["fd_attr_minmax_interval"][1] - r["fd_attr_minmax_interval"][0]) for r in rows[n]
                if "fd_attr_minmax_interval" in r]
        lines.append(f"| {n} | " + " | ".join(_ms(vals(n, f"fd_attr_{m}"), 1) for m in SAMPLERS)
                     + f" | {np.mean(half):.1f} | {_ms(vals(n, 'recall_minmax'), 3)} | {_ms(vals(n, 'recall_gmm'), 3)} |")
    fid_rows = [n for n in names if np.isfinite(vals(n, "fid_minmax")).any()]
    if fid_rows:
        count = next(r["fid_images"] for n in fid_rows for r in rows[n] if "fid_images" in r)
        lines += ["", f"Standard Inception FID ({count} generated vs {count} held-out real faces per set; "
                      f"comparable only at equal counts and image size):", "",
                  "| variant | " + " | ".join(SAMPLERS) + " |", "|---|" + "---|" * len(SAMPLERS)]
        for n in fid_rows:
            lines.append(f"| {n} | " + " | ".join(_ms(vals(n, f"fid_{m}"), 1) for m in SAMPLERS) + " |")
    return lines


def _note(key, rows, names, seeds) -> list:
    """The prose under a claim's table: how it was measured, and the context numbers."""
    if key == "a":
        return ["Seconds per epoch leave out epoch 1 (graph tracing); the time to a loss counts epoch 1 at the "
                "median epoch time. The threshold is the worst final validation MSE of the two variants, so "
                "every run reaches it. The KL term is a few hundred element-wise operations per image against "
                "millions of multiply-adds in the convolutions: its form cannot move the epoch time. Timings "
                "share the machine with whatever else ran, and pairing by seed does not remove that. The timing "
                "that removes it is the benchmark's `kl_step` phase (`cartoon-vae benchmark`): the same model "
                "and batch, the train step on eq. 5 and on eq. 4 interleaved round by round, a paired rate ratio "
                "and a verdict on \"more than 10% less time\" (`cartoon_vae.bench_step.kl_step_timing`).", ""]
    if key == "b":
        return ["Two smoothness measures vote: interpolation unevenness (std / mean of the image change per equal "
                "latent step between two held-out codes; lower = smoother) and the FD_attr of decodes of midpoints "
                "between two training codes (lower = the space between codes decodes to realistic faces). The "
                "disentanglement scores stand beside them.", ""]
    if key == "c":
        f = stability_facts(rows, seeds)
        runs = [f"lr x{mult[:-1]}: bound {d[P][0]}/{d[P][1]}, exact {d[E][0]}/{d[E][1]}"
                for mult, d in f["diverged"].items()]
        return [f"Diverged runs: {runs[0]}; " + "; ".join(runs[1:]) + ". Spread of the "
                f"final validation MSE across seeds: bound sd {f['sd_bound']:.5f}, exact sd "
                f"{f['sd_exact']:.5f} (Brown-Forsythe test of equal spread: p = {f['levene_p']:.2f}). "
                "The response to a higher learning rate is the rise of each run's validation MSE over the same "
                "seed's run at the base rate, at the same epoch; a more stable objective rises less.", ""]
    if key == "d":
        above = values(rows, P, "variance_above_one", seeds)
        return ["Per dimension eq. 5 is below the exact KL only where sigma^2 <= 1 and above it on 1 < sigma^2 < 2 "
                "(proof in `cartoon_vae/losses.py`, both sides tested). In the bound-trained models "
                f"{100 * np.nanmean(above):.2f}% of posterior variances exceed 1 (max over seeds "
                f"{100 * np.nanmax(above):.2f}%), so the aggregate is below the exact KL; it is a loose bound "
                "that caps a collapsing variance's cost at 0.25 nats per dimension, where the exact KL grows "
                "without limit.", ""]
    floor = _ms(values(rows, P, "fd_attr_real_train", seeds), 1)
    lines = ["Samplers are compared on the same models (paired by seed). The verdict for the paper's model "
             "uses min-max against N(0, I) by FD_attr and by FID; the rows against the mixture and for the "
             f"recommended recipe are context. Realistic in absolute terms: the controls above (real faces: "
             f"FD_attr {floor}) and the faces themselves:", ""]
    for n in names:
        fig = next((r["figure"] for r in rows[n] if r.get("figure")), None)
        if fig:
            lines += [f"![{n}: samples by sampler]({Path(fig).relative_to(Path(fig).parent.parent)})", ""]
    return lines


def results_markdown(spec, report, path) -> str:
    """docs/results.md: the runs, the samples beside their controls, each claim's table and verdict,
    the effects of the other single changes, and whether FD_attr ranks sample sets as FID does."""
    rows, seeds = report["rows"], list(spec.seeds)
    conf, margins = spec.confidence, spec.equivalence
    names = [v.name for v in spec.variants if v.name in rows]
    lines = _header(spec, report, path, rows, seeds, conf) + _runs_table(rows, names, seeds)
    lines += _samples_tables(rows, names, seeds)
    lines += ["", "## Verdicts", ""]
    for claim in CLAIMS:
        judged = judge(claim, rows, seeds, conf, margins)
        if judged is None:
            continue
        suffix = " for the paper's model" if claim.key == "e" else ""
        lines += [f"### ({claim.key}) {judged['title']} — {judged['verdict']}{suffix}", "",
                  *comparison_table(judged["rows"], conf), "", *_note(claim.key, rows, names, seeds)]
    effects = [r for r in (compare(rows, c, seeds, conf, margins) for c in EFFECTS) if r]
    if effects:
        lines += ["## Effects of the other single changes", "",
                  *comparison_table([r for r in effects if r["shown"]], conf), "",
                  "No claim is judged here: the last column says which way the interval points (lower MSE and "
                  "FD_attr are better; more active units means less collapse).", ""]
    ranks = rank_agreement(rows, names)
    if ranks:
        lines += ["## Does FD_attr rank sample sets as FID does?", "",
                  f"Over {ranks['pairs']} sample sets (every run with FID x min-max, N(0, I), mixture, reconstructions): "
                  f"Spearman rho = {ranks['rho']:.2f} (p = {ranks['p']:.2g}).", ""]
    lines += ["## The editing claim", "", "The paper's claim that latent directions edit one attribute while the others "
              "stay is judged against the true counterfactual faces in [editing.md](editing.md), for the paper's "
              "recipe, the recommended recipe and the conditional model side by side.", ""]
    return "\n".join(lines) + "\n"


def metrics_markdown(m) -> str:
    """metrics.md: the numbers of one run's metrics.json (:func:`cartoon_vae.evaluate.evaluate_run`) as tables and prose."""
    lines = _metrics_head(m)
    if "colour" in m:
        lines += _colour_lines(m["colour"])
    if "fid" in m:
        lines += _fid_lines(m["fid"])
    if "disentanglement" in m:
        lines += _disentanglement_lines(m["disentanglement"])
    if "probe_accuracy" in m:
        lines += _probe_lines(m)
    if "editing" in m:
        lines += _editing_lines(m["editing"], m["settings"])
    if "counterfactual" in m:
        lines += _counterfactual_lines(m["counterfactual"])
    return "\n".join(lines) + "\n"


def _counterfactual_lines(c) -> list:
    if "edits" not in c:
        return ["", f"Edits against the true counterfactual: {c['note']}."]
    lines = ["", f"Edits judged against the true counterfactual face the generator draws. Rule: {c['rule']}. "
                 "Rates with Wilson 95% intervals over faces; MSE means over faces. Methods: "
                 + "; ".join(f"`{m}`: {what}" for m, what in c["methods"].items()) + ".", "",
             "| edit | method | faces | worked [95% CI] | by the whole-image rule | floor MSE(r, x) | start MSE(r, truth) | "
             "edit MSE(e, truth) | SSIM(e, truth) | other pixels changed | probe reads target | probe agrees |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, by_method in c["edits"].items():
        for method, r in by_method.items():
            lo, hi = r["success_interval"]
            whole = r.get("success_rate_whole_image", float("nan"))  # absent from metrics of earlier releases
            lines.append(f"| {name} | {method} | {r['faces']} | {r['worked']} ({r['success_rate']:.2f}) "
                         f"[{lo:.2f}, {hi:.2f}] | {whole:.2f} | {r['floor']:.4f} | {r['start']:.4f} | {r['edit']:.4f} | "
                         f"{r['ssim_edit']:.3f} | {r['others_changed_rate']:.2f} | {r['probe_success_rate']:.2f} | "
                         f"{r['agreement_with_probe']:.2f} |")
    skipped = f" Not judged: {'; '.join(c['skipped'])}." if c.get("skipped") else ""
    whole = c.get("success_rate_whole_image", {})
    pooled = "; ".join(f"`{m}` {rate:.3f} of faces worked ({whole.get(m, float('nan')):.3f} by the whole-image rule; "
                       f"the probe agreed on {c['agreement_with_probe'][m]:.2f})" for m, rate in c["success_rate"].items())
    paired = "; ".join(f"{name} edits ({r['edits']}): recoloured {r['a']}, composited {r['b']} of {r['items']} faces, "
                       f"{r['only_a']} pass only recoloured and {r['only_b']} only composited, p = {r['p']:.2g}"
                       for name, r in sorted(c.get("recolour_against_composite", {}).items()))
    paired = f" Recoloured against composited on the same faces (McNemar's exact test): {paired}." if paired else ""
    return lines + ["", f"Over all these edits: {pooled}.{skipped}{paired}"]


def _metrics_head(m) -> list:
    r, lat, smp = m["reconstruction"], m["latent"], m["samples"]
    lines = [f"# Metrics of {m['run']}", "",
             f"Held-out images: {m['heldout_images']}; probe: {m['probe']}; samples per mode: "
             f"{m['settings']['samples']} (seed {m['settings']['sample_seed']}).", "",
             "| reconstruction MSE | PSNR (dB) | SSIM | exact KL (nats/image) | active units | interpolation unevenness |",
             "|---|---|---|---|---|---|",
             f"| {r['mse']:.5f} | {r['psnr']:.2f} | {r['ssim']:.3f} | {lat['kl_exact_nats_per_image']:.1f} | "
             f"{lat['active_units']} / {lat['latent_dim']} | {lat['interpolation_unevenness']:.3f} |", "",
             "| samples | FD_attr | KID_attr | precision | recall | attribute TV (mean) |", "|---|---|---|---|---|---|"]
    for mode in _sets(smp):
        b = smp[mode]
        lo, hi = b["fd_attr_interval"]
        lines.append(f"| {mode} | {b['fd_attr']:.2f} [{lo:.1f}, {hi:.1f}] | {b['kid_attr']['mean']:.4f} +- "
                     f"{b['kid_attr']['std']:.4f} | {b['precision']:.3f} | {b['recall']:.3f} | "
                     f"{b['attribute_tv_mean']:.3f} |")
    return lines + ["", f"Rows 'reconstructions' (decoded training codes) and 'real_train' (real training faces) are "
                        f"controls: the decoder's floor and the metric's floor. FD_attr intervals: "
                        f"{int(100 * m['settings']['confidence'])}% bootstrap over faces. Decodes of midpoints between "
                        f"two training codes: FD_attr {lat['midpoint_fd_attr']:.2f}."]


def _colour_lines(c) -> list:
    if "regions" not in c:
        return ["", f"Colour fidelity: {c['note']}."]
    t = c["threshold"]
    lines = ["", f"Colour fidelity on {c['faces']} held-out faces: per region, the CIELAB distance of its mean "
                 f"colour in the original and the reconstruction (about 2 is just noticeable; above {t:g} is another "
                 f"colour). Regions come from the generator (colour_worst.png shows the worst faces).", "",
             f"| region | faces with it | median distance | faces above {t:g} |", "|---|---|---|---|"]
    worst = [("worst region of the face", c["worst"])] + (
        [("worst of skin, hair, facial hair, glasses", c["worst_main"])] if "worst_main" in c else [])
    for name, r in [*c["regions"].items(), *worst]:
        if r["faces"]:
            lines.append(f"| {name.replace('_', ' ')} | {r['faces']} | {r['median']:.1f} | {r['above_share']:.0%} |")
    return lines


def _sets(measured) -> list:
    """The sample sets of one run's metrics, in the registry's order, then the two controls."""
    from .samplers import SAMPLERS as REGISTERED

    return [m for m in (*REGISTERED, *CONTROLS) if m in measured]


def _fid_lines(f) -> list:
    lines = ["", "| Inception FID | FID | KID | images (real / generated) |", "|---|---|---|---|"]
    for mode in _sets(f):
        lines.append(f"| {mode} | {f[mode]['fid']:.2f} | {f[mode]['kid']['mean']:.4f} +- "
                     f"{f[mode]['kid']['std']:.4f} | {f[mode]['real_images']} / {f[mode]['generated_images']} |")
    return lines + ["", f["note"] + "."]


def _disentanglement_lines(d) -> list:
    return ["", "| MIG | DCI disentanglement | DCI completeness | DCI informativeness | SAP |",
            "|---|---|---|---|---|",
            f"| {d['mig']:.3f} | {d['dci']['disentanglement']:.3f} | {d['dci']['completeness']:.3f} | "
            f"{d['dci']['informativeness']:.3f} | {d['sap']:.3f} |", "",
            f"Disentanglement over {len(d['factors'])} ground-truth attributes: classifiers trained on "
            f"{d['train_codes']} training codes, scored on {d['test_codes']} held-out codes (DCI estimator: "
            f"{d['dci']['estimator']})."]


def _probe_lines(m) -> list:
    unlabelled = m.get("unlabelled_heldout_images", 0)
    trained_on = m.get("probe_trained_on", "originals only")
    caveat = "" if trained_on == "originals only" else (
        "; this probe has learned the decoder's own mistakes, so it flatters reconstructions: judge them with a "
        "probe trained on originals only")
    lines = ["", f"Probe accuracy on reconstructions relative to originals (mean over attributes): "
                 f"{m['probe_accuracy']['relative_mean']:.3f}, read by a probe trained on {trained_on}{caveat}" + (
                 f" ({unlabelled} held-out faces without an attribute CSV are left out of every attribute "
                 f"score)" if unlabelled else ""), "",
             "| attribute | probe acc. originals | reconstructions | edit success | gain | preservation "
             "| pixel change |", "|---|---|---|---|---|---|---|"]
    edits = m.get("editing", {}).get("per_attribute", {})
    nan = float("nan")
    for n, v in m["probe_accuracy"]["per_attribute"].items():
        e = edits.get(n, {})
        lines.append(f"| {n} | {v['originals']:.3f} | {v['reconstructions']:.3f} | {e.get('success', nan):.3f} | "
                     f"{e.get('gain', nan):+.3f} | {e.get('preservation', nan):.3f} | "
                     f"{e.get('pixel_change', nan):.4f} |")
    return lines


def _editing_lines(e, settings) -> list:
    how = (f"to the mean of the faces with variant {e['target_variant']} within the attribute classifier's "
           f"subspace" if e.get("mode") == "class" else f"along the attribute classifier's gradient until it "
           f"reads variant {e['target_variant']} at p = {e['probability']}")
    if e.get("hold") == "readable":
        how += ", holding the other readable attributes' classifiers fixed (projection)"
    lines = ["", f"Edits: each held-out face moved {how}. Over the "
                 f"{len(e['readable_attributes'])} attributes the probe reads at >= "
                 f"{settings['edit_readable']} on reconstructions: success {e['success_mean']:.3f}, "
                 f"gain over the unedited decodes {e['gain_mean']:+.3f}, preservation "
                 f"{e['preservation_mean']:.3f}, mean absolute pixel change {e['pixel_change_mean']:.4f}. "
                 f"Preservation counts the other readable attributes. Over all attributes (preservation over all "
                 f"others): success {e['success_mean_all']:.3f}, gain {e['gain_mean_all']:+.3f}, "
                 f"preservation {e['preservation_all_mean_all']:.3f}."]
    for n, targets in e["showcase"].items():
        for ways in targets.values():
            lines.append(f"- {n} -> {next(iter(ways.values()))['to']}: the probe reads the target on " + "; ".join(
                f"{v['succeeded']} of {v['faces']} held-out faces {how} (preservation {v['preservation']:.3f}, "
                f"pixel change {v['pixel_change']:.4f})" for how, v in ways.items()) + ".")
    return lines


def fidelity_markdown(runs) -> str:
    """docs/fidelity.md: one row per candidate recipe (``runs``: label -> {"folder", "metrics" (its metrics.json),
    "train_seconds"}): reconstruction, colour per region, the originals-only probe, Inception FID of reconstructions
    and of the best sampler beside the real-vs-real floor, the code's KL and active units, training seconds."""
    lines = ["# Faces drawn as they were shown: decoder and likelihood candidates", "",
             "Each candidate was trained on the embedded set (`make-data --n 2000 --seed 0`, 64x64) with "
             "`cartoon-vae train --config configs/recommended.yaml --set ...` and measured with `cartoon-vae "
             "evaluate --run RUN --probe PROBE --fid --fid-images 200`, the probe trained on original faces only "
             "(`cartoon-vae train-probe --config configs/recommended.yaml --out PROBE`). Held-out faces: 200. "
             "Colour: faces whose region's mean colour is more than 10 CIELAB units from the original's. Probe: "
             "accuracy on reconstructions relative to originals, mean over the 18 attributes. FID: 200 generated "
             "against 200 held-out faces; the best sampler is the registry's lowest. Seconds: training only, on "
             "the machine named in the note below.", "",
             "| candidate | SSIM | MSE | worst region > 10 (of the 4 large) | glasses > 10 | facial hair > 10 | "
             "hair > 10 | region medians (skin / hair / facial hair / glasses) | probe | FID recon. | FID best sampler | "
             "FID real floor | KL (nats) | active units | train s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, r in runs.items():
        m = r["metrics"]
        c, f = m["colour"], m["fid"]
        samplers = {k: v["fid"] for k, v in f.items() if k not in ("note", *CONTROLS)}
        best = min(samplers, key=samplers.get)
        reg = c["regions"]
        share = {k: f"{v['above_share']:.0%}" if v["faces"] else "-" for k, v in reg.items()}
        med = " / ".join(f"{reg[k]['median']:.1f}" for k in ("skin", "hair", "facial_hair", "glasses"))
        lines.append(
            f"| {label} | {m['reconstruction']['ssim']:.3f} | {m['reconstruction']['mse']:.5f} | "
            f"{c['worst']['above_share']:.0%} ({c['worst_main']['above_share']:.0%}) | {share['glasses']} | {share['facial_hair']} | {share['hair']} | "
            f"{med} | {m['probe_accuracy']['relative_mean']:.3f} | {f['reconstructions']['fid']:.1f} | "
            f"{samplers[best]:.1f} ({best}) | {f['real_train']['fid']:.1f} | "
            f"{m['latent']['kl_exact_nats_per_image']:.0f} | {m['latent']['active_units']} | {r['train_seconds']:.0f} |")
    return "\n".join(lines) + "\n"
