"""The explorer: a real server on port 0 in a thread, over a tiny run trained here. Every endpoint, every
bad request (a 4xx with a one-line JSON error, and the server keeps serving), no path from a URL, four
clients at once, the same edit as cartoon-vae edit, and the page in a real headless Chromium."""

import base64
import hashlib
import io
import json
import shutil
import tempfile
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from cartoon_vae.cli import main
from cartoon_vae.counterfactual import true_counterfactual
from cartoon_vae.explore import Explorer
from cartoon_vae.server import MAX_BODY, make_server
from cartoon_vae.synthetic import make_dataset

from .conftest import ROOT

PAPER = str(ROOT / "configs" / "paper.yaml")
TINY = ["data.image_size=32", "data.load_size=64", "model.latent_dim=6", "model.encoder_filters=[8,8,8,8,8]",
        "model.decoder_filters=[8,8,8,8]", "data.batch_size=8", "data.val_fraction=0.25", "train.epochs=1",
        "sample.stats_images=60"]
SETS = [a for kv in TINY for a in ("--set", kv)]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("explore")
    make_dataset(root / "faces", n=36, seed=9, workers=1, progress=False)
    assert main(["train", "--config", PAPER, "--data", str(root / "faces"), "--run-dir", str(root / "run"), *SETS]) == 0
    assert main(["train-probe", "--config", PAPER, *SETS, "--data", str(root / "faces"), "--out", str(root / "probe"),
                 "--epochs", "1"]) == 0
    before = _snapshot(root / "run")
    explorer = Explorer(root / "run", root / "probe", faces=6, components=4, log=lambda *_: None)
    server = make_server(explorer, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}", "explorer": explorer, "root": root, "before": before}
    server.shutdown()
    server.server_close()


def _snapshot(folder):
    return {p.relative_to(folder): hashlib.sha1(p.read_bytes()).hexdigest() for p in Path(folder).rglob("*")
            if p.is_file() and p.name != ".lock"}


def _call(url, body=None, raw=None, headers=None):
    """(status, content type, body as JSON or bytes)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=120) as r:
            status, kind, payload = r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        status, kind, payload = e.code, e.headers["Content-Type"], e.read()
    return status, kind, json.loads(payload) if kind.startswith("application/json") else payload


def _png(payload):
    return Image.open(io.BytesIO(payload))


def test_every_endpoint(served):
    url = served["url"]
    status, _, info = _call(f"{url}/api/info")
    assert status == 200 and info["latent_dim"] == 6 and info["faces"] == 6 and info["probe"]
    assert {a["name"] for a in info["attributes"]} >= {"glasses", "hair_color"} and info["components"] == 4
    for path in ("/", "/static/app.js", "/static/style.css"):
        assert _call(url + path)[0] == 200
    assert _png(_call(f"{url}/api/faces/0.png")[2]).size == (32, 32)
    status, _, face = _call(f"{url}/api/face/1")
    assert len(face["z"]) == 6 and face["original"].startswith("data:image/png;base64,")
    assert _png(_call(f"{url}/api/swatches/glasses/5.png")[2]).size == (32, 32)
    status, kind, png = _call(f"{url}/api/decode", {"z": face["z"]})
    assert status == 200 and kind == "image/png" and _png(png).size == (32, 32)
    status, _, view = _call(f"{url}/api/view", {"base": face["z"], "edits": [{"attribute": "glasses", "to": 5,
                                                                             "amount": 1.0}], "hold": True,
                                                "pcs": [1.0, -0.5]})
    assert status == 200, view
    assert len(view["z"]) == 6 and view["z"] != face["z"] and set(view["probe"]) >= {"glasses"}
    assert 0 <= view["probe"]["glasses"]["p"] <= 1
    for sampler in info["samplers"]:
        status, _, s = _call(f"{url}/api/sample", {"sampler": sampler, "seed": 3})
        assert status == 200 and len(s["z"]) == 6
    buf = io.BytesIO()
    Image.open(sorted((served["root"] / "faces").glob("*.png"))[0]).save(buf, format="PNG")
    status, _, enc = _call(f"{url}/api/encode", raw=buf.getvalue())
    assert status == 200 and len(enc["z"]) == 6 and all(np.isfinite(enc["z"]))
    status, _, frames = _call(f"{url}/api/interpolate", {"z0": face["z"], "z1": s["z"], "steps": 5})
    assert status == 200 and len(frames["frames"]) == 5


def test_an_edit_through_the_api_is_the_edit_of_cartoon_vae_edit(served):
    from cartoon_vae.directions import edit_to_class
    from cartoon_vae.edit import run_direction

    url, ex = served["url"], served["explorer"]
    z = ex.face_means[2]
    _, _, got = _call(f"{url}/api/edit", {"z": z.tolist(), "attribute": "hair_color", "to": 3, "amount": 1.0})
    direction = run_direction(ex.attrs.names, ex.train_labels, ex.train_means, "hair_color", 3)
    np.testing.assert_allclose(got["z"], edit_to_class(z[None], direction)[0], rtol=1e-6, atol=1e-6)


def _bomb(side=14000):
    buf = io.BytesIO()
    Image.new("1", (side, side)).save(buf, format="PNG")
    return buf.getvalue()


BAD = [  # (method, path, JSON body or raw bytes, status, words of the error)
    ("POST", "/api/decode", {"z": [0.0] * 5}, 400, "z: must be a list of 6"),
    ("POST", "/api/decode", {"z": [float("nan")] * 6}, 400, "finite numbers"),
    ("POST", "/api/decode", {"z": [float("inf")] + [0.0] * 5}, 400, "finite numbers"),
    ("POST", "/api/decode", {"z": [1e30] + [0.0] * 5}, 400, "finite numbers"),
    ("POST", "/api/decode", {"z": ["a"] * 6}, 400, "finite numbers"),
    ("POST", "/api/decode", b"{not json", 400, "not JSON"),
    ("POST", "/api/decode", b"[1, 2]", 400, "JSON object"),
    ("POST", "/api/edit", {"z": [0.0] * 6, "attribute": "wings", "to": 1}, 400, "attribute: must be one of"),
    ("POST", "/api/edit", {"z": [0.0] * 6, "attribute": "glasses", "to": 99}, 400, "to: glasses has values"),
    ("POST", "/api/edit", {"z": [0.0] * 6, "attribute": "glasses", "to": 5, "amount": 1e9}, 400, "amount"),
    ("POST", "/api/view", {"base": [0.0] * 6, "edits": "all"}, 400, "edits"),
    ("POST", "/api/view", {"base": [0.0] * 6, "pcs": [0.0] * 99}, 400, "pcs"),
    ("POST", "/api/sample", {"sampler": "flow"}, 400, "sampler: must be one of"),
    ("POST", "/api/sample", {"sampler": "gmm", "seed": -1}, 400, "seed"),
    ("POST", "/api/interpolate", {"z0": [0.0] * 6, "z1": [0.0] * 6, "steps": 10 ** 6}, 400, "steps"),
    ("POST", "/api/encode", b"not an image", 400, "upload: not a readable image"),
    ("POST", "/api/encode", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, 400, "upload: not a readable image"),
    ("POST", "/api/encode", "bomb", 400, "decompression-bomb"),
    ("POST", "/api/encode", "big", 400, "over the limit of 4,194,304"),  # 9 M pixels: refused from its header
    ("POST", "/api/decode", b"[" * 200_000 + b"]" * 200_000, 400, "nested deeper than"),
    ("POST", "/api/sample", {"sampler": ["gmm"]}, 400, "sampler: must be one of"),
    ("POST", "/api/edit", {"z": [0.0] * 6, "attribute": {"a": 1}, "to": 1}, 400, "attribute: must be one of"),
    ("GET", "/api/faces/99.png", None, 404, "face: must be in [0, 5]"),
    ("GET", "/api/swatches/glasses/99.png", None, 400, "to: glasses has values"),
    ("GET", "/../cartoon_vae/explore.py", None, 404, "not found"),
    ("GET", "/static/../explore.py", None, 404, "not found"),
    ("GET", "/static/%2e%2e/explore.py", None, 404, "not found"),
    ("GET", "//etc/passwd", None, 404, "not found"),
    ("GET", "/static/app.js/../../runs.py", None, 404, "not found"),
    ("POST", "/api/nothing", {}, 404, "not found"),
]


@pytest.mark.parametrize("method,path,body,status,words", BAD, ids=[f"{m} {p} {i}" for i, (m, p, *_) in enumerate(BAD)])
def test_a_bad_request_is_a_4xx_with_one_line_and_the_server_keeps_serving(served, method, path, body, status, words):
    url = served["url"]
    raw = _bomb() if body == "bomb" else _bomb(3000) if body == "big" else body if isinstance(body, bytes) else None
    got = _call(url + path, body if raw is None and method == "POST" else None, raw=raw)
    assert got[0] == status and got[1] == "application/json", got[:2]
    assert words in got[2]["error"] and "\n" not in got[2]["error"], got[2]
    assert _call(f"{url}/api/info")[0] == 200


def test_an_oversized_body_is_refused_before_it_is_read(served):
    import http.client

    host, port = served["url"].split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", "/api/decode")
    conn.putheader("Content-Length", str(MAX_BODY + 1))
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 413 and "at most 4,194,304 bytes" in json.loads(r.read())["error"]
    conn.close()
    assert _call(f"{served['url']}/api/info")[0] == 200


def test_four_clients_at_once_and_the_run_folder_only_gains_caches(served):
    url, ex = served["url"], served["explorer"]
    codes = [ex.face_means[i % 6].tolist() for i in range(40)]
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda z: _call(f"{url}/api/decode", {"z": z})[0], codes))
    assert statuses == [200] * 40
    after = _snapshot(served["root"] / "run")
    assert {k: v for k, v in after.items() if k in served["before"]} == served["before"]
    assert set(after) - set(served["before"]) <= {Path("latent_stats.npz"), Path("latent_gmm.npz"),
                                                 Path("latent_two_stage.npz")}


def test_the_projector_files_load_in_tensorboards_config_parser(served, tmp_path):
    from google.protobuf import text_format
    from tensorboard.plugins import projector

    from cartoon_vae.figures import write_projector

    run = tmp_path / "run"
    shutil.copytree(served["root"] / "run", run, ignore=shutil.ignore_patterns(".lock"))
    folder = write_projector(run, limit=20)
    assert folder == run / "logs"
    config = text_format.Parse((folder / "projector_config.pbtxt").read_text(), projector.ProjectorConfig())
    emb = config.embeddings[0]
    vectors = np.loadtxt(folder / emb.tensor_path, delimiter="\t")
    meta = (folder / emb.metadata_path).read_text().splitlines()
    assert vectors.shape == (20, 6) and len(meta) == 21 and meta[0].split("\t")[0] == "file"
    assert "hair_color" in meta[0].split("\t")
    sprite = Image.open(folder / emb.sprite.image_path)
    assert sprite.size == (5 * emb.sprite.single_image_dim[0], 5 * emb.sprite.single_image_dim[1])


CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def _chromium(tmp_path, size="1600,1000"):
    """Debian's headless Chromium under Selenium, its console log kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={size}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(DRIVER)), options=options)


@pytest.mark.skipif(not (CHROMIUM.exists() and DRIVER.exists()),
                    reason="Debian's chromium and chromium-driver (installed by .ci/run)")
def test_the_page_in_headless_chromium_edits_the_face_and_the_probe_follows(served, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _chromium(tmp_path, "1280,720")  # a common laptop screen: everything fits its width
    try:
        driver.get(served["url"] + "/")
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))

        def edited():
            return driver.execute_script("return document.getElementById('edited').src")

        def reading(name):
            return driver.execute_script(
                f"const r = document.querySelector('#probe tr[data-attribute=\"{name}\"]'); return r && r.innerText")

        def move(selector, value):
            driver.execute_script(f"const s = document.querySelector('{selector}'); s.value = {value}; "
                                  "s.dispatchEvent(new Event('input'));")

        start = edited()
        driver.execute_script("const s = document.querySelector('select[data-attribute=\"glasses\"]'); s.value = '5';"
                              "s.dispatchEvent(new Event('change'));")
        move('input[data-attribute="glasses"]', 1.0)
        wait.until(lambda d: edited() != start)
        wait.until(lambda d: "glasses" in (reading("glasses") or ""))
        after_edit = edited()
        move('input[data-pc="0"]', 2.5)
        wait.until(lambda d: edited() != after_edit)
        assert driver.execute_script("return location.hash.length") > 10  # the state is in the URL
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        options = driver.execute_script("return [...document.querySelector('select[data-attribute=\"glasses\"]')"
                                        ".options].map(o => o.text)")
        assert "5: none" in options and "0: round" in options  # the generator's names beside the indices
        text = tmp_path / "notes.txt"
        text.write_text("not an image")
        driver.find_element("id", "upload").send_keys(str(text))
        message = "return document.getElementById('message').hidden ? '' : document.getElementById('message').innerText"
        wait.until(lambda d: "could not read the uploaded image" in d.execute_script(message))
        assert "not a readable image" in driver.execute_script(message)
        driver.save_screenshot(str(tmp_path / "explorer.png"))
        shutil.copy(tmp_path / "explorer.png", Path(tempfile.gettempdir()) / "cartoon-vae-explorer-test.png")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
                  and "/api/encode - Failed to load resource" not in e["message"]]  # the upload refused on purpose
        assert not errors, errors
    finally:
        driver.quit()
    assert Image.open(tmp_path / "explorer.png").size[0] >= 1000


def test_a_conditional_run_is_explored_with_labels_and_a_label_swap(served, tmp_path):
    root = served["root"]
    assert main(["train", "--config", PAPER, "--data", str(root / "faces"), "--run-dir", str(tmp_path / "run"), *SETS,
                 "--set", "model.conditional=[glasses,hair_color]"]) == 0
    explorer = Explorer(tmp_path / "run", root / "probe", faces=4, components=3, log=lambda *_: None)
    server = make_server(explorer, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert _call(f"{url}/api/info")[2]["conditional"] == ["glasses", "hair_color"]
        face = _call(f"{url}/api/face/0")[2]
        assert set(face["labels"]) == {"glasses", "hair_color"}
        other = (face["labels"]["hair_color"] + 1) % 10
        _, _, same = _call(f"{url}/api/view", {"base": face["z"], "labels": face["labels"], "edits": []})
        _, _, swapped = _call(f"{url}/api/view", {"base": face["z"], "labels": face["labels"],
                                                  "edits": [{"attribute": "hair_color", "to": other, "amount": 1}]})
        assert swapped["z"] == same["z"] and swapped["image"] != same["image"]  # same z, new label, new face
        _, _, beside = _call(f"{url}/api/view", {"base": face["z"], "labels": face["labels"], "face": 0,
                                                 "edits": [{"attribute": "hair_color", "to": other, "amount": 1}]})
        row = dict(zip(explorer.attrs.names, (int(v) for v in explorer.face_labels[0])))
        truth = true_counterfactual({**row, "hair_color": other}, explorer.config.data)  # drawn by the generator
        assert _pixels(beside["truth"]).shape == truth.shape and np.abs(_pixels(beside["truth"]) - truth).max() <= 1 / 255
        assert beside["photo_method"] == "recolour"  # a colour edit is recoloured onto the photo
        photo = _pixels(beside["photo"])  # outside the edit's mask, the photo's own pixels
        changed = np.abs(_pixels(swapped["image"]) - _pixels(same["image"])).max(-1) > 0.04
        unchanged = ~ndimage.binary_dilation(changed, iterations=4)
        assert np.abs(photo - explorer.face_images[0])[unchanged].max() <= 1 / 255
        _, _, half = _call(f"{url}/api/view", {"base": face["z"], "labels": face["labels"], "face": 0,
                                               "edits": [{"attribute": "hair_color", "to": other, "amount": 0.5}]})
        assert half["truth"] is None and "amount 1" in half["truth_note"]
        glasses = {"attribute": "glasses", "to": (face["labels"]["glasses"] + 1) % 6, "amount": 1}
        _, _, shape = _call(f"{url}/api/view", {"base": face["z"], "labels": face["labels"], "face": 0,
                                                "edits": [glasses, {"attribute": "hair_color", "to": other}]})
        assert shape["photo_method"] == "composite"  # a change of shape is composited
        y = explorer.vae.labels_of(["glasses", "hair_color"], [[face["labels"]["glasses"], other]])
        expected = explorer.vae.decode(np.asarray([face["z"]], np.float32), y)
        np.testing.assert_allclose(explorer.decode(np.asarray(face["z"], np.float32), y[0]), np.asarray(expected)[0],
                                   atol=1e-5)
        for body, words in [({"base": face["z"], "edits": []}, "labels: this model is conditional"),
                            ({"base": face["z"], "labels": {**face["labels"], "glasses": 99}}, "glasses has values")]:
            status, _, error = _call(f"{url}/api/view", body)
            assert status == 400 and words in error["error"], error
        sample = _call(f"{url}/api/sample", {"sampler": "normal", "seed": 1})[2]
        assert set(sample["labels"]) == {"glasses", "hair_color"}
        buf = io.BytesIO()
        Image.fromarray((explorer.face_images[1] * 255).astype(np.uint8)).save(buf, format="PNG")
        encoded = _call(f"{url}/api/encode", raw=buf.getvalue())[2]  # the probe reads the upload's labels
        assert set(encoded["labels"]) == {"glasses", "hair_color"} and len(encoded["z"]) == 6
        frames = _call(f"{url}/api/interpolate", {"z0": face["z"], "z1": sample["z"], "labels0": face["labels"],
                                                  "labels1": sample["labels"], "steps": 3})[2]["frames"]
        assert len(frames) == 3
        status, _, error = _call(f"{url}/api/edit", {"z": face["z"], "attribute": "glasses", "to": 5})
        assert status == 400 and "is a label of this conditional model" in error["error"]  # not a move of z
        if CHROMIUM.exists() and DRIVER.exists():
            _page_edits_only_the_moved_label(url, _call(f"{url}/api/face/2")[2]["labels"], tmp_path)
    finally:
        server.shutdown()
        server.server_close()


def _pixels(url) -> np.ndarray:
    """A data URL's PNG as float32 in [0, 1]."""
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"), np.float32) / 255


def _page_edits_only_the_moved_label(url, labels, tmp_path):
    """In the page, a clicked face's label selectors hold its own labels, and moving one slider edits that label
    alone (the page once started every selector at 0 and swapped the others' labels too)."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _chromium(tmp_path, "1280,720")
    try:
        driver.get(url + "/")
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
        driver.execute_script("document.querySelectorAll('#faces img')[2].click()")
        selected = "return Object.fromEntries([...document.querySelectorAll('#attributes select')].map(s => " \
                   "[s.dataset.attribute, Number(s.value)]))"
        wait.until(lambda d: all(d.execute_script(selected)[n] == v for n, v in labels.items()))
        other = (labels["hair_color"] + 3) % 10
        driver.execute_script(f"const s = document.querySelector('select[data-attribute=\"hair_color\"]'); "
                              f"s.value = '{other}'; s.dispatchEvent(new Event('change')); "
                              "const r = document.querySelector('input[data-attribute=\"hair_color\"]'); r.value = 1; "
                              "r.dispatchEvent(new Event('input'));")
        assert driver.execute_script("return editList()") == [{"attribute": "hair_color", "to": other, "amount": 1}]
        assert driver.execute_script(selected)["glasses"] == labels["glasses"]  # the other label is untouched
        shown = "return [...document.querySelectorAll('figure.beside')].map(f => !f.hidden && " \
                "f.querySelector('img').src.startsWith('data:image/png'))"
        wait.until(lambda d: d.execute_script(shown) == [True, True, True])  # the photo edit, the truth, the difference
        wait.until(lambda d: d.execute_script("return document.getElementById('busy').hidden"))
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        driver.save_screenshot(str(tmp_path / "conditional.png"))
        shutil.copy(tmp_path / "conditional.png", Path(tempfile.gettempdir()) / "cartoon-vae-explorer-conditional.png")
    finally:
        driver.quit()
