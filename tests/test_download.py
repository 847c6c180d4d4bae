"""download-cartoonset against a tarball served from 127.0.0.1 (with HTTP Range), and safe extraction."""

import http.server
import io
import tarfile
import threading

import pytest

from cartoon_vae.download import DownloadError, download_cartoonset, fetch


def _tarball(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def server():
    """Serves ``state["body"]`` at any path, honouring Range; records the Range headers it got."""
    state = {"body": b"", "ranges": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body, rng = state["body"], self.headers.get("Range")
            state["ranges"].append(rng)
            start = int(rng.split("=")[1].split("-")[0]) if rng else 0
            self.send_response(206 if rng else 200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            self.wfile.write(body[start:])

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{httpd.server_address[1]}/cartoonset10k.tgz"
    httpd.shutdown()


def _png(shade):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (8, 8), (shade, 0, 0, 255)).save(buf, format="PNG")
    return buf.getvalue()


GOOD = {f"cartoonset10k/cs{i}.png": _png(i) for i in range(3)} | {"cartoonset10k/cs0.csv": b'"hair", 1, 3\n'}


def test_download_extracts_and_verifies_count(tmp_path, server):
    state, url = server
    state["body"] = _tarball(GOOD)
    target = download_cartoonset("10k", tmp_path, url=url, expected_images=3, progress=False)
    assert target == tmp_path / "cartoonset10k" and len(list(target.glob("*.png"))) == 3
    assert (tmp_path / "cartoonset10k.tgz").read_bytes() == state["body"]
    assert not list(tmp_path.glob(".*"))  # no temporary leftovers
    assert download_cartoonset("10k", tmp_path, url=url, expected_images=3, progress=False) == target


def test_interrupted_download_resumes_with_range(tmp_path, server):
    state, url = server
    state["body"] = _tarball(GOOD)
    half = len(state["body"]) // 2
    (tmp_path / "cartoonset10k.tgz.part").write_bytes(state["body"][:half])
    fetch(url, tmp_path / "cartoonset10k.tgz", progress=False)
    assert state["ranges"] == [f"bytes={half}-"]
    assert (tmp_path / "cartoonset10k.tgz").read_bytes() == state["body"]


def test_wrong_image_count_leaves_no_folder(tmp_path, server):
    state, url = server
    state["body"] = _tarball(GOOD)
    with pytest.raises(DownloadError, match="holds 3 PNG images, expected 10000"):
        download_cartoonset("10k", tmp_path, url=url, progress=False)
    assert not (tmp_path / "cartoonset10k").exists() and not list(tmp_path.glob(".cartoonset*"))


def test_a_set_of_images_that_do_not_decode_is_refused(tmp_path, server):
    state, url = server
    state["body"] = _tarball({f"cartoonset10k/cs{i}.png": b"" for i in range(3)})  # the right count, empty files
    with pytest.raises(DownloadError, match="3 of 3 images checked do not decode"):
        download_cartoonset("10k", tmp_path, url=url, expected_images=3, progress=False)
    assert not (tmp_path / "cartoonset10k").exists() and not list(tmp_path.glob(".cartoonset*"))


def test_member_outside_the_target_is_refused(tmp_path, server):
    state, url = server
    state["body"] = _tarball({"cartoonset10k/cs0.png": b"x", "../evil.png": b"x"})
    with pytest.raises(DownloadError, match="cannot extract"):
        download_cartoonset("10k", tmp_path / "out", url=url, expected_images=1, progress=False)
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "out" / "cartoonset10k").exists()


def test_unreachable_server_is_one_clear_error(tmp_path):
    with pytest.raises(DownloadError, match="cannot connect"):
        fetch("http://127.0.0.1:9/x.tgz", tmp_path / "x.tgz", progress=False)
    assert not (tmp_path / "x.tgz").exists()


# ---------------------------------------------------------------- hostile servers and archives

@pytest.fixture
def hostile():
    """A server whose handler is ``state["handler"](request_handler)``."""
    state = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            state["handler"](self)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _trickle(handler, every=0.25, total=10_000):
    import time

    handler.send_response(200)
    handler.send_header("Content-Length", str(total))
    handler.end_headers()
    try:
        for _ in range(total):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(every)
    except OSError:  # the client gave up
        pass


def test_a_trickling_server_ends_at_the_minimum_rate_keeping_the_part_file(tmp_path, hostile):
    import time

    state, base = hostile
    state["handler"] = _trickle
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match=r"slower than 1000 bytes/s over 1 s; run the command again to resume"):
        fetch(f"{base}/x.tgz", tmp_path / "x.tgz", progress=False, min_rate=1000, rate_window_s=1)
    assert time.monotonic() - t0 < 5 and (tmp_path / "x.tgz.part").stat().st_size < 20


def test_a_download_past_its_deadline_ends(tmp_path, hostile):
    import time

    state, base = hostile
    state["handler"] = lambda h: _trickle(h, every=0.05)
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match=r"not finished within 1 s"):
        fetch(f"{base}/x.tgz", tmp_path / "x.tgz", progress=False, deadline_s=1, min_rate=1)
    assert time.monotonic() - t0 < 4


def test_a_silent_server_ends_at_the_read_timeout(tmp_path, hostile):
    import time

    state, base = hostile

    def silent(h):
        h.send_response(200)
        h.send_header("Content-Length", "100")
        h.end_headers()
        time.sleep(5)

    state["handler"] = silent
    with pytest.raises(DownloadError, match="download stalled"):
        fetch(f"{base}/x.tgz", tmp_path / "x.tgz", progress=False, read_timeout_s=0.5)


def test_a_redirect_loop_is_one_line(tmp_path, hostile):
    state, base = hostile

    def loop(h):
        h.send_response(302)
        h.send_header("Location", h.path)
        h.send_header("Content-Length", "0")
        h.end_headers()

    state["handler"] = loop
    with pytest.raises(DownloadError) as e:
        fetch(f"{base}/x.tgz", tmp_path / "x.tgz", progress=False)
    assert "HTTP 302" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x.tgz", "/etc/passwd", "javascript:x"])
def test_only_http_and_https_urls_are_fetched(tmp_path, url, capsys):
    from cartoon_vae.cli import main

    assert main(["download-cartoonset", "--out", str(tmp_path / "o"), "--url", url]) == 2
    err = capsys.readouterr().err
    assert "only http and https URLs" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_a_gzip_bomb_stops_at_the_bound_before_the_disk_fills(tmp_path, server, monkeypatch):
    import cartoon_vae.download as d

    state, url = server
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for i in range(3):  # three small images first, then 64 MiB of zeros in one member
            info = tarfile.TarInfo(f"cartoonset10k/cs{i}.png")
            data = _png(i)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("cartoonset10k/zeros.png")
        info.size = 64 << 20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    state["body"] = buf.getvalue()
    assert len(state["body"]) < 200_000
    written = []
    real = tarfile.TarFile.makefile

    def spy(self, tarinfo, targetpath):
        written.append(tarinfo.size)
        return real(self, tarinfo, targetpath)

    monkeypatch.setattr(tarfile.TarFile, "makefile", spy)
    with pytest.raises(DownloadError, match="holds more than 3,145,728 bytes"):
        download_cartoonset("10k", tmp_path, url=url, expected_images=3, progress=False)
    assert sum(written) < d.MAX_BYTES_PER_IMAGE * 3  # the 64 MiB member was never written
    assert not (tmp_path / "cartoonset10k").exists() and not list(tmp_path.glob(".cartoonset*"))
