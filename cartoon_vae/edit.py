"""Attribute editing, which the paper's abstract promises and never shows: the editing methods, one registry.

How an attribute is edited is chosen here and nowhere else (:func:`needs_direction`): an attribute a conditional
model is conditioned on is a **label swap** (the same z decoded with the new label); every other attribute is a
**move of z** along a direction learned from the training codes (:mod:`cartoon_vae.directions`: to the target's
class mean, or to a probability). Each edit can then be applied to the photo: **added** to it (:func:`on_photo`)
or **composited** onto it where the decoder's drawing changed (:func:`composite`), or composited with its flat
colours **recoloured** whole (:func:`recolour`; :func:`photo_method` chooses what is shown). :data:`METHODS` names them
all; :func:`methods_for` says which a run supports; :func:`edit_methods` makes them; :func:`edit_heldout` is
``cartoon-vae edit``'s grid.

Example:
    >>> methods = edit_methods(vae, names, means, rows, "glasses", 5, direction_for(vae, names, train_rows,
    ...                                                                              train_means, "glasses", 5))
    >>> edited = methods[methods_for(vae, "glasses")[0]](np.arange(6))   # the first six faces' decoded edits
"""

from __future__ import annotations

import numpy as np

from .directions import (COMPANIONS, attribute_classifier, edit_by_strength, edit_to_class, edit_to_probability,
                         fit_direction, hold)


def on_photo(images, reconstructions, edited) -> np.ndarray:
    """An edit applied to the photo: the original plus the change the edit made to the decoder's drawing,
    ``clip(x + e - r, 0, 1)`` (as attribute vectors are added to images, Upchurch et al. 2017, "Deep Feature
    Interpolation"). Where the edit changed nothing, the face keeps its own pixels, not the decoder's blur."""
    return np.clip(np.asarray(images) + np.asarray(edited) - np.asarray(reconstructions), 0.0, 1.0)


COMPOSITE_BAND = (0.08, 0.25)  # a pixel joins the edit's mask from this change of the drawing, fully from this
# (chosen on 600 training faces of the conditional demo over the bar's fifteen edits, not on held-out faces: of
# (0.04, 0.12), (0.08, 0.25), (0.12, 0.35) and (0.16, 0.45) the most faces passed, 83.2%)
COMPOSITE_GROW = 1  # ... grown by this many pixels per 64 of the image side (an attribute's outline is its edge)


def edit_mask(reconstructions, edited, band=COMPOSITE_BAND, grow=COMPOSITE_GROW) -> np.ndarray:
    """(n, S, S, 1) soft mask in [0, 1] of where an edit changed the decoder's drawing: the largest channel change
    ramped from ``band[0]`` (0) to ``band[1]`` (1), grown by ``grow`` pixels per 64 of the image side and softened by a
    Gaussian of that width, so that the mask covers an attribute's antialiased edge (GANimation's and SaGAN's
    attention masks, here read off the decoded swap instead of predicted)."""
    from scipy import ndimage

    change = np.abs(np.asarray(edited, np.float32) - np.asarray(reconstructions, np.float32)).max(-1)
    mask = np.clip((change - band[0]) / (band[1] - band[0]), 0.0, 1.0)
    step = max(1, change.shape[-1] // 64)
    mask = ndimage.grey_dilation(mask, size=(1, 2 * grow * step + 1, 2 * grow * step + 1))
    return np.clip(ndimage.gaussian_filter(mask, sigma=(0, step, step)), 0.0, 1.0)[..., None]


def composite(images, reconstructions, edited) -> np.ndarray:
    """An edit composited onto the photo: the decoded edit where it changed the drawing (:func:`edit_mask`), the
    photo's own pixels elsewhere. Unlike :func:`on_photo`, which adds the change to the photo and so keeps what
    the decoder drew of the old attribute under the new one (a ghost of a removed frame or beard), inside the
    mask the face is the decoder's drawing of the edited face."""
    return _blend(edit_mask(reconstructions, edited), edited, images)


def _blend(mask, inside, outside) -> np.ndarray:
    """``inside`` where the soft ``mask`` is 1, ``outside`` where it is 0."""
    return mask * np.asarray(inside) + (1.0 - mask) * np.asarray(outside)


FLAT_QUANTUM = 8        # two photo pixels are of one flat colour when their 0-255 values fall in the same bins this
# wide (bin edges half-way between integer values, so that a colour drawn exactly never straddles one)
FLAT_MIN_PIXELS = 4     # ... and a flat colour counts from this many pixels (at 64x64; scaled with the image's area)
FLAT_SHIFT = 0.1        # a flat colour is recoloured when the edit moves its median by more than this (any channel)
FLAT_SPLIT = 0.2        # ... unless more than this share of its pixels stay nearer the old colour (it splits)
FLAT_TOLERANCE = 0.25   # ... except its pixels the edit draws further than this from the new median (a new part)
# (chosen on 600 training faces of the conditional demo over the bar's fifteen edits and hair style 0, beside
# composite's band; a split share of 0.35 or none passed fewer)


def _recolour_face(image, edited, inside, min_pixels):
    """:func:`recolour` of one face: (S, S, 3) photo and decoded edit, (S, S) bool mask; returns the face's
    pixels inside the mask."""
    x, e = image[inside], edited[inside]
    key = np.floor((x * 255 + 0.5) / FLAT_QUANTUM).astype(np.int64) @ np.array([1 << 20, 1 << 10, 1])
    _, group, count = np.unique(key, return_inverse=True, return_counts=True)
    out = e.copy()
    for g in np.flatnonzero(count >= min_pixels):
        sel = group.ravel() == g
        new, old = np.median(e[sel], 0), np.median(x[sel], 0)
        if np.abs(new - old).max() <= FLAT_SHIFT:
            continue  # the colour stays: whatever the edit drew in it is kept as drawn
        stays = np.abs(e[sel] - old).max(-1) < np.abs(e[sel] - new).max(-1)
        if stays.mean() > FLAT_SPLIT:
            continue  # the colour splits (part of the old hair stays hair): drawn as decoded
        near = np.abs(e[sel] - new).max(-1) < FLAT_TOLERANCE
        out[np.flatnonzero(sel)[near]] = np.clip(x[sel][near] + (new - old), 0.0, 1.0)
    return out


def recolour(images, reconstructions, edited) -> np.ndarray:
    """An edit composited onto the photo (:func:`composite`) with the photo's flat colours kept flat. Cartoon faces
    are drawn in flat colours; the decoder's drawing of a new colour is blotchy. Inside the edit's mask, each flat
    colour of the photo that the edit moves as a whole (its median over those pixels moves by more than
    ``FLAT_SHIFT``) takes the decoded median, on the photo's own outlines and shading: a new hair colour, a skin
    where a beard was. A colour the edit leaves in place, and pixels drawn far from their colour's new median (a
    new frame on the skin), keep the decoded edit, as in :func:`composite`."""
    images = np.asarray(images, np.float32)
    edited = np.asarray(edited, np.float32)
    mask = edit_mask(reconstructions, edited)
    flat = edited.copy()
    min_pixels = max(1, round(FLAT_MIN_PIXELS * images.shape[1] * images.shape[2] / 64 ** 2))
    for i, inside in enumerate(mask[..., 0] > 0.01):
        flat[i][inside] = _recolour_face(images[i], edited[i], inside, min_pixels)
    return _blend(mask, flat, images)


def is_colour(attribute) -> bool:
    """Whether ``attribute`` is a colour (its name ends in ``_color``: hair, face, eye or glasses colour)."""
    return str(attribute).endswith("_color")


def photo_method(vae, attributes) -> str:
    """How an edit of ``attributes`` is shown on the photo: :func:`recolour` where every one is a colour that ``vae``
    edits by label swap, else :func:`composite`. On the conditional demo recolouring passed more often for every
    colour swap and less often for glasses, facial hair and hair style (docs/editing-study.md); latent moves were
    not measured recoloured against composited, so they stay composited."""
    swaps = [a for a in attributes if is_colour(a) and not needs_direction(vae, a)]
    return "recolour" if attributes and len(swaps) == len(attributes) else "composite"


def faces_to_edit(labels, to, from_=None, limit=None) -> np.ndarray:
    """Row indices of the faces an edit towards variant ``to`` applies to: those of variant ``from_``
    when it is given (an A -> B direction is meant for faces of class A), else every labelled face
    not already at ``to``; the first ``limit`` of them."""
    labels = np.asarray(labels)
    keep = (labels == from_) if from_ is not None else (labels != to) & (labels >= 0)
    return np.flatnonzero(keep)[:limit]


def relabel(vae, names, rows, attribute, to) -> np.ndarray:
    """A conditional model's edit: the one-hot labels of attribute ``rows`` (columns in the order ``names``)
    with ``attribute`` set to ``to``; decoding the same z with them is "the same face, a new label"."""
    rows = np.array(rows, copy=True)
    rows[:, list(names).index(attribute)] = to
    return vae.labels_of(names, rows)


# How a run's edits are made, by what the model is: a conditional model's conditioned attributes change
# their label (the same z); every other edit moves z along the attribute classifier (cartoon_vae.edit).
METHODS = {
    "label_swap": "conditional model: the same latent mean decoded with the attribute's label changed",
    "class_mean": "unsupervised: the code moved to the target class's mean in the classifier's subspace "
                  "(edit_to_class), no hold",
    "probability": "unsupervised: the code moved along the classifier's gradient only until it reads the "
                   "target at edit_probability (edit_to_probability, p = 0.9 by default), no hold",
}
# ... and each applied to the photo: added to it (:func:`on_photo`: the original plus the change the edit made to
# the decoder's drawing), or composited onto it (:func:`composite`: the decoded edit where the drawing changed).
ON_PHOTO = {"on_photo": on_photo, "composite": composite, "recolour": recolour}
for _name, _text in list(METHODS.items()):
    _kind = _text.split(":")[0]
    METHODS[f"{_name}_on_photo"] = (f"{_kind}: {_name.replace('_', ' ')} applied to the photo: x + edit - "
                                    f"reconstruction (clipped to [0, 1])")
    METHODS[f"{_name}_composite"] = (f"{_kind}: {_name.replace('_', ' ')} composited onto the photo: the decoded "
                                     f"edit where it changed the drawing (a soft mask), the photo elsewhere")
    METHODS[f"{_name}_recolour"] = (f"{_kind}: {_name.replace('_', ' ')} composited onto the photo with its flat "
                                    f"colours kept flat: each colour the edit moves as a whole takes the decoded "
                                    f"median colour, on the photo's own outlines")


def needs_direction(vae, attribute) -> bool:
    """Whether an edit of ``attribute`` moves z along a direction learned from the training codes (every
    attribute of the paper's model, and those a conditional model is not conditioned on); if not, it is the label
    swap. The one place where the way of editing is chosen."""
    return attribute not in vae.conditioned


def methods_for(vae, attribute) -> list[str]:
    """The editing methods of :data:`METHODS` (before any is applied to the photo) for ``attribute`` of ``vae``."""
    return ["class_mean", "probability"] if needs_direction(vae, attribute) else ["label_swap"]


def edit_methods(vae, names, means, labels, attribute, to, direction=None, p=0.9) -> dict:
    """``{method: function(rows) -> edited decodes}`` for one edit of held-out faces (``means``, attribute
    rows ``labels``), the methods of :func:`methods_for`: the label swap where the model is conditional on
    ``attribute``, else the two moves along ``direction``; a conditional model decodes every face with its own
    labels."""
    from .inference import decode

    def own(rows):
        return vae.labels_of(names, labels[rows])

    if not needs_direction(vae, attribute):
        return {"label_swap": lambda rows: decode(vae, means[rows], relabel(vae, names, labels[rows], attribute, to))}
    if direction is None:
        raise ValueError(f"moving z to edit {attribute} needs a direction (run_direction)")
    return {"class_mean": lambda rows: decode(vae, edit_to_class(means[rows], direction), own(rows)),
            "probability": lambda rows: decode(vae, edit_to_probability(means[rows], direction,
                                                                         p), own(rows))}


def direction_for(vae, names, train_rows, train_means, attribute, to, **kwargs):
    """The direction an edit of ``attribute`` to ``to`` moves z along (:func:`run_direction`), or None where the
    edit is a label swap (:func:`needs_direction`)."""
    if not needs_direction(vae, attribute):
        return None
    return run_direction(names, train_rows, train_means, attribute, to, **kwargs)


def truth_redraw(vae, names, attribute_rows, attribute, to):
    """``function(truths, rows)``: the decoder's own drawing of the true edited faces of held-out faces ``rows``
    (encoded and decoded; a conditional model's with the new label): the judge's floor in an attribute's region
    (:func:`cartoon_vae.counterfactual.judge`)."""
    from .inference import DECODE_BATCH, reconstruct

    def redraw(truths, rows):
        return reconstruct(vae, truths, relabel(vae, names, attribute_rows[rows], attribute, to), DECODE_BATCH)

    return redraw


def edit_scores(edited, unedited, attribute, to, edited_images=None, unedited_images=None, judged=None) -> dict:
    """How an edit went, as the probe reads the decoded faces.

    ``success``: the fraction of edited faces read as ``to``; ``gain``: that minus the fraction
    among the unedited decodes (strength 0); ``preservation``: the fraction of (face, other
    attribute) pairs whose reading did not change, over the other attributes in ``judged`` (default:
    all; an attribute the probe cannot read reliably flips with any change of the image, so it says
    nothing about the edit); ``preservation_all``: the same over every other attribute;
    ``pixel_change``: mean absolute change of the image (on [0, 1]) when images are given.
    """
    def kept(names):
        return float(np.mean([np.mean(edited[n] == unedited[n]) for n in names])) if names else 1.0

    others = [n for n in edited if n != attribute]
    success = float(np.mean(edited[attribute] == to))
    out = {"success": success, "gain": success - float(np.mean(unedited[attribute] == to)),
           "preservation": kept([n for n in others if judged is None or n in judged]),
           "preservation_all": kept(others)}
    if edited_images is not None:
        out["pixel_change"] = float(np.mean(np.abs(np.asarray(edited_images) - np.asarray(unedited_images))))
    return out


def run_direction(names, train_labels, train_means, attribute, to, from_=None, hold_names=(), where=""):
    """The direction ``cartoon-vae edit`` (and the explorer, and the counterfactual evaluation) moves
    along: ``attribute``'s classifier fitted on the training codes (with its :data:`COMPANIONS`),
    towards ``to`` (from ``from_``), holding the classifiers of ``hold_names`` fixed. ``train_labels``:
    (n, attributes) values of the n training codes, columns in the order of ``names``. A DataError
    (naming ``where``) when the labels cannot give one."""
    from .data import DataError

    names = list(names)

    def column(name):
        return train_labels[:, names.index(name)]

    try:
        companions = [column(c) for c in COMPANIONS.get(attribute, ()) if c in names]
        direction = fit_direction(train_means, column(attribute), to, from_, companions=companions)
    except ValueError as e:
        raise DataError(f"{where}: {attribute}: {e}") from None
    others = []
    for n in hold_names:
        try:
            others.append(attribute_classifier(train_means, column(n)))
        except ValueError as e:
            raise DataError(f"{where}: --hold {n}: {e}") from None
    return hold(direction, others) if others else direction


def _beside_truth(run, face_rows, attribute, to, edited) -> dict:
    """For faces of the embedded set: the true edited faces (the generator's drawing with ``attribute`` = ``to``)
    and a heat map of ``edited``'s difference from them; else nothing."""
    from .figures import heat_map
    from .synthetic import has_renderer, true_edits

    if not has_renderer(run.config.data.dir):
        return {}
    truths = true_edits(list(run.attrs.names), face_rows, attribute, to, run.config.data)
    return {"truth": truths, "difference": heat_map(edited, truths)}


def edit_heldout(run, attribute, to, from_=None, strengths=(1.0, 2.0, 3.0), p=None, hold_names=(), faces=6):
    """Edit up to ``faces`` held-out faces of an opened run (:func:`cartoon_vae.loaded.open_run`) towards
    ``attribute`` = ``to``: the columns of ``cartoon-vae edit``'s grid (original, reconstruction, one per strength
    in standard deviations, the target's class mean, and with ``p`` the classifier's probability) as images by
    label, and the report (settings, the faces' file indices, the classifier's training accuracy). For an attribute
    a conditional model is conditioned on, the edit is the label swap: original, reconstruction, label swap,
    and the swap applied to the photo (:func:`on_photo`). Then the edit (the swap, or the class mean) composited
    onto the photo (:func:`composite`) and recoloured (:func:`recolour`) and, for faces of the embedded set, the
    truth and a heat map of the difference from it of the one :func:`photo_method` chooses."""
    from .data import DataError
    from .inference import decode

    vae, attrs, where = run.vae, run.attrs, run.config.data.dir
    for name in [attribute, *hold_names]:
        if name not in attrs.names:
            raise DataError(f"{where}: no attribute {name!r} (have: {', '.join(attrs.names)})")
    n_variants = int(attrs.n_variants[attrs.names.index(attribute)])
    for flag, value in (("--to", to), ("--from", from_)):
        if value is not None and not 0 <= value < n_variants:
            raise DataError(f"{flag} {value}: {attribute} has variants 0..{n_variants - 1}")
    swap = not needs_direction(vae, attribute)  # a conditional model's own attribute: a label swap
    direction = None if swap else run_direction(attrs.names, run.train.rows, run.train.means, attribute, to, from_,
                                                hold_names, where)
    held = run.heldout
    rows = faces_to_edit(attrs.column(attribute)[held.index], to, from_, faces)
    if not len(rows):
        raise DataError(f"{where}: no held-out face to edit towards {attribute}={to}"
                        + (f" from {from_}" if from_ is not None else ""))
    z, face_rows = held.means[rows], held.rows[rows]
    y = vae.labels_of(attrs.names, face_rows)
    columns = {"original": held.images[rows], "reconstruction": decode(vae, z, y)}
    if swap:
        columns["label swap"] = decode(vae, z, relabel(vae, attrs.names, face_rows, attribute, to))
        columns["on the photo"] = on_photo(columns["original"], columns["reconstruction"], columns["label swap"])
    else:
        for s, moved in zip(strengths, np.moveaxis(edit_by_strength(z, direction, strengths), 1, 0)):
            columns[f"{s:+g} sd"] = decode(vae, moved, y)
        columns["class mean"] = decode(vae, edit_to_class(z, direction), y)
        if p is not None:
            columns[f"p = {p:g}"] = decode(vae, edit_to_probability(z, direction, p), y)
    edited = columns["label swap" if swap else "class mean"]
    columns["composited"] = composite(columns["original"], columns["reconstruction"], edited)
    columns["recoloured"] = recolour(columns["original"], columns["reconstruction"], edited)
    shown = columns["recoloured" if photo_method(vae, [attribute]) == "recolour" else "composited"]
    columns.update(_beside_truth(run, face_rows, attribute, to, shown))
    report = {"attribute": attribute, "to": to, "from": from_, "strengths": list(strengths), "p": p,
              "hold": list(hold_names), "faces": int(len(rows)), "images": [int(i) for i in held.index[rows]],
              "method": "label_swap" if swap else "latent_direction",
              "classifier_train_accuracy": None if swap else direction["train_accuracy"]}
    return columns, report
