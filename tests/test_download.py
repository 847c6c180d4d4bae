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
