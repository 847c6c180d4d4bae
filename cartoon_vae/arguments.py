"""The command line's argument types: each value is checked where it is parsed, and a bad one is one line
saying what was wanted (argparse prints it with the argument's name and exits 2).

Example:
    >>> parser.add_argument("--seed", type=seed, default=0)
"""

from __future__ import annotations

import argparse

from .config import MAX_SEED  # as the config's seed keys
from .data import MAX_VARIANTS as MAX_VARIANT

MAX_COUNT = 1_000_000    # the most images any count argument asks for
MAX_WORKERS = 256        # processes for make-data
MAX_STRENGTH = 100.0     # standard deviations an edit column moves
MAX_PATH = 4096          # characters in a path argument


def integer(low, high):
    """An argparse type: an integer in [low, high], or one line saying so."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer in [{low:,}, {high:,}], got {text}")
        return value
    return parse


count = integer(1, MAX_COUNT)
seed = integer(0, MAX_SEED)


def path(text):
    """A file or folder argument: not empty, no NUL, valid UTF-8 (a name with other bytes is refused, since
    TensorFlow and the files written name it in UTF-8)."""
    if not text or "\0" in text or len(text) > MAX_PATH:
        raise argparse.ArgumentTypeError(f"must be a path of 1 to {MAX_PATH:,} characters without NUL, "
                                         f"got {text[:80]!r}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(f"must be valid UTF-8, got {text.encode('utf-8', 'surrogateescape')!r}; "
                                         f"rename it") from None
    return text


def strengths(text):
    """Comma-separated finite numbers in [-MAX_STRENGTH, MAX_STRENGTH] (an empty string: none)."""
    values = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            v = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be comma-separated numbers, got {part!r}") from None
        if not -MAX_STRENGTH <= v <= MAX_STRENGTH:  # also refuses nan and inf
            raise argparse.ArgumentTypeError(f"each must be a number in [-{MAX_STRENGTH:g}, {MAX_STRENGTH:g}], "
                                             f"got {part}")
        values.append(v)
    if len(values) > 100:
        raise argparse.ArgumentTypeError(f"must be at most 100 strengths, got {len(values)}")
    return values


def probability(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0.5, 1), got {text!r}") from None
    if not 0.5 < v < 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0.5, 1), got {text}")
    return v


def attribute(text):
    found = names(text)
    if len(found) != 1:
        raise argparse.ArgumentTypeError(f"must be one attribute name, got {text[:80]!r}")
    return found[0]


def names(text):
    names = [a.strip() for a in text.split(",") if a.strip()]
    if not names or any(len(n) > 200 for n in names):
        raise argparse.ArgumentTypeError(f"must be comma-separated attribute names, got {text[:80]!r}")
    return names


def host(text):
    """An address to listen on: a host name or IP address, no spaces."""
    if not text or len(text) > 255 or any(c.isspace() or c in "\0/" for c in text):
        raise argparse.ArgumentTypeError(f"must be a host name or IP address, got {text[:80]!r}")
    return text


def origin(text):
    """A web origin, ``http(s)://name[:port]``: a page whose scripts the explorer answers too."""
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") or parts.query \
            or len(text) > 255 or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"must be an origin such as http://192.168.1.5:8008, got {text[:80]!r}")
    return f"{parts.scheme}://{parts.netloc}"
