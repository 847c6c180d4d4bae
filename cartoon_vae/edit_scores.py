"""Scores of attribute edits, for ``evaluate``: the probe's verdict on edits of held-out faces (success, gain,
preservation; :func:`evaluate_edits`), and each editing method judged against the embedded generator's true
counterfactual faces (:func:`counterfactuals`).

Example:
    >>> scores = evaluate_edits(vae, probe, attrs, train_means, train_rows, val_means, val_rows, settings)
"""

from __future__ import annotations

import numpy as np

from .directions import COMPANIONS, attribute_classifier, edit_to_class, edit_to_probability, fit_direction, hold
from .edit import edit_scores, faces_to_edit, needs_direction, relabel
from .inference import decode


def generator_note(config, attrs, labels, images, without, redraw_to):
    """None where the embedded generator drew these held-out faces as the data set holds them (so it can draw
    their parts and their edits); else the note metrics.json carries instead: on real data ``without``, for a
    set drawn by another generator version the advice to draw it again to ``redraw_to``."""
    from . import counterfactual as cf

    if not cf.has_renderer(config.data.dir):
        return {"note": f"real data: {without}"}
    if not cf.check_renderer(labels, list(attrs.names), images, config.data):
        return {"note": "the generator no longer draws these faces as the data set holds them (another "
                        f"generator version); draw the set again to {redraw_to}"}
    return None


def counterfactuals(vae, probe, config, attrs, labelled, images, recon, s):
    """Each edit of ``counterfactual_edits`` judged against the generator's true counterfactual faces
    (:mod:`cartoon_vae.counterfactual`) for each editing method (:func:`edit_methods`), the probe's verdict
    beside it and their agreement; and the images of the ``counterfactual_figures`` edits. Without the
    generator (real data): a note only."""
    from . import counterfactual as cf
    from .data import DataError
    from .edit import METHODS, direction_for, edit_methods, truth_redraw

    train_means, train_labels, means, labels = labelled
    note = generator_note(config, attrs, labels, images, "no renderer draws the true counterfactual; edits are "
                           "judged by the probe only (see 'editing')", "judge edits against the truth")
    if note:
        return note, {}
    names = list(attrs.names)
    methods, verdicts = {}, {}
    out, figures, skipped = {}, {}, []
    for name, targets in s["counterfactual_edits"].items():
        if name not in names:
            skipped.append(f"{name}: not an attribute of this data")
            continue
        n = int(attrs.n_variants[names.index(name)])
        for to in sorted({t % n for t in targets if -n <= t < n}):
            try:
                direction = direction_for(vae, names, train_labels, train_means, name, to)
            except DataError as e:  # no training face has the value (or every one has it): nothing to learn
                skipped.append(f"{name}->{to}: {str(e).split(': ', 1)[-1]}")
                continue
            chosen = edit_methods(vae, names, means, labels, name, to, direction, s["edit_probability"])
            judged = cf.edit_faces(config.data, labels, names, images, recon, name, to, chosen,
                                   s["counterfactual_faces"], photo=s["counterfactual_on_photo"],
                                   redraw=truth_redraw(vae, names, labels, name, to))
            if judged is None:
                continue
            per, rows, (originals, truths, edits) = judged
            verdicts[f"{name}->{to}"] = {method: faces["worked"] for method, faces in per.items()}
            methods.update({method: METHODS[method] for method in per if method not in methods})
            out[f"{name}->{to}"] = _with_probe(probe, per, edits, name, to, s["confidence"])
            if to in [t % n for t in s["counterfactual_figures"].get(name, ())]:
                k = s["showcase_faces"]
                figures[(name, to)] = (originals[:k], truths[:k], {m: e[:k] for m, e in edits.items()})
    return {"edits": out, "skipped": skipped, "methods": methods,
            "success_rate": {m: _pooled(out, m) for m in methods},
            "agreement_with_probe": {m: _pooled(out, m, "agreement_with_probe") for m in methods},
            "recolour_against_composite": _recolour_against_composite(verdicts),
            "success_rate_whole_image": {m: _pooled_rate(out, m, "worked_whole_image") for m in methods},
            "rule": f"worked: MSE(edit, truth) <= {cf.SUCCESS_RATIO} x MSE(reconstruction, original) and, on the "
                    f"attribute's pixels, MSE(edit, truth) <= {cf.HALFWAY} x MSE(reconstruction, truth) and <= "
                    f"{cf.SUCCESS_RATIO} x MSE(the decoder's drawing of the truth, truth)",
            "rule_whole_image": "the first two conditions only (the rule before the attribute's region was "
                                "judged on its own; success_rate_whole_image)"}, figures


def _recolour_against_composite(verdicts) -> dict:
    """Each method recoloured against composited on the same faces (:func:`cartoon_vae.stats.mcnemar`), the edits of
    a colour and the others (changes of shape) pooled apart, as :func:`cartoon_vae.edit.is_colour` tells them."""
    from .edit import is_colour
    from .stats import mcnemar

    out = {}
    for kind, wanted in (("colour", True), ("shape", False)):
        edits = [e for e in verdicts if is_colour(e.split("->")[0]) == wanted]
        for method in sorted({m[:-len("_recolour")] for e in edits for m in verdicts[e] if m.endswith("_recolour")}):
            pairs = [(verdicts[e][f"{method}_recolour"], verdicts[e][f"{method}_composite"]) for e in edits
                     if f"{method}_recolour" in verdicts[e]]
            out[f"{method} {kind}"] = {"edits": len(pairs), **mcnemar(np.concatenate([a for a, _ in pairs]),
                                                                       np.concatenate([b for _, b in pairs]))}
    return out


def _with_probe(probe, per, edits, name, to, confidence):
    """Per method: its faces' verdicts against the truth summarised (:func:`cartoon_vae.counterfactual.summarise`),
    with the probe's success rate on the same edits and how often the two verdicts agree."""
    from .counterfactual import summarise

    out = {}
    for method, faces in per.items():
        result = summarise(faces, confidence)
        probe_read = probe.features_and_predictions(edits[method])[1][name] == to
        result.update(probe_success_rate=float(probe_read.mean()),
                      agreement_with_probe=float(np.mean(probe_read == faces["worked"])))
        out[method] = result
    return out


def _pooled_rate(edits, method, count):
    """Over every edit made by ``method``: the fraction of faces counted by ``count`` (a summary's key)."""
    rows = [r[method] for r in edits.values() if method in r]
    faces = sum(r["faces"] for r in rows)
    return sum(r[count] for r in rows) / faces if faces else float("nan")


def _pooled(edits, method, key=None):
    """Over every edit made by ``method``: the fraction of faces that worked (or the face-weighted mean of
    ``key``)."""
    rows = [r[method] for r in edits.values() if method in r]
    faces = sum(r["faces"] for r in rows)
    if not faces:
        return float("nan")
    if key is None:
        return sum(r["worked"] for r in rows) / faces
    return sum(r[key] * r["faces"] for r in rows) / faces


def _edit_score(vae, probe, direction, z, name, to, readable, s, y=None) -> dict:
    """Decode ``z`` unedited and edited by ``direction`` (a conditional model with the faces' labels ``y``);
    the probe's verdict (:func:`edit_scores`)."""
    if s["edit_mode"] == "class":
        edited_z = edit_to_class(z, direction)
    else:
        edited_z = edit_to_probability(z, direction, s["edit_probability"])
    return {**_probe_verdict(probe, decode(vae, z, y), decode(vae, edited_z, y), name, to, readable),
            "classifier_train_accuracy": direction["train_accuracy"]}


def _probe_verdict(probe, base_images, edited_images, name, to, readable) -> dict:
    """The probe's reading of unedited and edited decodes of the same faces (:func:`edit_scores`), with the
    target, the face count and how many edits it reads as the target."""
    _, base = probe.features_and_predictions(base_images)
    _, edited = probe.features_and_predictions(edited_images)
    return {**edit_scores(edited, base, name, to, edited_images, base_images, judged=readable), "to": int(to),
            "faces": int(len(base_images)), "succeeded": int(np.sum(edited[name] == to))}


def _swap_score(vae, probe, z, names, rows, name, to, readable) -> dict:
    """A conditional model's edit of a conditioned attribute: the same z decoded with the label swapped to ``to``
    (:func:`cartoon_vae.edit.relabel`), against the decode with the faces' own labels; the probe's verdict."""
    return {**_probe_verdict(probe, decode(vae, z, vae.labels_of(names, rows)),
                             decode(vae, z, relabel(vae, names, rows, name, to)), name, to, readable),
            "method": "label_swap"}


def probe_edit_columns(probe, columns, name, to) -> dict:
    """The probe's verdict (:func:`edit_scores`) on each edited column of ``cartoon-vae edit``'s grid
    (every column after ``original`` and ``reconstruction``), against the reconstructions."""
    base_images = columns["reconstruction"]
    _, base = probe.features_and_predictions(base_images)
    scores = {}
    for label, images in list(columns.items())[2:]:
        if label in ("truth", "difference"):  # beside the edits, not edits
            continue
        _, edited = probe.features_and_predictions(images)
        score = edit_scores(edited, base, name, to, images, base_images)
        scores[label] = {**score, "succeeded": int(np.sum(edited[name] == to))}
    return scores


def evaluate_edits(vae, probe, attrs, train_means, train_labels, val_means, val_labels, s, readable=None) -> dict:
    """Per attribute: held-out faces not already at variant ``edit_target`` are moved by the
    attribute's classifier (:mod:`cartoon_vae.edit`): to the target class's mean in its subspace
    (``edit_mode: class``) or until it reads the target at ``edit_probability`` (``probability``);
    with ``edit_hold: readable`` the classifiers of the other readable attributes are held fixed (the
    showcase edits are scored both held and free).
    Success, its gain over the unedited decodes, preservation and pixel change per attribute; the
    headline means are over the attributes in ``readable`` (the probe reads them on reconstructions
    at >= ``edit_readable``: elsewhere the probe, not the edit, would be measured). ``showcase``
    edits (e.g. glasses -> none) count the faces whose edit succeeds out of ``showcase_faces``.
    Preservation counts the other readable attributes (and, as ``preservation_all``, all of them). A conditional
    model's conditioned attributes are edited as every other command edits them, by the label swap."""
    readable = set(probe.names) if readable is None else set(readable)
    per, showcase = {}, {}
    held = _held_classifiers(attrs, train_means, train_labels, readable) if s["edit_hold"] == "readable" else {}
    for k, name in enumerate(attrs.names):
        if name not in probe.names:
            continue
        n = int(attrs.n_variants[k])
        companions = [train_labels[:, attrs.names.index(c)] for c in COMPANIONS.get(name, ()) if c in attrs.names]
        targets = [(s["edit_target"], s["edit_faces"], False)]
        targets += [(to % n, s["showcase_faces"], True) for to in s["showcase"].get(name, []) if -n <= to < n]
        for to, n_faces, is_showcase in targets:
            rows = faces_to_edit(val_labels[:, k], to, limit=n_faces)
            if not len(rows):
                continue
            if not needs_direction(vae, name):  # a conditional model's label: the label swap, never a move of z
                scores = {"by label swap": _swap_score(vae, probe, val_means[rows], attrs.names, val_labels[rows],
                                                       name, to, readable)}
            else:
                try:
                    free = fit_direction(train_means, train_labels[:, k], to, companions=companions)
                except ValueError:  # no training face has the target (or every one has it): nothing to learn
                    continue
                directions = {"held": hold(free, held[name])} if held.get(name) else {}
                if is_showcase or not directions:
                    directions["free"] = free
                y = vae.labels_of(attrs.names, val_labels[rows])
                scores = {how: _edit_score(vae, probe, d, val_means[rows], name, to, readable, s, y)
                          for how, d in directions.items()}
            if is_showcase:
                showcase.setdefault(name, {})[str(to)] = scores
            else:
                per[name] = next(iter(scores.values()))

    return _edit_summary(per, showcase, readable, s)


def _held_classifiers(attrs, train_means, train_labels, readable) -> dict:
    """Per attribute: the classifiers of the other readable attributes (not its companions), held fixed by
    projection when it is edited."""
    classifiers = {}
    for n in sorted(readable):
        try:
            classifiers[n] = attribute_classifier(train_means, train_labels[:, attrs.names.index(n)])
        except ValueError:  # a single value in the training faces: nothing to hold
            continue
    return {name: [c for n, c in classifiers.items() if n != name and n not in COMPANIONS.get(name, ())]
            for name in attrs.names}


def _edit_summary(per, showcase, readable, s) -> dict:
    """The editing block of metrics.json: settings, headline means over the readable attributes, the rest."""
    def mean(key, names):
        return float(np.mean([per[n][key] for n in names])) if names else float("nan")

    headline = sorted(readable & set(per))
    return {"target_variant": s["edit_target"], "mode": s["edit_mode"], "probability": s["edit_probability"],
            "hold": s["edit_hold"],
            "readable_attributes": headline,
            **{f"{key}_mean": mean(key, headline) for key in ("success", "gain", "preservation",
                                                                      "pixel_change")},
            **{f"{key}_mean_all": mean(key, sorted(per)) for key in ("success", "gain", "preservation_all")},
            "per_attribute": per, "showcase": showcase}
