"""The benchmark's child-process entry points, in one explicit table (:data:`CHILDREN`):
:func:`cartoon_vae.bench_measure.in_child` runs ``CHILDREN[name](**arguments)`` in a fresh Python,
because TensorFlow reads oneDNN and thread settings once, at start-up, and a fresh process carries
none of the state an earlier phase left.
"""

from __future__ import annotations

import numpy as np

from .bench_loops import reference_training, time_to_quality
from .bench_measure import MEMORY
from .bench_size import size_section
from .bench_step import step_runner
from .config import load_config

def child_step(config_path, batch_size, images):
    """One call of the project's :func:`step_runner` in a fresh process, for :func:`in_child`."""
    return step_runner(load_config(config_path), "project", batch_size, images)()


def child_reference_training(config_path, epochs, weights_path):
    """:func:`reference_training`, for :func:`in_child`: the config and initial weights come as files."""
    with np.load(weights_path) as w:
        weights = [w[f"w{i}"] for i in range(len(w.files))]
    return reference_training(load_config(config_path), epochs, weights)


def child_time_to_quality(paper_config, recommended_config, data_dir, paper_epochs, max_epochs, log=print,
                          same_framing=False):
    """:func:`time_to_quality` on ``data_dir``, for :func:`in_child`; with ``same_framing`` the paper recipe reads the
    faces with the recommended config's crop and batch size (both are scored on the same held-out images)."""
    subset = {"dir": data_dir, "cache": MEMORY}
    recommended = load_config(recommended_config).replace(data=subset)
    framing = {"crop": recommended.data.crop, "batch_size": recommended.data.batch_size} if same_framing else {}
    return time_to_quality(load_config(paper_config).replace(data={**subset, **framing}), recommended, paper_epochs,
                           max_epochs, log)


CHILDREN = {  # name -> entry point, for in_child
    "size_section": size_section,
    "child_step": child_step,
    "child_reference_training": child_reference_training,
    "child_time_to_quality": child_time_to_quality,
}
