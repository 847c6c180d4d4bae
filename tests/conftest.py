import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as cartoon_vae/__init__.py: tests run what users run

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def paper_config_path():
    return ROOT / "configs" / "paper.yaml"


def small_overrides(tmp_dir=None, size=64, latent=8):
    """Overrides that shrink the paper config to something a test trains in seconds."""
    o = [f"data.image_size={size}", f"model.latent_dim={latent}", "model.encoder_filters=[8,8,8,8,8]",
         "model.decoder_filters=[8,8,8,8]", "data.batch_size=8", "data.load_size=64"]
    if tmp_dir is not None:
        o.append(f"data.dir={tmp_dir}")
    return o


def exit_code(argv):
    """The command's exit code: main's return value, or the code of argparse's SystemExit."""
    from cartoon_vae.cli import main

    try:
        return main([str(a) for a in argv])
    except SystemExit as e:
        return e.code


def one_line_error(capsys, *words):
    """The captured stderr: exactly one line, no traceback, holding every one of ``words``."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert str(w) in err, (w, err)
    return err
