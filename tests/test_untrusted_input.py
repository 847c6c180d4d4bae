"""Reliability, round three: every image format trains, resume never starts over, nothing is written
through a link, outputs are not overwritten unasked, and every argument and file read back is checked.

Each case runs the real command (``cartoon_vae.cli.main``) on a tiny model and asserts the exit code,
one line on stderr, and what is (not) on disk afterwards.
"""

import csv
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cartoon_vae.synthetic import make_dataset

from .conftest import ROOT, exit_code, one_line_error

PAPER = str(ROOT / "configs" / "paper.yaml")
TINY = ["data.image_size=32", "data.load_size=64", "model.latent_dim=4", "model.encoder_filters=[4,4,4,4,4]",
        "model.decoder_filters=[4,4,4,4]", "data.batch_size=8", "data.val_fraction=0.25", "train.epochs=1",
        "sample.stats_images=40", "sample.reconstructions=2"]
SETS = [a for kv in TINY for a in ("--set", kv)]





def _snapshot(root):
    return {p: hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else None
            for p in Path(root).rglob("*")}


def _history(run):
    with open(run / "history.csv") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    out = tmp_path_factory.mktemp("faces") / "faces"
    make_dataset(out, n=24, seed=3, workers=1, progress=False)
    return out


@pytest.fixture(scope="module")
def run(faces, tmp_path_factory):
    """A tiny trained run (one epoch) that the tests below only read or copy."""
    r = tmp_path_factory.mktemp("run") / "run"
    assert exit_code(["train", "--config", PAPER, "--data", faces, "--run-dir", r, *SETS]) == 0
    return r


def _copy_run(run, to):
    shutil.copytree(run, to, ignore=shutil.ignore_patterns(".lock"))
    return to


# ---------------------------------------------------------------- images: one reader, every format

def _as_format(src, dest, fmt):
    rgba = Image.open(src).convert("RGBA")
    flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    flat.alpha_composite(rgba)
    if fmt == "cmyk.jpg":
        flat.convert("CMYK").save(dest, "JPEG")
    elif fmt in ("jpg", "bmp", "tiff"):
        flat.convert("RGB").save(dest)
    else:  # gif, webp keep the transparency
        rgba.save(dest)


def test_a_folder_of_jpegs_and_other_formats_trains_and_check_data_counts_them(faces, tmp_path, capsys):
    data = tmp_path / "mixed"
    data.mkdir()
    formats = ["jpg", "cmyk.jpg", "gif", "webp", "tiff", "bmp"]
    for k, png in enumerate(sorted(faces.glob("*.png"))):
        fmt = formats[k % len(formats)] if k >= 6 else formats[k]
        _as_format(png, data / f"{png.stem}.{fmt}", fmt)
    assert exit_code(["check-data", "--data", data]) == 0
    out = capsys.readouterr().out
    assert "24 image files" in out and "0 unreadable" in out and "training uses 24" in out
    run = tmp_path / "run"
    assert exit_code(["train", "--config", PAPER, "--data", data, "--run-dir", run, *SETS,
                  "--set", "train.epochs=3", "--set", "data.cache=none"]) == 0
    rows = _history(run)
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    losses = [float(r["loss"]) for r in rows]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]  # it learned from the images, not from nothing
    from cartoon_vae.data import load_splits
    from cartoon_vae.runs import load_run

    _, config = load_run(run)
    s = load_splits(config.data)
    assert s.n_train + s.n_val == 24
    seen = sum(len(x) for x, _ in s.train.batch(8)) + sum(len(x) for x, _ in s.val.batch(8))
    assert seen == 24  # every file the scan accepted is decoded: none is dropped silently


def test_a_file_the_scan_passes_but_that_does_not_decode_is_named_and_skipped(faces, tmp_path, capsys, caplog):
    data = tmp_path / "d"
    shutil.copytree(faces, data)
    full = tmp_path / "full.jpg"
    _as_format(data / "cs000000.png", full, "jpg")
    (data / "zz_truncated.jpg").write_bytes(full.read_bytes()[: full.stat().st_size // 2])  # verify() passes it
    assert exit_code(["check-data", "--data", data]) == 0
    out = capsys.readouterr().out
    assert "1 unreadable" in out and "zz_truncated.jpg" in out and "training uses 24" in out
    from cartoon_vae import load_config
    from cartoon_vae.data import load_splits

    s = load_splits(load_config(PAPER, [f"data.dir={data}", *TINY]).data)
    seen = sum(len(x) for x, _ in s.train.batch(8)) + sum(len(x) for x, _ in s.val.batch(8))
    assert seen == 24 and "zz_truncated.jpg" in caplog.text


def test_an_image_over_the_decompression_bomb_limit_is_never_decoded(faces, tmp_path):
    from cartoon_vae import load_config
    from cartoon_vae.data import load_splits
    from cartoon_vae.images import find_unreadable

    data = tmp_path / "d"
    shutil.copytree(faces, data)
    Image.new("1", (14000, 14000)).save(data / "zz_bomb.png")  # 196 Mpx in a few KB
    assert "decompression-bomb" in find_unreadable([str(data / "zz_bomb.png")])[str(data / "zz_bomb.png")]
    s = load_splits(load_config(PAPER, [f"data.dir={data}", *TINY]).data)
    indices = [int(i) for _, i in s.train.concatenate(s.val)]
    assert s.n_train + s.n_val == 24 and len(indices) == 24 and 24 not in indices  # the bomb (index 24) is out


# ---------------------------------------------------------------- resume never starts over silently

def test_resume_with_an_emptied_checkpoints_folder(run, tmp_path, capsys):
    r = _copy_run(run, tmp_path / "r")
    for c in (r / "checkpoints").iterdir():
        c.unlink()
    # model.keras and a history that counts its epoch: resumed from model.keras, saying so
    assert exit_code(["train", "--resume", "--run-dir", r, "--set", "train.epochs=2"]) == 0
    assert "resuming from model.keras" in capsys.readouterr().out
    assert [row["epoch"] for row in _history(r)] == ["1", "2"]
    # model.keras without a history, or a history without a model: one line, nothing rewritten
    for remove in ("history.csv", "model.keras"):
        q = _copy_run(run, tmp_path / f"q-{remove}")
        shutil.rmtree(q / "checkpoints")
        (q / remove).unlink()
        before = _snapshot(q)
        assert exit_code(["train", "--resume", "--run-dir", q, "--set", "train.epochs=2"]) == 2
        one_line_error(capsys, "no checkpoint to resume from", "would train again from epoch 1")
        assert {p: h for p, h in _snapshot(q).items() if p.name != ".lock"} == before


def test_resume_after_config_yaml_was_edited_to_another_image_size(run, tmp_path, capsys):
    r = _copy_run(run, tmp_path / "r")
    (r / "config.yaml").write_text((r / "config.yaml").read_text().replace("image_size: 32", "image_size: 64"))
    before = _snapshot(r)
    assert exit_code(["train", "--resume", "--run-dir", r, "--set", "train.epochs=2"]) == 2
    one_line_error(capsys, "data.image_size is 64", "trained with 32")
    assert exit_code(["figures", "--run", r]) == 2
    one_line_error(capsys, "data.image_size is 64")
    assert {p: h for p, h in _snapshot(r).items() if p.name != ".lock"} == before


# ---------------------------------------------------------------- nothing written through a link

@pytest.mark.parametrize("plant", [".lock", "checkpoints", "latent_stats.npz", "logs", "dangling .lock"])
def test_a_run_folder_with_planted_links_leaves_every_target_unchanged(run, tmp_path, capsys, plant):
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "precious.txt"
    victim.write_text("do not touch\n")
    r = _copy_run(run, tmp_path / "r")
    name = plant.split()[-1]
    if (r / name).is_dir():
        shutil.rmtree(r / name)
    elif (r / name).exists():
        (r / name).unlink()
    target = outside / "missing" if plant.startswith("dangling") else (outside if name in ("checkpoints", "logs")
                                                                        else victim)
    (r / name).symlink_to(target)
    before = _snapshot(outside)
    for argv in (["figures", "--run", r], ["train", "--resume", "--run-dir", r, "--set", "train.epochs=2"],
                 ["sample", "--run", r, "--n", "2", "--out", tmp_path / "s"]):
        assert exit_code(argv) == 2, argv
        one_line_error(capsys, f"{r / name}: symbolic link")
    assert _snapshot(outside) == before and victim.read_text() == "do not touch\n"
    assert not (outside / "missing").exists()


# ---------------------------------------------------------------- outputs are not overwritten unasked

def test_sample_refuses_earlier_outputs_and_overwrite_leaves_no_stale_ones(run, tmp_path, capsys):
    out = tmp_path / "s"
    assert exit_code(["sample", "--run", run, "--n", "3", "--out", out]) == 0
    before = _snapshot(out)
    assert exit_code(["sample", "--run", run, "--n", "2", "--out", out]) == 2
    one_line_error(capsys, "latents.npy and 3 more", "already there", "--overwrite")
    assert _snapshot(out) == before
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"mine")
    (out / "sample_0000.png").unlink()
    (out / "sample_0000.png").symlink_to(victim)  # a link where a sample goes: replaced, its target untouched
    assert exit_code(["sample", "--run", run, "--n", "2", "--out", out, "--overwrite", "--seed", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["latents.npy", "sample_0000.png", "sample_0001.png"]
    assert np.load(out / "latents.npy").shape[0] == 2 and victim.read_bytes() == b"mine"
    assert not (out / "sample_0000.png").is_symlink()


# ---------------------------------------------------------------- files read back are validated

def test_damaged_latent_caches_are_recomputed(run, tmp_path, capsys):
    r = _copy_run(run, tmp_path / "r")
    assert exit_code(["sample", "--run", r, "--n", "2", "--out", tmp_path / "a"]) == 0
    assert exit_code(["sample", "--run", r, "--n", "2", "--mode", "gmm", "--out", tmp_path / "b"]) == 0
    for name in ("latent_stats.npz", "latent_gmm.npz"):
        data = (r / name).read_bytes()
        (r / name).write_bytes(data[: len(data) // 2])
    capsys.readouterr()
    assert exit_code(["sample", "--run", r, "--n", "2", "--out", tmp_path / "c"]) == 0
    assert exit_code(["sample", "--run", r, "--n", "2", "--mode", "gmm", "--out", tmp_path / "d"]) == 0
    out = capsys.readouterr().out
    assert "latent_stats.npz: latent statistics unreadable" in out and "latent_gmm.npz: latent mixture unreadable" in out
    assert np.load(r / "latent_stats.npz")["min"].shape == (4,)


def test_evaluate_leaves_faces_without_csv_out_and_says_so(run, faces, tmp_path, capsys):
    import json

    from cartoon_vae.data import split_indices
    from cartoon_vae.evaluate import evaluate_run

    data = tmp_path / "faces"
    shutil.copytree(faces, data)
    r = _copy_run(run, tmp_path / "r")
    (r / "config.yaml").write_text((r / "config.yaml").read_text().replace(str(faces), str(data)))
    assert exit_code(["train-probe", "--config", PAPER, *SETS, "--data", data, "--out", tmp_path / "probe",
                  "--epochs", "1"]) == 0
    paths = sorted(data.glob("*.png"))
    _, val = split_indices(len(paths), 0.25, 0)
    for i in val[:2]:  # two held-out faces lose their labels
        paths[i].with_suffix(".csv").unlink()
    settings = {"samples": 12, "midpoint_pairs": 10, "bootstrap": 10, "edits": False,  # the labels' part only
                "counterfactual_faces": 0}
    capsys.readouterr()
    m = evaluate_run(r, tmp_path / "probe", settings=settings)
    assert "2 of 6 held-out faces have no attribute CSV" in capsys.readouterr().out
    assert m["unlabelled_heldout_images"] == 2 and m["disentanglement"]["test_codes"] == 4
    for v in m["probe_accuracy"]["per_attribute"].values():  # a score over 4 labelled faces: a multiple of 1/4
        assert abs(v["originals"] * 4 - round(v["originals"] * 4)) < 1e-9
    assert "2 held-out faces without an attribute CSV" in (r / "metrics.md").read_text()
    assert json.loads((r / "metrics.json").read_text())["unlabelled_heldout_images"] == 2


@pytest.fixture(scope="module")
def ws(faces, run, tmp_path_factory):
    """Data folders, runs and probes that the one-line cases below must not change."""
    w = tmp_path_factory.mktemp("ws")
    for n in (2, 3):
        make_dataset(w / f"n{n}", n=n, seed=0, workers=1, progress=False)
    make_dataset(w / "n12", n=12, seed=0, workers=1, progress=False)
    for name, edit in {"overflow": ("cs000001.csv", 3, '"eye_lashes", 0, 99999999999999999999'),
                       "latin1": ("cs000001.csv", 3, b'"eye_lashes", 0, 2 \xe9'),
                       "count": ("cs000002.csv", 0, '"eye_angle", 4, 5')}.items():
        shutil.copytree(faces, w / name)
        path, line, text = w / name / edit[0], edit[1], edit[2]
        lines = path.read_bytes().split(b"\n")
        lines[line] = text if isinstance(text, bytes) else text.encode()
        path.write_bytes(b"\n".join(lines))
    shutil.copytree(faces, w / "one_label")
    for c in sorted((w / "one_label").glob("*.csv"))[1:]:
        c.unlink()
    r12 = w / "run12"
    assert exit_code(["train", "--config", PAPER, "--data", w / "n12", "--run-dir", r12, *SETS]) == 0
    (w / "probe_json").mkdir()
    (w / "probe_json" / "probe.keras").write_bytes(b"x")
    (w / "probe_json" / "probe.json").write_bytes(b"{not json")
    (w / "probe_keras").mkdir()
    (w / "probe_keras" / "probe.keras").write_bytes(b"not a zip")
    (w / "probe_keras" / "probe.json").write_text('{"names": ["hair"], "n_variants": [3], "image_size": 32, '
                                                  '"crop": 1.0}')
    bad = os.fsdecode(b"caf\xe9")
    return w, bad


CASES = [  # (argv with {w}, {run}, {bad}; words the one line must contain)
    (["train", "--config", PAPER, "--data", "{w}/n2", "--run-dir", "{w}/x1", *SETS],
     ["n2", "2 readable image(s) leave no validation image", "data.val_fraction"]),
    (["train", "--config", PAPER, "--data", "{w}/n3", "--run-dir", "{w}/x2", *SETS, "--set", "data.val_fraction=0.1"],
     ["n3", "leave no validation image"]),
    (["figures", "--run", "{w}/run12"], ["run12", "mixture needs the codes of at least 10", "has 9"]),
    (["sample", "--run", "{w}/run12", "--mode", "gmm", "--out", "{w}/x3"], ["mixture needs the codes of at least 10"]),
    (["check-data", "--data", "{w}/overflow"], ["cs000001.csv:4", "n_variants <= 10,000"]),
    (["check-data", "--data", "{w}/latin1"], ["cs000001.csv:4", "not UTF-8"]),
    (["check-data", "--data", "{w}/count"], ["cs000002.csv", "eye_angle has 5 variants", "says 3"]),
    (["train-probe", "--config", PAPER, *SETS, "--data", "{w}/one_label", "--out", "{w}/x4"],
     ["one_label", "split has no image with an attribute CSV"]),
    (["edit", "--run", "{run}", "--attribute", "hair", "--to", "1", "--probe", "{w}/probe_json", "--out", "{w}/x5"],
     ["probe_json/probe.json", "not readable JSON"]),
    (["edit", "--run", "{run}", "--attribute", "hair", "--to", "1", "--probe", "{w}/probe_keras", "--out", "{w}/x5"],
     ["probe_keras/probe.keras", "cannot load the probe"]),
    (["train", "--config", PAPER, "--data", "{w}/{bad}", "--run-dir", "{w}/x6"], ["--data", "must be valid UTF-8"]),
    (["train", "--config", PAPER, "--run-dir", "{w}/{bad}"], ["--run-dir", "must be valid UTF-8"]),
    (["train", "--config", PAPER, "--set", "train.seed=-1", "--run-dir", "{w}/x7"],
     ["train.seed", "[0, 2,147,483,647]"]),
    (["train", "--config", PAPER, "--set", "data.seed=12345678901234567890", "--run-dir", "{w}/x8"],
     ["data.seed", "[0, 2,147,483,647]"]),
    (["sample", "--run", "{run}", "--seed", "-1", "--out", "{w}/x9"], ["--seed", "[0, 2,147,483,647]"]),
    (["edit", "--run", "{run}", "--attribute", "hair", "--to", "1", "--strengths", "abc", "--out", "{w}/x10"],
     ["--strengths", "comma-separated numbers", "'abc'"]),
]


@pytest.mark.parametrize("argv,words", CASES, ids=[" ".join(map(str, a[:2])) + f" {i}" for i, (a, _) in
                                                   enumerate(CASES)])
def test_each_former_traceback_is_exit_2_and_one_line(ws, run, capsys, argv, words):
    w, bad = ws
    before = _snapshot(w)
    assert exit_code([str(a).format(w=w, run=run, bad=bad) for a in argv]) == 2
    one_line_error(capsys, *[s.format(w=w, run=run) for s in words])
    after = _snapshot(w)
    assert {p: h for p, h in after.items() if p in before} == before
    assert not [p for p in after if p not in before and p.name != ".lock"]


def test_a_data_file_whose_name_is_not_utf8_is_read(faces, tmp_path):
    from cartoon_vae import load_config
    from cartoon_vae.data import list_images, load_splits

    data = tmp_path / "d"
    shutil.copytree(faces, data)
    os.rename(data / "cs000003.png", os.path.join(os.fsencode(data), b"cs000003-caf\xe9.png"))
    s = load_splits(load_config(PAPER, [f"data.dir={data}", *TINY]).data)
    indices = sorted(int(i) for _, i in s.train.concatenate(s.val))
    assert indices == list(range(24)) and list_images(data)[3].endswith("cs000003-caf\udce9.png")
