"""The embedded generator's attribute table: Cartoon Set's order and CSV lines, a name for each named variant."""

import numpy as np

from cartoon_vae.synthetic_attributes import (ATTRIBUTES, GLASSES_STYLES, REAL_VARIANTS, VALUE_NAMES, csv_text,
                                              sample_attributes)


def test_attributes_are_drawn_within_their_variants_and_written_as_cartoon_set_lines():
    a = sample_attributes(np.random.default_rng(5))
    assert a == sample_attributes(np.random.default_rng(5)) and list(a) == [n for n, _ in ATTRIBUTES]
    assert list(a) == list(REAL_VARIANTS) and all(0 <= a[n] < k <= REAL_VARIANTS[n] for n, k in ATTRIBUTES)
    lines = csv_text(a).splitlines()
    assert lines == [f'"{n}", {a[n]}, {k}' for n, k in ATTRIBUTES]


def test_every_named_attribute_has_a_name_for_each_of_its_variants():
    counts = dict(ATTRIBUTES)
    for name, words in VALUE_NAMES.items():
        assert len(words) == counts[name] and len(set(words)) == len(words), name
    assert VALUE_NAMES["glasses"][-1] == VALUE_NAMES["facial_hair"][-1] == GLASSES_STYLES[-1] == "none"
