"""The explorer's HTTP server: routes to :class:`cartoon_vae.explore.Explorer`, and what a web server on
someone's laptop must promise.

* **Only its own pages talk to it.** A request whose ``Host`` is not this server's own name (127.0.0.1,
  localhost, [::1] or the address it was started on, with its port) is refused, so a web page cannot reach it
  through DNS rebinding (the address a client reached, say a LAN address of ``--host 0.0.0.0``, is accepted
  too: no rebinding gives it); a request whose ``Origin`` is another site's is refused, so a page elsewhere
  cannot post to it. ``allowed_origins`` (the CLI's ``--allow-origin``) names others to let in, with the CORS
  headers their scripts need to read the answers. 403.
* **Bounded work.** A body of at most ``MAX_BODY`` bytes; an upload of at most
  :data:`cartoon_vae.explore.MAX_UPLOAD_PIXELS` pixels, refused from its header before it is decoded; at most
  ``HEAVY_REQUESTS`` model computations at once, a request that waits longer than ``BUSY_WAIT`` seconds for
  one is answered 503; a listen backlog of ``BACKLOG`` connections; a connection idle for ``IDLE_TIMEOUT``
  seconds is closed.
* **Every refusal is one JSON line**: 4xx ``{"error": "..."}`` for a bad request (a path, a number, JSON
  nested past ``MAX_JSON_DEPTH``, a field of the wrong type), nothing printed; a client that hangs up early
  leaves no traceback on the console.

API (JSON in and out unless a PNG is named; every bad request is a 4xx with ``{"error": "..."}``):

    GET  /api/info                         attributes, held-out faces, samplers, components, probe, conditional
    GET  /api/faces/N.png                  held-out face N as the data set holds it
    GET  /api/face/N                       {"z", "labels", "original", "reconstruction"} (data URLs)
    GET  /api/swatches/ATTRIBUTE/VALUE.png the decoded mean code of the training faces with that value
    POST /api/decode   {"z", "labels"}     image/png: the decoded face
    POST /api/view     {"base", "labels", "edits": [{"attribute", "to", "amount"}], "hold", "pcs": [...], "face"}
                                           {"z", "image", "probe"}: base moved by each edit, then along
                                           the principal directions (in standard deviations); with "face" (the
                                           held-out face base is the code of) also {"photo", "truth",
                                           "difference", "truth_note"}: the edit composited onto the photo, the
                                           true edited face (embedded set) and a heat map of their difference
    POST /api/edit     {"z", "attribute", "to", "amount", "hold"}  {"z"}
    POST /api/sample   {"sampler", "seed"} {"z", "labels"}
    POST /api/encode   (an image file)     {"z", "labels"}: the mean code of the uploaded face
    POST /api/interpolate {"z0", "z1", "steps", "labels0", "labels1"}  {"frames": [data URLs]}
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from .explore import BadRequest
from .figures import png_bytes

MAX_BODY = 4 << 20       # bytes of a request body
MAX_JSON_DEPTH = 32      # nesting of a JSON body (the API's deepest is 3)
HEAVY_REQUESTS = 4       # model computations at once (each is a decode, an encode or a fit)
BUSY_WAIT = 20.0         # seconds a request waits for one before a 503
BACKLOG = 256            # connections the kernel queues before the server accepts them
IDLE_TIMEOUT = 30.0      # seconds a connection may stay silent
LOCAL_NAMES = ("127.0.0.1", "localhost", "::1")
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/static/style.css": ("style.css", "text/css; charset=utf-8")}
STATIC_DIR = Path(__file__).resolve().parent / "static"


def route(explorer, method, path, body):
    """(status, content type, bytes) for one request; BadRequest for a refused one."""
    parts = path.split("?")[0].split("/")
    if method == "GET":
        if path in STATIC:
            name, kind = STATIC[path]
            return 200, kind, (STATIC_DIR / name).read_bytes()
        if path == "/api/info":
            return _json(explorer.info())
        if len(parts) == 4 and parts[:3] == ["", "api", "faces"] and parts[3].endswith(".png"):
            return 200, "image/png", explorer.face_png(_index(parts[3][:-4]))
        if len(parts) == 4 and parts[:3] == ["", "api", "face"]:
            return _json(explorer.face(_index(parts[3])))
        if len(parts) == 5 and parts[:3] == ["", "api", "swatches"] and parts[4].endswith(".png"):
            return 200, "image/png", explorer.swatch(parts[3], _index(parts[4][:-4]))
        raise BadRequest(f"not found: {path[:80]}", 404)
    if method != "POST" or not path.startswith("/api/"):
        raise BadRequest(f"not found: {method} {path[:80]}", 404)
    if path == "/api/encode":
        return _json(explorer.encode(body))
    q = _body(body)
    if path == "/api/decode":
        labels = explorer.label_vector(q.get("labels")) if explorer.conditioned else None
        return 200, "image/png", png_bytes(explorer.decode(explorer.code(q.get("z")), labels))
    if path == "/api/view":
        edits = q.get("edits", [])
        if not isinstance(edits, list) or len(edits) > 32:
            raise BadRequest("edits: must be a list of at most 32 edits")
        return _json(explorer.view(q.get("base"), edits, q.get("hold", False), q.get("pcs", []), q.get("labels"),
                                   q.get("face")))
    if path == "/api/edit":
        z = explorer.edit(q.get("z"), q.get("attribute"), q.get("to"), q.get("amount", 1.0), q.get("hold", False))
        return _json({"z": z.tolist()})
    if path == "/api/sample":
        return _json(explorer.sample(q.get("sampler"), q.get("seed", 0)))
    if path == "/api/interpolate":
        return _json({"frames": explorer.interpolate(q.get("z0"), q.get("z1"), q.get("steps", 8), q.get("labels0"),
                                                     q.get("labels1"))})
    raise BadRequest(f"not found: POST {path[:80]}", 404)


def _body(body) -> dict:
    """A JSON object from a request body, its nesting checked before it is parsed (a deep one would exhaust
    the parser's recursion)."""
    text = body or b"{}"
    depth = deepest = 0
    for byte in text:  # brackets inside strings count too: an over-estimate, never an under-estimate
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}":
            depth -= 1
    if deepest > MAX_JSON_DEPTH:
        raise BadRequest(f"body: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        q = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("body: not JSON") from None
    if not isinstance(q, dict):
        raise BadRequest("body: must be a JSON object")
    return q


def _index(text) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 6:  # '\u00b2'.isdigit() is true; int() refuses it
        raise BadRequest(f"not found: {text[:40]}", 404)
    return int(text)


def _json(value):
    return 200, "application/json", json.dumps(value).encode()


def _netloc(name, port):
    """How a browser writes ``name`` and ``port`` in a Host header (lower case; no port for 80)."""
    name = f"[{name}]" if ":" in name else name
    return name.lower() if port == 80 else f"{name}:{port}".lower()


def _allowed(host, port, allowed_origins):
    """{"hosts", "origins", "extra"}: the Host header values and Origin values this server answers (its own names
    with its port, and the origins the user allowed), and those other origins alone, which get CORS headers; all
    lower case, as compared."""
    hosts = {_netloc(n, port) for n in {*LOCAL_NAMES, host}}
    extra = {o.rstrip("/").lower() for o in allowed_origins}
    return {"hosts": hosts | {urlsplit(o).netloc for o in extra}, "origins": {f"http://{h}" for h in hosts} | extra,
            "extra": extra}


class ExplorerServer(ThreadingHTTPServer):
    """A threading HTTP server with a deep backlog, daemon threads, and a quiet end for a client that hung up.
    :func:`make_server` gives it what its handlers read: ``explorer``, ``heavy`` (the semaphore of model
    computations), ``idle_timeout`` and ``checked`` (the Host and Origin values it answers, and its port)."""

    request_queue_size = BACKLOG
    daemon_threads = True

    def __init__(self, address, handler):
        if ":" in address[0]:  # an IPv6 address such as ::1
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def handle_error(self, request, client_address):
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, socket.timeout)):
            super().handle_error(request, client_address)


class ExplorerHandler(BaseHTTPRequestHandler):
    """One connection's requests to its server's explorer (:func:`make_server`): the Host and Origin checks, a
    bounded body, at most ``HEAVY_REQUESTS`` model computations at once, and every refusal as one JSON line."""

    protocol_version = "HTTP/1.1"

    def setup(self):
        self.timeout = self.server.idle_timeout  # a silent connection is closed, so idle ones cannot hold every thread
        super().setup()

    def _refusal(self):
        """A 403 for a Host that is not this server's name or an Origin it does not let in; else None."""
        checked = self.server.checked
        hosts, origins = checked["hosts"], checked["origins"]
        host = self.headers.get("Host", "").lower()
        # the address the client reached is a name no DNS rebinding can give (a LAN client of --host 0.0.0.0)
        reached = _netloc(self.connection.getsockname()[0], checked["port"])
        if host not in hosts and host != reached:
            return BadRequest(f"Host {host[:80]!r} is not this server's; open it as "
                              f"http://127.0.0.1:{checked['port']}/ or by its address", 403)
        origin = self.headers.get("Origin")
        if origin is not None and origin.rstrip("/").lower() not in origins | {f"http://{reached}"}:
            return BadRequest(f"Origin {origin[:80]!r} may not use this server (start it with --allow-origin "
                              f"{origin[:80]} to let that page in)", 403)
        return None

    def _cors(self):
        """An allowed page of another origin may read the answer (and its preflight is answered)."""
        origin = self.headers.get("Origin")
        if origin is not None and origin.rstrip("/").lower() in self.server.checked["extra"]:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")

    def _read_body(self) -> bytes:
        """The request's body: at most ``MAX_BODY`` bytes, else a 413 that closes the connection."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True  # the body is not read: this connection cannot carry another
            raise BadRequest(f"body: must be at most {MAX_BODY:,} bytes, got {length:,}", 413)
        return self.rfile.read(length) if length else b""

    def _answer(self, method, body):
        """:func:`route`'s (status, content type, bytes); all but the static files wait for one of the
        ``HEAVY_REQUESTS`` model computations, a 503 after ``BUSY_WAIT`` seconds."""
        heavy = self.server.heavy
        static = method == "GET" and self.path in STATIC
        if not static and not heavy.acquire(timeout=BUSY_WAIT):
            raise BadRequest(f"busy: {HEAVY_REQUESTS} requests are being computed; try again", 503)
        try:
            return route(self.server.explorer, method, self.path, body)
        finally:
            if not static:
                heavy.release()

    def _handle(self, method):
        try:
            refused = self._refusal()
            if refused is not None:
                self.close_connection = True
                raise refused
            status, kind, payload = self._answer(method, self._read_body())
        except BadRequest as e:
            status, kind, payload = e.status, "application/json", json.dumps({"error": str(e)}).encode()
        except Exception as e:  # a bug must not stop the server: a 500 with one line
            status, kind = 500, "application/json"
            payload = json.dumps({"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"}
                                 ).encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self._cors()
        self.end_headers()
        self.wfile.write(payload)

    def do_OPTIONS(self):  # a CORS preflight from an allowed page
        refused = self._refusal()
        self.send_response(403 if refused is not None else 204)
        self.send_header("Content-Length", "0")
        if refused is None:
            self._cors()
            self.send_header("Access-Control-Allow-Methods", "GET, POST")
            self.send_header("Access-Control-Allow-Headers", "Content-Type")
        self.end_headers()

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def log_message(self, *args):
        pass


def make_server(explorer, host="127.0.0.1", port=0, allowed_origins=()) -> ThreadingHTTPServer:
    """A server for ``explorer`` on ``host`` (port 0: any free port; ``server.server_address`` says which).
    ``allowed_origins``: other origins (``http://name:port``) whose pages may call it."""
    server = ExplorerServer((host, port), ExplorerHandler)
    port = server.server_address[1]
    server.explorer, server.heavy = explorer, threading.BoundedSemaphore(HEAVY_REQUESTS)
    server.idle_timeout = IDLE_TIMEOUT
    server.checked = {**_allowed(host, port, allowed_origins), "port": port}
    return server
