"""Edits judged against the truth: the embedded generator draws the face an edit should have produced.

For a held-out face of the embedded set and an edit (attribute -> value), :func:`true_counterfactual`
renders the same 18 attributes with only that one changed (``synthetic.render``) and puts it through
the pipeline's own preprocessing (:func:`cartoon_vae.data.preprocess`), so it is exactly the image
the data set would hold for that face. Per face, with x the original, r the reconstruction (decoded
latent mean), e the edited decode and c the true counterfactual:

* **floor**: MSE(r, x), how close this decoder gets to any face it is given;
* **start**: MSE(r, c), how far the unedited face is from the truth;
* **edit**: MSE(e, c), how far the edit landed from the truth (and SSIM(e, c));
* the same inside and outside the attribute's **mask**, the pixels where c differs from x (by more
  than 2/255 in some channel, grown by one pixel): inside, the attribute itself; outside, everything
  that should not have moved.

An edit **worked** on a face when MSE(e, c) <= ``SUCCESS_RATIO`` x floor (it lands as close to the
truth as the decoder can draw any face, within 1.5x) **and** inside the mask it covered at least
half the way: MSE_in(e, c) <= ``HALFWAY`` x MSE_in(r, c) (so an edit that does nothing never passes,
however small the attribute) **and**, inside the mask, MSE_in(e, c) <= ``SUCCESS_RATIO`` x MSE_in(r_c, c),
where r_c is the decoder's own drawing of the true face (encoded and decoded): a few pixels of a ghost
(the outline of a removed frame, a dark trace of a white beard) do not move a whole-image MSE, but they do
the attribute's own pixels. The first two conditions alone are the **whole-image rule** of earlier
releases, reported beside (``worked_whole_image``). It **changed other things** when MSE_out(e, c) >
``SUCCESS_RATIO`` x MSE_out(r, x). Rates carry a Wilson 95% interval over faces.

Example:
    >>> per, rows, shown = edit_faces(config.data, attribute_rows, names, images, recon, "glasses", 5,
    ...                               {"label swap": lambda rows: decode(vae, means[rows], relabelled[rows])}, 200)
    >>> summarise(per["label swap"])["success_rate"]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .stats import proportion_interval
from .synthetic import has_renderer, true_counterfactual, true_edits  # noqa: F401  (the generator draws the truth)

SUCCESS_RATIO = 1.5   # an edit lands within this multiple of the decoder's own floor of the truth
HALFWAY = 0.5         # ... and covers at least half the distance to the truth on the attribute's pixels
MASK_TOLERANCE = 2 / 255  # a pixel belongs to the attribute's mask where the truth differs by more


def attribute_mask(original, counterfactual) -> np.ndarray:
    """(n, S, S) bool: the pixels an edit should change (the truth differs from the original by more
    than ``MASK_TOLERANCE`` in some channel), grown by one pixel all round."""
    from scipy import ndimage

    changed = (np.abs(counterfactual - original) > MASK_TOLERANCE).any(-1)
    return ndimage.binary_dilation(changed, structure=np.ones((1, 3, 3), bool))


def _mse(a, b, where=None) -> np.ndarray:
    """Per image mean squared error over all pixels, or over those ``where`` is true (NaN where none is)."""
    sq = ((a - b) ** 2).mean(-1)
    if where is None:
        return sq.reshape(len(sq), -1).mean(1)
    count = where.reshape(len(where), -1).sum(1)
    total = (sq * where).reshape(len(sq), -1).sum(1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def judge(original, reconstruction, edited, truth, truth_reconstruction=None) -> dict:
    """Per-face distances and verdicts (see the module docstring) for aligned (n, S, S, 3) arrays;
    ``truth_reconstruction``: the decoder's own drawing of the truth (its floor inside the attribute's region;
    without it the original's reconstruction there stands in)."""
    from .metrics import ssim_psnr

    mask = attribute_mask(original, truth)
    drawn, of = (reconstruction, original) if truth_reconstruction is None else (truth_reconstruction, truth)
    per = {"floor": _mse(reconstruction, original), "start": _mse(reconstruction, truth),
           "edit": _mse(edited, truth), "ssim_edit": ssim_psnr(edited, truth)[0],
           "ssim_floor": ssim_psnr(reconstruction, original)[0],
           "edit_in": _mse(edited, truth, mask), "start_in": _mse(reconstruction, truth, mask),
           "floor_in": _mse(drawn, of, mask),
           "edit_out": _mse(edited, truth, ~mask), "floor_out": _mse(reconstruction, original, ~mask),
           "mask_fraction": mask.reshape(len(mask), -1).mean(1)}
    per["worked_whole_image"] = (per["edit"] <= SUCCESS_RATIO * per["floor"]) & \
        (per["edit_in"] <= HALFWAY * per["start_in"])
    per["worked_in_region"] = per["edit_in"] <= SUCCESS_RATIO * per["floor_in"]
    per["worked"] = per["worked_whole_image"] & per["worked_in_region"]
    per["others_changed"] = per["edit_out"] > SUCCESS_RATIO * per["floor_out"]
    return per


def summarise(per, confidence=0.95) -> dict:
    """Rates with Wilson intervals, and mean distances, over the faces of one edit."""
    n = len(per["worked"])
    worked, changed = int(per["worked"].sum()), int(per["others_changed"].sum())
    whole = int(per["worked_whole_image"].sum())
    out = {"faces": n, "worked": worked, "success_rate": worked / n if n else float("nan"),
           "success_interval": proportion_interval(worked, n, confidence),
           "worked_whole_image": whole, "success_rate_whole_image": whole / n if n else float("nan"),
           "success_interval_whole_image": proportion_interval(whole, n, confidence),
           "others_changed": changed, "others_changed_rate": changed / n if n else float("nan")}
    for key in ("floor", "start", "edit", "ssim_edit", "ssim_floor", "edit_in", "start_in", "floor_in", "edit_out",
                "floor_out", "mask_fraction"):
        out[key] = float(np.nanmean(per[key])) if n else float("nan")
    return out


def edit_faces(data_cfg, attribute_rows, names, images, reconstructions, attribute, to, methods, limit,
               photo=False, redraw=None):
    """Edit up to ``limit`` held-out faces (rows of ``attribute_rows``, their attribute values in the order
    ``names``) not already at ``to``, by each of ``methods`` (name -> function of the faces' row numbers
    returning their edited decodes), and judge each against the true counterfactual; with ``photo``, each
    method's edit applied to the photo too (:data:`cartoon_vae.edit.ON_PHOTO`: ``NAME_on_photo``,
    ``NAME_composite``). ``redraw(truths, rows)``: the decoder's drawing of the true faces (the judge's floor in
    the attribute's region). None when every face is at ``to`` already; else ({method: per-face dict}, the faces'
    row numbers, (originals, truths, {method: edits}))."""
    k = names.index(attribute)
    rows = np.flatnonzero(attribute_rows[:, k] != to)[:limit]
    if not len(rows):
        return None
    truths = true_edits(names, attribute_rows[rows], attribute, to, data_cfg)
    originals, recon = images[rows], reconstructions[rows]
    edits = {name: edit(rows) for name, edit in methods.items()}
    if photo:
        from .edit import ON_PHOTO

        edits.update({f"{name}_{how}": apply(originals, recon, e) for name, e in list(edits.items())
                      for how, apply in ON_PHOTO.items()})
    drawn = None if redraw is None else redraw(truths, rows)
    per = {name: judge(originals, recon, edited, truths, drawn) for name, edited in edits.items()}
    return per, rows, (originals, truths, edits)


def check_renderer(attribute_rows, names, images, data_cfg, tolerance=2 / 255) -> bool:
    """Whether the generator still draws the held-out faces as the data set holds them (the same
    generator version): the first face re-rendered matches its image to ``tolerance``."""
    drawn = true_counterfactual(dict(zip(names, (int(v) for v in attribute_rows[0]))), data_cfg)
    return float(np.abs(drawn - images[0]).mean()) <= tolerance


def _target(config, names, attrs, attribute, to):
    """``to`` as a variant of ``attribute`` (-1: the last); a DataError for a missing attribute or a value out of
    range."""
    from .data import DataError

    if attribute not in names:
        raise DataError(f"{config.data.dir}: no attribute {attribute!r} (have: {', '.join(names)})")
    n_variants = int(attrs.n_variants[names.index(attribute)])
    if not -n_variants <= int(to) < n_variants:  # -1: the last variant; anything else out of range is refused
        raise DataError(f"--to {to}: {attribute} has variants 0..{n_variants - 1} (or -1 for the last)")
    return int(to) % n_variants


def compare_runs(runs, attribute, to, faces=6, method="class_mean", photo=False):
    """The same held-out faces of the embedded set edited to ``attribute`` = ``to`` by each run, judged
    against the true counterfactual: a run conditional on ``attribute`` swaps the label, any other moves z
    by ``method`` (:data:`cartoon_vae.edit.METHODS`); with ``photo``, each edit applied to the photo too
    (:func:`cartoon_vae.edit.on_photo`). The runs must share the data set and its split.
    Returns (originals, truths, {"RUN (method)": edits}, {"RUN (method)": per-face dict}, the target value
    (``to`` = -1 read as the last variant; a value outside the attribute's variants is a DataError))."""
    from .data import DataError
    from .edit import direction_for, edit_methods, truth_redraw
    from .inference import decode
    from .loaded import open_run

    shown, judged, originals, truths, recipe = {}, {}, None, None, None
    for run_dir in runs:
        run = open_run(run_dir)
        vae, config, attrs = run.vae, run.config, run.attrs
        if not has_renderer(config.data.dir):
            raise DataError(f"{config.data.dir}: not drawn by the embedded generator; no true counterfactual")
        key = (config.data.dir, config.data.image_size, config.data.val_fraction, config.data.seed)
        if recipe not in (None, key):
            raise DataError(f"{run_dir}: its data, size or split differs from {runs[0]}'s; compare runs of one data set")
        recipe = key
        names = list(attrs.names)
        to = _target(config, names, attrs, attribute, to)
        held = run.heldout
        direction = direction_for(vae, names, run.train.rows, run.train.means, attribute, to, where=str(run_dir))
        methods = edit_methods(vae, names, held.means, held.rows, attribute, to, direction)
        name = method if method in methods else next(iter(methods))  # a label swap where the run has one
        result = edit_faces(config.data, held.rows, names, held.images, decode(vae, held.means, held.labels),
                            attribute, to, {name: methods[name]}, faces, photo=photo,
                            redraw=truth_redraw(vae, names, held.rows, attribute, to))
        if result is None:
            raise DataError(f"{run_dir}: every held-out face already has {attribute} = {to}")
        per, _, (originals, truths, edits) = result
        for shown_name in edits:
            label = f"{Path(run_dir).name} ({shown_name.replace('_', ' ')})"
            shown[label], judged[label] = edits[shown_name], per[shown_name]
    return originals, truths, shown, judged, to
