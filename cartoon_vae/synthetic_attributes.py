"""The attribute table of the embedded generator (:mod:`cartoon_vae.synthetic`): Cartoon Set's 18
attributes in the real set's order with our variant counts, the real counts, the colours the colour
attributes index, the words for the variants that have names, and the attribute CSV's format.

As in the real set, the last variant of ``facial_hair`` and ``glasses`` means "none".

Example:
    >>> import numpy as np
    >>> from cartoon_vae.synthetic_attributes import csv_text, sample_attributes
    >>> csv_text(sample_attributes(np.random.default_rng(0))).splitlines()[0]
    '"eye_angle", 2, 3'
"""

from __future__ import annotations

import numpy as np

# (name, our variant count), in the order of the real set's CSV lines.
ATTRIBUTES = [
    ("eye_angle", 3), ("eye_lashes", 2), ("eye_lid", 2), ("chin_length", 3), ("eyebrow_weight", 2),
    ("eyebrow_shape", 8), ("eyebrow_thickness", 4), ("face_shape", 7), ("facial_hair", 6), ("hair", 12),
    ("eye_color", 5), ("face_color", 11), ("hair_color", 10), ("glasses", 6), ("glasses_color", 7),
    ("eye_slant", 3), ("eyebrow_width", 3), ("eye_eyebrow_distance", 3),
]
REAL_VARIANTS = {
    "eye_angle": 3, "eye_lashes": 2, "eye_lid": 2, "chin_length": 3, "eyebrow_weight": 2, "eyebrow_shape": 14,
    "eyebrow_thickness": 4, "face_shape": 7, "facial_hair": 15, "hair": 111, "eye_color": 5, "face_color": 11,
    "hair_color": 10, "glasses": 12, "glasses_color": 7, "eye_slant": 3, "eyebrow_width": 3,
    "eye_eyebrow_distance": 3,
}

# The colours that face_color, hair_color, eye_color and glasses_color index.
SKIN = [(255, 224, 196), (250, 212, 178), (241, 194, 156), (234, 180, 140), (222, 164, 120), (205, 145, 100),
        (186, 126, 86), (160, 105, 70), (135, 88, 58), (110, 70, 45), (85, 55, 38)]
HAIR = [(35, 30, 30), (75, 50, 35), (120, 80, 50), (150, 75, 40), (220, 120, 60), (235, 200, 110),
        (245, 230, 180), (160, 160, 165), (235, 235, 235), (90, 110, 170)]
IRIS = [(115, 70, 40), (80, 130, 195), (85, 145, 90), (140, 155, 165), (50, 40, 35)]
GLASSES = [(30, 30, 30), (110, 70, 40), (200, 50, 50), (245, 210, 70), (60, 100, 200), (150, 150, 155),
           (60, 150, 90)]

GLASSES_STYLES = ["round", "square", "cat-eye", "thin", "aviator", "none"]
# What each variant of an attribute looks like, in words, where the drawing has a name for it (the explorer's
# selectors show them; the real set's variants are indices only).
VALUE_NAMES = {
    "glasses": GLASSES_STYLES,
    "facial_hair": ["full beard", "goatee", "moustache", "chin strap", "stubble", "none"],
    "hair": ["bald", "buzz cut", "short crop", "side part", "long straight", "bob", "afro", "pigtails", "mohawk", "bun",
             "spiky", "long wavy"],
    "hair_color": ["black", "dark brown", "brown", "auburn", "ginger", "blond", "platinum", "grey", "white", "blue"],
    "glasses_color": ["black", "brown", "red", "yellow", "blue", "grey", "green"],
    "eye_color": ["brown", "blue", "green", "grey", "dark"],
    "face_color": [f"tone {i + 1} of 11{' (lightest)' if i == 0 else ' (darkest)' if i == 10 else ''}"
                   for i in range(11)],
}


def sample_attributes(rng: np.random.Generator) -> dict:
    """One face's attributes, each uniform over its variants (as in the real set)."""
    return {name: int(rng.integers(n)) for name, n in ATTRIBUTES}


def csv_text(attributes: dict) -> str:
    """The attribute CSV in Cartoon Set's format: ``"name", variant_index, n_variants`` per line."""
    return "".join(f'"{name}", {attributes[name]}, {n}\n' for name, n in ATTRIBUTES)

