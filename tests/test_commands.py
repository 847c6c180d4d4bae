"""What a subcommand runs (the end-to-end runs of every command are in tests/test_pipeline.py)."""

import argparse

from cartoon_vae.commands import cmd_check_data
from cartoon_vae.synthetic import make_dataset


def test_check_data_counts_images_labels_and_variants(tmp_path, capsys):
    make_dataset(tmp_path / "set", n=6, seed=1, workers=1, progress=False)
    (tmp_path / "set" / "broken.png").write_bytes(b"not an image")
    cmd_check_data(argparse.Namespace(data=str(tmp_path / "set")))
    out = capsys.readouterr().out
    assert "7 image files (png 7), 1 unreadable, 6 with attribute CSVs; training uses 6" in out
    assert "broken.png" in out and "  glasses: 6 variants" in out
