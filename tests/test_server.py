"""The explorer's HTTP server, in front of a stand-in explorer: only its own pages reach it, its work is bounded,
and every refusal is one JSON line (the real explorer behind it is tested in tests/test_explore.py)."""

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from cartoon_vae import server
from cartoon_vae.server import make_server


class StandIn:
    """What the routes ask an explorer for, each answer a few milliseconds of work."""

    conditioned = []

    def info(self):
        return {"faces": 6}

    def face(self, i):
        time.sleep(0.005)
        return {"z": [0.0] * 4, "face": i}


@pytest.fixture(scope="module")
def served():
    s = make_server(StandIn(), "127.0.0.1", 0)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{s.server_address[1]}", "explorer": StandIn()}
    s.shutdown()
    s.server_close()


def _call(url, body=None):
    """(status, content type, JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, r.headers["Content-Type"], json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], json.loads(e.read())


def _raw_request(url, lines):
    """(status, JSON error) of a hand-written request: headers a browser would send, which urllib does not let us."""
    import http.client

    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest(lines[0], lines[1], skip_host=True)
    for name, value in lines[2:]:
        conn.putheader(name, value)
    conn.endheaders()
    r = conn.getresponse()
    status, payload = r.status, json.loads(r.read() or b"{}")
    conn.close()
    return status, payload


def test_only_pages_of_its_own_origin_reach_the_server_unless_others_are_allowed(served):
    url = served["url"]
    own = url.split("//")[1]
    port = own.split(":")[1]
    assert _raw_request(url, ["GET", "/api/info", ("Host", own)])[0] == 200
    assert _raw_request(url, ["GET", "/api/info", ("Host", f"localhost:{port}")])[0] == 200
    assert _raw_request(url, ["GET", "/api/info", ("Host", f"LocalHost:{port}")])[0] == 200  # names are case-blind
    status, error = _raw_request(url, ["GET", "/api/info", ("Host", f"rebound.example:{port}")])  # DNS rebinding
    assert status == 403 and "is not this server's" in error["error"]
    status, error = _raw_request(url, ["POST", "/api/sample", ("Host", own), ("Origin", "https://evil.example"),
                                       ("Content-Type", "text/plain"), ("Content-Length", "2")])
    assert status == 403 and "--allow-origin https://evil.example" in error["error"]
    assert _raw_request(url, ["GET", "/api/info", ("Host", own), ("Origin", f"http://{own}")])[0] == 200
    import socket

    with socket.create_connection(("127.0.0.1", int(port)), timeout=30) as raw:  # byte 0xb2 is '\u00b2', a digit
        raw.sendall(b"GET /api/face/\xb2 HTTP/1.1\r\nHost: " + own.encode() + b"\r\nConnection: close\r\n\r\n")
        assert raw.makefile("rb").readline().split()[1] == b"404"  # to str.isdigit, not to int(): no 500
    other = make_server(served["explorer"], "127.0.0.1", 0, allowed_origins=["http://lab.example:9000"])
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        url2 = f"http://127.0.0.1:{other.server_address[1]}"
        assert _raw_request(url2, ["GET", "/api/info", ("Host", "lab.example:9000"),
                                   ("Origin", "http://lab.example:9000")])[0] == 200
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", other.server_address[1], timeout=30)
        conn.request("OPTIONS", "/api/view", headers={"Host": f"127.0.0.1:{other.server_address[1]}",
                                                      "Origin": "http://LAB.example:9000"})
        r = conn.getresponse()
        assert r.status == 204 and r.headers["Access-Control-Allow-Origin"] == "http://LAB.example:9000"
        r.read()
        conn.request("GET", "/api/info", headers={"Host": f"127.0.0.1:{other.server_address[1]}",
                                                  "Origin": "http://lab.example:9000"})
        r = conn.getresponse()  # the allowed page's script may read the answer
        assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == "http://lab.example:9000"
        r.read()
        conn.close()
    finally:
        other.shutdown()
        other.server_close()


def test_two_hundred_clients_at_once_each_get_an_answer_and_idle_ones_are_closed(served, monkeypatch, capfd):
    import socket

    url = served["url"]
    with ThreadPoolExecutor(200) as pool:  # none is reset: each gets its answer, or a 503 when the queue is full
        statuses = list(pool.map(lambda i: _call(f"{url}/api/face/{i % 6}")[0], range(200)))
    assert set(statuses) <= {200, 503} and statuses.count(200) > 0
    monkeypatch.setattr(server, "IDLE_TIMEOUT", 0.5)
    quick = server.make_server(served["explorer"], "127.0.0.1", 0)
    threading.Thread(target=quick.serve_forever, daemon=True).start()
    try:
        idle = socket.create_connection(quick.server_address, timeout=10)
        assert idle.recv(1) == b""  # the server closed the silent connection
        idle.close()
        gone = socket.create_connection(quick.server_address, timeout=10)  # a client that hangs up at once
        gone.sendall(b"GET /api/face/0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        gone.close()
        import time

        time.sleep(1.0)
    finally:
        quick.shutdown()
        quick.server_close()
    assert "Traceback" not in capfd.readouterr().err


def test_json_nested_too_deep_is_a_400_before_it_is_parsed(served):
    url = served["url"]
    request = urllib.request.Request(f"{url}/api/decode", data=b"[" * 200_000 + b"]" * 200_000, method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(request, timeout=60)
    assert e.value.code == 400 and "nested deeper than 32" in json.loads(e.value.read())["error"]
    assert _call(f"{url}/api/info")[0] == 200  # and it keeps serving
