"""Colour fidelity: is each part of a reconstructed face drawn in its own colour?

A person notices a red frame drawn orange long before an MSE does: a 1-2 pixel frame hardly moves a
whole-image error. For a face of the embedded set the generator says which pixels each coloured part
covers: the **region** of a part is where the generator's drawing changes when that part's colour (or
presence) is redrawn, with every other attribute kept (:func:`regions`), eroded by one pixel so that
anti-aliased edges, which blend two colours, do not count.

Per face and region, the **distance** is the CIE76 colour difference (:func:`cartoon_vae.metrics.delta_e`)
between the region's mean colour in the original and in the reconstruction: about 2 is just noticeable,
above 10 is another colour (``ANOTHER_COLOUR``). A face's **worst region** is its largest distance.

Example:
    >>> report, per_face = colour_fidelity(config.data, attribute_rows, names, originals, reconstructions)
    >>> report["worst"]["above_share"]
"""

from __future__ import annotations

import numpy as np

from .metrics import delta_e

ANOTHER_COLOUR = 10.0  # CIELAB distance above which a region reads as drawn in another colour
MAIN = ("skin", "hair", "facial_hair", "glasses")  # the large parts; eyes and eyebrows are a few pixels at 64x64
# region -> (attribute redrawn to find it, regions whose pixels are taken out of it)
REGIONS = {
    "skin": ("face_color", ("hair", "glasses")),
    "hair": ("hair_color", ("skin", "facial_hair", "eyebrows")),
    "facial_hair": ("facial_hair", ()),
    "eyebrows": ("eyebrow_weight", ()),
    "eyes": ("eye_color", ()),
    "glasses": ("glasses_color", ()),
}


def _redrawn(attributes: dict, attribute: str) -> dict | None:
    """The attributes with ``attribute`` redrawn as differently as the generator allows, or None where the
    face lacks the part (no glasses, no facial hair)."""
    from . import synthetic

    a = dict(attributes)
    palettes = {"face_color": synthetic.SKIN, "hair_color": synthetic.HAIR, "eye_color": synthetic.IRIS,
                "glasses_color": synthetic.GLASSES}
    if attribute in palettes:  # the colour farthest from the face's own
        colours = np.asarray(palettes[attribute], float)
        a[attribute] = int(np.argmax(np.linalg.norm(colours - colours[a[attribute]], axis=1)))
    elif attribute == "facial_hair":  # the beard's pixels: where removing it changes the face
        none = dict(synthetic.ATTRIBUTES)["facial_hair"] - 1
        if a[attribute] == none:
            return None
        a[attribute] = none
    elif attribute == "eyebrow_weight":
        a[attribute] = 1 - a[attribute]
    if attribute == "glasses_color" and a["glasses"] == len(synthetic.GLASSES_STYLES) - 1:
        return None
    return a


def regions(attributes: dict, data_cfg, tolerance=2 / 255) -> dict[str, np.ndarray]:
    """Region name -> (S, S) bool pixels of this face (``data_cfg``: the run's ``data`` section, so the
    regions are at the loader's size and crop). A part the face lacks has an empty region."""
    from scipy import ndimage

    from .counterfactual import true_counterfactual

    original = true_counterfactual(attributes, data_cfg)
    changed = {}
    for name, (attribute, _) in REGIONS.items():
        other = _redrawn(attributes, attribute)
        changed[name] = (np.zeros(original.shape[:2], bool) if other is None else
                         (np.abs(true_counterfactual(other, data_cfg) - original) > tolerance).any(-1))
    changed["facial_hair"] &= changed["hair"]  # the beard drawn in the hair's colour
    out = {}
    for name, (_, without) in REGIONS.items():
        region = changed[name].copy()
        for other in without:
            region &= ~changed[other]
        out[name] = ndimage.binary_erosion(region, structure=np.ones((3, 3), bool))
    return out


def region_distances(original, reconstruction, masks: dict) -> dict[str, float]:
    """Region -> CIELAB distance of the region's mean colour in ``original`` and ``reconstruction`` ((S, S, 3)
    in [0, 1]); NaN for an empty region."""
    return {name: float(delta_e(original[m].mean(0), reconstruction[m].mean(0))) if m.any() else float("nan")
            for name, m in masks.items()}


def colour_fidelity(data_cfg, attribute_rows, names, originals, reconstructions, limit=None,
                    threshold=ANOTHER_COLOUR) -> tuple[dict, dict]:
    """Colour fidelity of up to ``limit`` faces (``attribute_rows``: each face's attribute values in the order
    ``names``; images (n, S, S, 3) in [0, 1]). Returns (summary, per-face): per region the faces that have it,
    the median distance and the share above ``threshold``; the same for each face's worst region (``worst``) and
    its worst of the large parts (``worst_main``: skin, hair, facial hair, glasses); and per face an array of
    distances per region (NaN where the face lacks it)."""
    n = len(originals) if limit is None else min(int(limit), len(originals))
    per = {name: np.full(n, np.nan) for name in REGIONS}
    for i in range(n):
        attributes = dict(zip(names, (int(v) for v in attribute_rows[i])))
        for name, d in region_distances(originals[i], reconstructions[i], regions(attributes, data_cfg)).items():
            per[name][i] = d
    for worst, parts in (("worst", tuple(REGIONS)), ("worst_main", MAIN)):
        table = np.stack([per[name] for name in parts], 1)
        has_any = ~np.isnan(table).all(1)
        per[worst] = np.full(n, np.nan)
        per[worst][has_any] = np.nanmax(table[has_any], axis=1)
    summary = {"faces": n, "threshold": threshold, "regions": {}}
    for name, d in per.items():
        d = d[~np.isnan(d)]
        row = {"faces": int(len(d)), "median": float(np.median(d)) if len(d) else float("nan"),
               "above_share": float((d > threshold).mean()) if len(d) else float("nan")}
        if name.startswith("worst"):
            summary[name] = row
        else:
            summary["regions"][name] = row
    return summary, per
