"""Run-folder files: history round trip, the writer lock (nested, links refused), outputs claimed, shapes checked."""

import os

import pytest

from cartoon_vae.runs import (HISTORY_COLUMNS, RunError, check_model_matches, claim_outputs, read_history,
                              refuse_links, write_history, writer)


def test_history_round_trip_keeps_epochs_as_int_and_drops_empty_cells(tmp_path):
    rows = [{"epoch": 1, "loss": 2.5, "seconds": 1.0}, {"epoch": 2, "loss": 1.5, "val_loss": 1.75, "extra": 9}]
    write_history(tmp_path / "history.csv", rows)
    header = (tmp_path / "history.csv").read_text().splitlines()[0]
    assert header == ",".join(HISTORY_COLUMNS)
    assert read_history(tmp_path / "history.csv") == [{"epoch": 1, "loss": 2.5, "seconds": 1.0},
                                                      {"epoch": 2, "loss": 1.5, "val_loss": 1.75}]
    assert read_history(tmp_path / "missing.csv") == []


def test_a_nested_writer_in_one_process_shares_the_lock(tmp_path):
    with writer(tmp_path):
        with writer(tmp_path):  # figures holding the lock while a cache is written
            pass
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())


def test_links_are_refused_and_the_lock_is_never_followed(tmp_path):
    outside = tmp_path / "victim"
    outside.write_text("keep")
    run = tmp_path / "run"
    (run / "sub").mkdir(parents=True)
    (run / "sub" / "link").symlink_to(outside)
    with pytest.raises(RunError, match="sub/link: symbolic link inside the run folder"):
        refuse_links(run)
    (run / "sub" / "link").unlink()
    (run / ".lock").symlink_to(outside)
    with pytest.raises(RunError, match=r"\.lock: symbolic link"):
        with writer(run):
            pass
    assert outside.read_text() == "keep"


def test_claim_outputs_refuses_then_lists_for_overwrite(tmp_path):
    (tmp_path / "sample_0000.png").write_bytes(b"a")
    (tmp_path / "sample_0001.png").symlink_to(tmp_path / "nowhere")  # a dangling link counts
    with pytest.raises(RunError, match="sample_0000.png and 1 more: already there"):
        claim_outputs(tmp_path, ["sample_*.png"])
    assert [p.name for p in claim_outputs(tmp_path, ["sample_*.png"], overwrite=True)] == ["sample_0000.png",
                                                                                           "sample_0001.png"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunError, match="is not a folder"):
        claim_outputs(tmp_path / "file" / "out", ["*.png"])
    assert claim_outputs(tmp_path / "new" / "out", ["*.png"]) == [] and not (tmp_path / "new").exists()


def test_check_model_matches_names_the_key():
    from cartoon_vae.config import Config

    class Vae:
        image_size, latent_dim, encoder_filters, decoder_filters = 256, 200, (32, 64, 64, 64, 64), (64, 64, 64, 32)
        conditioned = ()

    check_model_matches(Vae(), Config(), "model.keras", "config.yaml")
    Vae.latent_dim = 64
    with pytest.raises(RunError, match="model.latent_dim is 200, but model.keras was trained with 64"):
        check_model_matches(Vae(), Config(), "model.keras", "config.yaml")
