"""Typed, frozen configuration read from YAML.

A config file has one mapping per section (``data``, ``model``, ``loss``,
``train``, ``sample``). Every key is optional: a missing key takes the default
below, and the defaults are the paper's settings. Unknown keys, wrong types and
out-of-range values raise :class:`ConfigError`, whose one-line message names the
file, the key and what is allowed.

Example:
    >>> cfg = load_config("configs/paper.yaml", ["model.latent_dim=64"])
    >>> cfg.model.latent_dim
    64
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import yaml


class ConfigError(ValueError):
    """A bad config file, key or value. The message is one line naming the culprit."""


def _check(predicate, allowed):
    """Field metadata: a range check and the words that say what is allowed."""
    return {"check": predicate, "allowed": allowed}


def _positive_int(most=None):
    if most is None:
        return _check(lambda v: v >= 1, "an integer >= 1")
    return _check(lambda v: 1 <= v <= most, f"an integer in [1, {most:,}]")


def _finite(predicate, allowed):
    """A float check that also refuses inf and nan (``inf > 0`` is true)."""
    return _check(lambda v: math.isfinite(v) and predicate(v), allowed + ", finite")


MAX_SEED = 2 ** 31 - 1          # what every seed consumer (NumPy's RandomState, Keras, tf.data) accepts
_SEED = _check(lambda v: 0 <= v <= MAX_SEED, f"an integer in [0, {MAX_SEED:,}]")
MAX_CONFIG_BYTES = 1 << 20      # a config file is a few kilobytes; refuse anything over 1 MiB unread
MAX_BATCH_BYTES = 4 << 30       # one batch of float32 input images: at most 4 GiB
MIN_SAMPLES = 10                # evaluate's samples per sampler: k-nearest neighbours and a mixture fit need a few
MAX_PARAMETERS = 500_000_000    # the model's weights: at most 2 GB of float32


class _NoAliasLoader(yaml.SafeLoader):
    """safe_load without anchors and aliases: a few lines of nested aliases expand to gigabytes."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in a config",
                                              event.start_mark)
        return super().compose_node(parent, index)


def read_regular_file(path, limit) -> bytes | None:
    """The first ``limit`` + 1 bytes of a small file from outside (a caller that gets more than ``limit`` refuses
    it unread), or None when ``path`` is no regular file: a device, FIFO or folder, whose size says nothing (a
    FIFO's open does not block). OSError as opening and reading raise it."""
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(limit + 1)
    finally:
        os.close(fd)


def read_config_text(path) -> str:
    """A config file's text: a regular file of at most ``MAX_CONFIG_BYTES`` (:func:`read_regular_file`), in
    UTF-8. Anything else is a one-line ConfigError."""
    path = Path(path)
    try:
        data = read_regular_file(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file ({e.strerror})") from None
    if data is None:
        raise ConfigError(f"{path}: not a regular file; a config is a YAML file")
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: config file is over {MAX_CONFIG_BYTES:,} bytes; at most {MAX_CONFIG_BYTES:,} are read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start})") from None


def safe_load_config_text(text):
    """YAML text -> Python objects, safely (no tags, no aliases)."""
    return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass


@dataclass(frozen=True)
class DataConfig:
    dir: str = "data/synthetic"
    image_size: int = field(default=256, metadata=_positive_int(2048))
    load_size: int = field(default=500, metadata=_positive_int(8192))
    crop: float = field(default=1.0, metadata=_check(lambda v: 0 < v <= 1, "a number in (0, 1]"))
    background: tuple[int, ...] = field(
        default=(255, 255, 255),
        metadata=_check(lambda v: len(v) == 3 and all(0 <= c <= 255 for c in v),
                        "three integers in [0, 255] (an RGB colour)"))
    batch_size: int = field(default=128, metadata=_positive_int(8192))
    val_fraction: float = field(default=0.1, metadata=_check(lambda v: 0 < v < 1, "a number in (0, 1)"))
    seed: int = field(default=0, metadata=_SEED)
    cache: Literal["memory", "file", "none"] = "memory"
    cache_dir: Optional[str] = None
    shuffle_buffer: int = field(default=10000, metadata=_positive_int(10_000_000))


@dataclass(frozen=True)
class ModelConfig:
    latent_dim: int = field(default=200, metadata=_positive_int(8192))
    encoder_filters: tuple[int, ...] = field(
        default=(32, 64, 64, 64, 64),
        metadata=_check(lambda v: 1 <= len(v) <= 12 and 1 <= min(v) and max(v) <= 8192,
                        "a list of 1 to 12 integers in [1, 8192]"))
    decoder_filters: tuple[int, ...] = field(
        default=(64, 64, 64, 32),
        metadata=_check(lambda v: len(v) <= 11 and 1 <= min(v, default=1) and max(v, default=1) <= 8192,
                        "a list of at most 11 integers in [1, 8192]"))
    kernel_size: int = field(default=3, metadata=_positive_int(15))
    leaky_relu_slope: float = field(default=0.3, metadata=_check(lambda v: 0 <= v < 1, "a number in [0, 1)"))
    reparam: Literal["std", "paper_variance"] = "std"
    bounded_variance: Optional[bool] = None  # None: the sigmoid-bounded head iff loss.kl is poly_bound
    seed: int = field(default=0, metadata=_SEED)
    # attributes (CSV names) given one-hot to the encoder and the decoder: a conditional VAE (empty: the paper's)
    conditional: tuple[str, ...] = field(
        default=(), metadata=_check(lambda v: len(v) == len(set(v)) <= 64 and all(0 < len(n) <= 100 for n in v),
                                    "a list of at most 64 distinct attribute names"))
    # each conditioned attribute's number of variants, recorded by training (empty: read from the data); data with
    # other counts is refused, since the one-hot layout of the labels would not be the model's
    conditional_variants: tuple[int, ...] = field(
        default=(), metadata=_check(lambda v: len(v) <= 64 and all(1 <= n <= 100_000 for n in v),
                                    "a list of at most 64 integers in [1, 100,000]"))
    adversary_units: int = field(default=256, metadata=_positive_int(65_536))  # the latent adversary's hidden units
    labels_every_block: bool = False  # a conditional decoder also gets the labels at every up-sampling block
    upsample: Literal["transpose", "resize"] = "transpose"  # decoder up-sampling: Conv2DTranspose | resize + Conv2D
    residual_blocks: int = field(default=0, metadata=_check(lambda v: 0 <= v <= 8, "an integer in [0, 8]"))


@dataclass(frozen=True)
class LossConfig:
    kl: Literal["exact", "poly_bound"] = "poly_bound"
    reconstruction_weight: float = field(default=1000.0, metadata=_finite(lambda v: v > 0, "a number > 0"))
    kl_weight: float = field(default=1.0, metadata=_finite(lambda v: v >= 0, "a number >= 0"))
    reconstruction: Literal["weighted_mse", "calibrated_gaussian", "palette"] = "weighted_mse"
    palette_size: int = field(default=32, metadata=_check(lambda v: 2 <= v <= 1024, "an integer in [2, 1,024]"))
    free_bits: float = field(default=0.0, metadata=_finite(lambda v: v >= 0, "a number >= 0 (nats per dimension)"))
    kl_warmup_epochs: int = field(default=0, metadata=_check(lambda v: 0 <= v <= 1_000_000, "an integer in [0, 1,000,000]"))
    # conditional models: weight of the latent adversary's confusion term (0: no adversary)
    adversary_weight: float = field(default=0.0, metadata=_finite(lambda v: v >= 0, "a number >= 0"))
    # conditional models: weight of the label critic's cross-entropy on label-swapped decodes (0: no critic)
    swap_weight: float = field(default=0.0, metadata=_finite(lambda v: v >= 0, "a number >= 0"))


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = field(default=30, metadata=_positive_int(1_000_000))
    learning_rate: float = field(default=5e-4, metadata=_finite(lambda v: 0 < v <= 10, "a number in (0, 10]"))
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: from learning_rate to 0 over all epochs' steps
    # conditional models: the Adam learning rate of the latent adversary and of the label critic
    reader_learning_rate: float = field(default=1e-3, metadata=_finite(lambda v: 0 < v <= 10, "a number in (0, 10]"))
    seed: int = field(default=0, metadata=_SEED)
    steps_per_epoch: Optional[int] = field(default=None, metadata=_positive_int(100_000_000))
    distribute: Literal["none", "mirrored", "multi_worker"] = "none"
    # auto: mixed_bfloat16 where the hardware computes bfloat16 natively, else float32 (cartoon_vae.hardware)
    precision: Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"] = "float32"


@dataclass(frozen=True)
class SampleConfig:
    n: int = field(default=10, metadata=_positive_int(10_000))
    stats_images: int = field(default=5000, metadata=_positive_int(10_000_000))
    seed: int = field(default=0, metadata=_SEED)
    reconstructions: int = field(default=8, metadata=_positive_int(1000))
    interpolation_steps: int = field(default=10, metadata=_check(lambda v: 2 <= v <= 1000, "an integer in [2, 1000]"))
    projector_images: int = field(default=2000, metadata=_positive_int(100_000))  # training faces in the projector


@dataclass(frozen=True)
class Config:
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    train: TrainConfig = TrainConfig()
    sample: SampleConfig = SampleConfig()

    def to_dict(self) -> dict:
        """A plain dict (lists, not tuples) that ``yaml.safe_dump`` writes and ``load_config`` reads."""
        def plain(value):
            return list(value) if isinstance(value, tuple) else value
        return {s.name: {k: plain(v) for k, v in dataclasses.asdict(getattr(self, s.name)).items()}
                for s in dataclasses.fields(self)}

    def replace(self, **sections) -> "Config":
        """A copy with some keys changed: ``cfg.replace(data={"dir": "x"})``."""
        return dataclasses.replace(self, **{
            name: dataclasses.replace(getattr(self, name), **values) for name, values in sections.items()})


def load_config(path, overrides=()) -> Config:
    """Read a YAML config, apply ``key.path=value`` overrides, and validate it.

    Args:
        path: the YAML file.
        overrides: strings such as ``"train.epochs=5"``; the value is parsed as YAML
            (so ``model.encoder_filters=[16,32]`` gives a list).

    Raises:
        ConfigError: one line naming the file, the key and what is allowed.
    """
    path = Path(path)
    text = read_config_text(path)
    try:
        raw = safe_load_config_text(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}: YAML syntax error{where}: {problem}") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections ({_names(Config)}), got {type(raw).__name__}")
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for item in overrides:
        _apply_override(raw, item, path)
    return build(Config, raw, path, prefix="")


def _apply_override(raw: dict, item: str, path: Path) -> None:
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or "." not in key:
        raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. train.epochs=5")
    section, name = key.split(".", 1)
    sections = typing.get_type_hints(Config)
    if section not in sections or name not in {f.name for f in dataclasses.fields(sections[section])}:
        valid = [f"{s}.{f.name}" for s, cls in sections.items() for f in dataclasses.fields(cls)]
        raise ConfigError(f"--set {key}: unknown key{_suggest(key, valid)}")
    if len(text) > 10_000:
        raise ConfigError(f"--set {key}: value of {len(text):,} characters; at most 10,000")
    try:
        value = safe_load_config_text(text)
    except yaml.YAMLError:
        value = text
    target = raw.setdefault(section, {})
    if not isinstance(target, dict):
        raise ConfigError(f"{path}: {section}: expected a mapping of keys, got {type(target).__name__}")
    target[name] = value


def build(cls, raw, path, prefix=""):
    """A dataclass ``cls`` (the training config's sections, the evaluation settings, the ablation spec)
    from a mapping, every key, type and range checked; a ConfigError names ``path`` and the key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: {prefix.rstrip('.')}: expected a mapping of keys ({_names(cls)}), "
                          f"got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{path}: {prefix}{key}: unknown key{_suggest(str(key), list(known))}")
    values = {}
    for name, f in known.items():
        key = prefix + name
        if name not in raw:
            continue
        if dataclasses.is_dataclass(hints[name]):
            values[name] = build(hints[name], raw[name], path, key + ".")
            continue
        value = _coerce(raw[name], hints[name], path, key)
        check = f.metadata.get("check")
        if value is not None and check is not None and not check(value):
            raise ConfigError(f"{path}: {key}: must be {f.metadata['allowed']}, got {raw[name]!r}")
        values[name] = value
    missing = [n for n, f in known.items() if n not in values and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{path}: {prefix}{missing[0]}: required key missing")
    obj = cls(**values)
    if cls is Config:
        _check_together(obj, path)
    return obj


def _coerce(value, hint, path, key):
    """Check ``value`` against a type hint; ints are accepted where floats are expected."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):  # Optional[X], or one of several types
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for option in inner[:-1]:
            try:
                return _coerce(value, option, path, key)
            except ConfigError:
                continue
        return _coerce(value, inner[-1], path, key)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, path, key + ".")
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ConfigError(f"{path}: {key}: must be a mapping of names to {_type_words(args[1])}, got {value!r}")
        return {k: _coerce(v, args[1], path, f"{key}.{k}") for k, v in value.items()}
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: {key}: must be one of {', '.join(map(str, args))}, got {value!r}"
                              f"{_suggest(str(value), [str(a) for a in args], list_all=False)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: {key}: must be a list of {getattr(args[0], '__name__', 'value')}s, "
                              f"got {value!r}")
        return tuple(_coerce(v, args[0], path, f"{key}[{i}]" if dataclasses.is_dataclass(args[0]) else key)
                     for i, v in enumerate(value))
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint in (str, bool) and isinstance(value, hint):
        return value
    raise ConfigError(f"{path}: {key}: must be {_type_words(hint)}, got {value!r} ({type(value).__name__})")


def _check_together(cfg: Config, path) -> None:
    """Checks that involve more than one key."""
    blocks = len(cfg.model.encoder_filters)
    if cfg.data.image_size % 2 ** blocks:
        raise ConfigError(f"{path}: data.image_size: must be a multiple of {2 ** blocks} "
                          f"(2^{blocks} for {blocks} stride-2 encoder blocks), got {cfg.data.image_size}")
    batch_bytes = cfg.data.batch_size * cfg.data.image_size ** 2 * 3 * 4
    if batch_bytes > MAX_BATCH_BYTES:
        raise ConfigError(f"{path}: data.batch_size x data.image_size^2: one batch would take "
                          f"{batch_bytes / 2 ** 30:.1f} GiB of input alone (at most {MAX_BATCH_BYTES >> 30} GiB); "
                          f"lower either")
    params = _parameter_estimate(cfg)
    if params > MAX_PARAMETERS:
        raise ConfigError(f"{path}: model: about {params:,} weights (at most {MAX_PARAMETERS:,}); lower "
                          f"model.latent_dim, the filters or data.image_size")
    if cfg.model.conditional_variants and len(cfg.model.conditional_variants) != len(cfg.model.conditional):
        raise ConfigError(f"{path}: model.conditional_variants: one count per attribute of model.conditional "
                          f"({len(cfg.model.conditional)}), got {len(cfg.model.conditional_variants)}")
    if cfg.loss.reconstruction == "palette" and cfg.loss.swap_weight > 0:
        raise ConfigError(f"{path}: loss.swap_weight: the label critic needs a differentiable image; with "
                          f"loss.reconstruction: palette set it to 0")
    if len(cfg.model.decoder_filters) != blocks - 1:
        raise ConfigError(f"{path}: model.decoder_filters: must have {blocks - 1} entries (one fewer than "
                          f"model.encoder_filters; the last up-sampling block outputs RGB), "
                          f"got {len(cfg.model.decoder_filters)}")


def _parameter_estimate(cfg: Config) -> int:
    """Weights of the model the config builds, from its shapes (convolutions, heads, the Dense layer)."""
    m, k2 = cfg.model, cfg.model.kernel_size ** 2
    enc = [3, *m.encoder_filters]
    side = cfg.data.image_size // 2 ** len(m.encoder_filters)
    flat = side * side * m.encoder_filters[-1]
    convs = sum(k2 * a * b for a, b in zip(enc, enc[1:]))
    dec = [m.encoder_filters[-1], *m.decoder_filters, 3]
    deconvs = sum(k2 * a * b for a, b in zip(dec, dec[1:]))
    return convs + deconvs + 2 * flat * m.latent_dim + m.latent_dim * flat


def _type_words(hint) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(hint, str(hint))


def _names(cls) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls))


def _suggest(word: str, choices, list_all: bool = True) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]}?)"
    return f" (valid: {', '.join(choices)})" if list_all else ""
