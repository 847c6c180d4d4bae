"""The walkthrough notebook runs end to end: its code cells executed in order, in one namespace, with the
parameter cell's budget made tiny (no Jupyter needed: the cells are plain Python)."""

import json

import matplotlib

from .conftest import ROOT

NOTEBOOK = ROOT / "notebooks" / "walkthrough.ipynb"


def test_the_walkthrough_notebook_runs_end_to_end(tmp_path, monkeypatch):
    matplotlib.use("Agg")
    cells = [c for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    parameters = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
    assert len(parameters) == 1 and cells[0] is parameters[0]
    for cell in cells:
        assert not cell["outputs"], "the notebook is tracked without outputs"
    monkeypatch.chdir(ROOT)  # the notebook reads configs/ from the repository root
    namespace = {}
    exec(compile("".join(parameters[0]["source"]), "parameters", "exec"), namespace)  # noqa: S102 - our own file
    namespace.update(FACES=60, EPOCHS=1, DATA=str(tmp_path / "faces"), RUN=str(tmp_path / "run"))
    for k, cell in enumerate(cells[1:], start=1):
        exec(compile("".join(cell["source"]), f"cell {k}", "exec"), namespace)  # noqa: S102
    run = tmp_path / "run"
    for name in ("model.keras", "fig4_reconstruction.png", "fig5_uniform_samples.png", "compare/glasses.png"):
        assert (run / name).is_file(), name
    assert namespace["faces"].shape == (8, 64, 64, 3)
