"""load_config: the paper's values, overrides, and one clear error for every bad input."""

import pytest
import yaml

from cartoon_vae import ConfigError, load_config


def test_paper_config_holds_the_papers_settings(paper_config_path):
    cfg = load_config(paper_config_path)
    assert (cfg.data.image_size, cfg.data.batch_size, cfg.model.latent_dim) == (256, 128, 200)
    assert cfg.model.encoder_filters == (32, 64, 64, 64, 64)
    assert (cfg.model.kernel_size, cfg.model.leaky_relu_slope) == (3, 0.3)
    assert (cfg.train.learning_rate, cfg.train.epochs) == (5e-4, 30)
    assert cfg.loss.reconstruction_weight == 1000.0 and cfg.loss.kl == "poly_bound"


def test_every_paper_key_has_a_comment(paper_config_path):
    for line in paper_config_path.read_text().splitlines():
        if line.startswith("  ") and ":" in line:
            assert "#" in line, f"uncommented key: {line.strip()}"


def test_sections_are_frozen(paper_config_path):
    cfg = load_config(paper_config_path)
    with pytest.raises(Exception):
        cfg.model.latent_dim = 3


def test_overrides_are_parsed_as_yaml(paper_config_path):
    cfg = load_config(paper_config_path, ["model.latent_dim=64", "model.encoder_filters=[16,16,16,16,16]",
                                          "loss.kl=exact", "train.learning_rate=1e-3", "data.cache_dir=/tmp/x"])
    assert cfg.model.latent_dim == 64 and cfg.model.encoder_filters == (16,) * 5
    assert cfg.loss.kl == "exact" and cfg.train.learning_rate == 1e-3 and cfg.data.cache_dir == "/tmp/x"


def test_to_dict_round_trips(tmp_path, paper_config_path):
    cfg = load_config(paper_config_path, ["model.latent_dim=7"])
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    assert load_config(tmp_path / "c.yaml") == cfg


def test_missing_keys_take_the_papers_defaults(tmp_path):
    (tmp_path / "c.yaml").write_text("model:\n  latent_dim: 12\n")
    cfg = load_config(tmp_path / "c.yaml")
    assert cfg.model.latent_dim == 12 and cfg.data.image_size == 256


BAD = [
    # (yaml text, overrides, words the one-line message must contain)
    ("model:\n  latnt_dim: 3\n", [], ["model.latnt_dim", "unknown key", "latent_dim"]),
    ("modle:\n  latent_dim: 3\n", [], ["modle", "unknown key", "model"]),
    ("model:\n  latent_dim: 0\n", [], ["model.latent_dim", "[1, 8,192]", "0"]),
    ("model:\n  latent_dim: ten\n", [], ["model.latent_dim", "integer", "ten"]),
    ("model:\n  latent_dim: 2.5\n", [], ["model.latent_dim", "integer"]),
    ("model:\n  latent_dim: true\n", [], ["model.latent_dim", "integer"]),
    ("data:\n  image_size: 100\n", [], ["data.image_size", "multiple of 32"]),
    ("data:\n  val_fraction: 1.5\n", [], ["data.val_fraction", "(0, 1)"]),
    ("data:\n  background: [255, 255]\n", [], ["data.background", "RGB"]),
    ("data:\n  cache: disk\n", [], ["data.cache", "memory, file, none"]),
    ("loss:\n  kl: exakt\n", [], ["loss.kl", "exact"]),
    ("model:\n  reparam: sigma\n", [], ["model.reparam", "std, paper_variance"]),
    ("model:\n  encoder_filters: 32\n", [], ["model.encoder_filters", "list"]),
    ("model:\n  decoder_filters: [8, 8]\n", [], ["model.decoder_filters", "4 entries"]),
    ("train:\n  learning_rate: -1\n", [], ["train.learning_rate", "(0, 10]"]),
    ("train:\n  learning_rate: .inf\n", [], ["train.learning_rate", "finite"]),
    ("train:\n  precision: half\n", [], ["train.precision", "auto, float32, mixed_bfloat16, mixed_float16"]),
    ("model: 3\n", [], ["model", "mapping"]),
    ("- 1\n- 2\n", [], ["expected a mapping"]),
    ("model:\n  latent_dim: [1\n", [], ["YAML syntax error", "line"]),
    ("", ["model.latnt_dim=3"], ["--set model.latnt_dim", "unknown key", "model.latent_dim"]),
    ("", ["latent_dim=3"], ["--set", "section.key=value"]),
    ("", ["model.latent_dim=-4"], ["model.latent_dim", "[1, 8,192]"]),
]


@pytest.mark.parametrize("text,overrides,words", BAD)
def test_bad_config_raises_one_line_naming_file_and_key(tmp_path, text, overrides, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(path, overrides)
    msg = str(e.value)
    assert "\n" not in msg
    if not overrides or "=" in overrides[0] and "." in overrides[0].split("=")[0] and "unknown" not in words[1]:
        assert str(path) in msg
    for w in words:
        assert w in msg, (w, msg)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_a_config_that_is_no_regular_file_or_no_utf8_is_one_line_and_read_no_further(tmp_path):
    import os

    from cartoon_vae.config import ConfigError, load_config

    for special in ("/dev/zero", tmp_path):  # a device never ends; a folder is no file
        with pytest.raises(ConfigError, match="not a regular file"):
            load_config(special)
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # nobody writes to it: opening must not block, reading must not hang
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(fifo)
    (tmp_path / "latin1.yaml").write_bytes(b"data:\n  dir: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin1.yaml: not UTF-8 text \(byte 0xe9 at offset 16\)"):
        load_config(tmp_path / "latin1.yaml")
