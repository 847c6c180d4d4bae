"""Fetch the real Cartoon Set: download, verify, extract; never leave a half-done folder looking complete.

The tarball is written to ``NAME.tgz.part`` and renamed to ``NAME.tgz`` only when
complete; an interrupted download resumes with an HTTP Range request (a server that
ignores Range restarts it cleanly). The archive is extracted with tarfile's "data"
filter (no member can land outside the target, no links out, no device files) into
a hidden temporary folder, the image count is checked, and only then is the folder
renamed to ``NAME``.

Example:
    >>> download_cartoonset("10k", "data/")   # -> data/cartoonset10k/
"""

from __future__ import annotations

import os
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

BASE_URL = "https://storage.googleapis.com/cartoonset_public_files"
VARIANTS = {"10k": ("cartoonset10k", 10_000), "100k": ("cartoonset100k", 100_000)}
CHUNK = 1 << 20
READ_TIMEOUT_S = 60          # one read that gets nothing for this long ends the download
DEADLINE_S = 6 * 3600        # the whole download, however it trickles (the 100k set is ~5 GB)
MIN_RATE = 10_000            # bytes/s averaged over each RATE_WINDOW_S, after the first window
RATE_WINDOW_S = 60
MAX_BYTES_PER_IMAGE = 1 << 20  # extracted bytes (image + CSV) per expected image: Cartoon Set's are ~30 KB


class DownloadError(RuntimeError):
    """A failed download or a tarball that does not hold the expected set."""


VERIFY_IMAGES = 32  # images decoded to check an extracted set, spread over it


def _first_line(value) -> str:
    return (str(value).strip().splitlines() or [""])[0][:200]


def _chunks(response, url, start, deadline_s, min_rate, rate_window_s):
    """The response's bytes as they arrive; a DownloadError past the deadline, under the minimum rate
    over a window, or when a read times out or the connection breaks."""
    import time

    window_start, window_bytes = start, 0
    while True:
        try:
            chunk = response.read1(CHUNK)
        except (OSError, ValueError) as e:  # a read timeout, a reset connection
            raise DownloadError(f"{url}: download stalled ({_first_line(e) or type(e).__name__}); "
                                f"run the command again to resume") from None
        if not chunk:
            return
        yield chunk
        now, window_bytes = time.monotonic(), window_bytes + len(chunk)
        if now - start > deadline_s:
            raise DownloadError(f"{url}: not finished within {deadline_s:g} s; run the command again to resume")
        if now - window_start >= rate_window_s:
            if window_bytes / (now - window_start) < min_rate:
                raise DownloadError(f"{url}: slower than {min_rate:g} bytes/s over {rate_window_s:g} s; "
                                    f"run the command again to resume")
            window_start, window_bytes = now, 0


def fetch(url: str, dest: Path, progress: bool = True, deadline_s: float = DEADLINE_S,
          min_rate: float = MIN_RATE, rate_window_s: float = RATE_WINDOW_S,
          read_timeout_s: float = READ_TIMEOUT_S) -> Path:
    """Download ``url`` (http or https) to ``dest`` through ``dest.part``, resuming a previous partial file.

    Ends with a DownloadError, keeping the part file to resume from, when the whole transfer takes
    over ``deadline_s``, when a window of ``rate_window_s`` averages under ``min_rate`` bytes/s, or
    when one read waits ``read_timeout_s``: a server that trickles never hangs the command."""
    import time

    from tqdm import tqdm

    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise DownloadError(f"{url[:200]}: only http and https URLs are fetched, got {scheme or 'no scheme'!r}")
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    start = time.monotonic()
    try:
        response = urllib.request.urlopen(request, timeout=read_timeout_s)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the part file is already whole
            os.replace(part, dest)
            return dest
        raise DownloadError(f"{url}: HTTP {e.code} {_first_line(e.reason)}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise DownloadError(f"{url}: cannot connect ({_first_line(getattr(e, 'reason', e))})") from None
    with response:
        resumed = response.status == 206
        if not resumed:
            have = 0  # the server sent the whole file: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None and length.isdigit() else None
        with open(part, "ab" if resumed else "wb") as fh, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
            for chunk in _chunks(response, url, start, deadline_s, min_rate, rate_window_s):
                fh.write(chunk)
                bar.update(len(chunk))
    if total is not None and part.stat().st_size != total:
        raise DownloadError(f"{url}: download ended early ({part.stat().st_size} of {total} bytes); "
                            f"run the command again to resume")
    os.replace(part, dest)
    return dest


def extract(archive: Path, target: Path, expected_images: int) -> Path:
    """Extract ``archive`` safely and move its image folder to ``target`` once the count is right."""
    tmp = target.with_name(f".{target.name}.extracting")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    limit_bytes, limit_members = expected_images * MAX_BYTES_PER_IMAGE, 3 * expected_images + 100
    seen = {"bytes": 0, "members": 0}

    def bounded(member, path):
        """tarfile's "data" filter, and a bound on what is written, checked from each member's header
        before the member is extracted (a gzip bomb stops at the bound, not when the disk is full)."""
        member = tarfile.data_filter(member, path)
        seen["bytes"] += member.size
        seen["members"] += 1
        if seen["bytes"] > limit_bytes or seen["members"] > limit_members:
            raise DownloadError(f"{archive}: holds more than {limit_bytes:,} bytes or {limit_members:,} files, "
                                f"far more than {expected_images:,} images take; delete it and check --url")
        return member

    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter=bounded)
    except DownloadError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DownloadError(f"{archive}: cannot extract ({_first_line(e)}); delete it and run the command "
                            f"again") from None
    entries = [p for p in tmp.iterdir() if not p.name.startswith(".")]
    root = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
    found = sum(1 for _ in root.rglob("*.png"))
    if found != expected_images:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DownloadError(f"{archive}: holds {found} PNG images, expected {expected_images}; "
                            f"delete it and run the command again")
    from .images import find_unreadable

    pngs = sorted(root.rglob("*.png"))
    sample = pngs[:: max(1, len(pngs) // VERIFY_IMAGES)][:VERIFY_IMAGES]  # spread over the whole set
    bad = find_unreadable([str(p) for p in sample])
    if bad:
        shutil.rmtree(tmp, ignore_errors=True)
        first = next(iter(bad))
        raise DownloadError(f"{archive}: {len(bad)} of {len(sample)} images checked do not decode (e.g. "
                            f"{Path(first).name}: {bad[first]}); delete it and run the command again")
    os.replace(root, target)
    shutil.rmtree(tmp, ignore_errors=True)
    return target


def download_cartoonset(variant: str, out, url: str | None = None, expected_images: int | None = None,
                        keep_archive: bool = True, progress: bool = True) -> Path:
    """Download and extract Cartoon Set ``variant`` ("10k" or "100k") into ``out/cartoonsetNk``.

    Returns at once if that folder is already there. ``url`` and ``expected_images``
    override the official address and count (tests serve a small tarball locally).
    """
    if variant not in VARIANTS:
        raise DownloadError(f"--variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    name, count = VARIANTS[variant]
    expected_images = count if expected_images is None else expected_images
    out = Path(out)
    target = out / name
    if target.exists():
        return target
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    archive = out / f"{name}.tgz"
    if not archive.exists():
        try:
            fetch(url or f"{BASE_URL}/{name}.tgz", archive, progress=progress)
        except DownloadError:
            if created and not any(out.iterdir()):  # nothing fetched: leave no folder behind
                out.rmdir()
            raise
    extract(archive, target, expected_images)
    if not keep_archive:
        archive.unlink()
    return target
