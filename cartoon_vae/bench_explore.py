"""The explorer's latency as a person feels it: request to PNG bytes, several clients at once.

:func:`explore_latency` serves a run with :mod:`cartoon_vae.explore` on a free local port and lets
``clients`` threads each send ``requests`` decode requests (``POST /api/decode``, a code to a PNG) and
as many edit views (``POST /api/view`` with an attribute edit and a principal-direction offset: what
moving a slider sends), timing each from request to the last byte of the answer.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def _post(url, body) -> float:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    t0 = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as r:
        r.read()
        if r.status != 200:  # pragma: no cover - urlopen raises for 4xx/5xx
            raise RuntimeError(f"{url}: HTTP {r.status}")
    return time.perf_counter() - t0


def explore_latency(run_dir, clients=4, requests=50, seed=0) -> dict:
    """Per endpoint: median and 95th-percentile milliseconds and requests/s over ``clients`` x ``requests``."""
    from .explore import Explorer
    from .server import make_server

    explorer = Explorer(run_dir, faces=8, log=lambda *_: None)
    attributes = explorer.info()["attributes"]
    if not attributes:
        raise ValueError(f"{run_dir}: its data has no attribute CSVs; the explorer's edits need them")
    attribute = attributes[0]
    server = make_server(explorer, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    rng = np.random.default_rng(seed)
    faces = rng.integers(0, len(explorer.face_means), clients * requests)
    codes = explorer.face_means[faces]
    labels = [explorer.labels_of(i) for i in faces]  # a conditional run's; else None
    bodies = {"decode": [{"z": z.tolist(), "labels": y} for z, y in zip(codes, labels)],
              "edit": [{"base": z.tolist(), "labels": y, "pcs": [float(p)],
                        "edits": [{"attribute": attribute["name"], "to": attribute["values"][-1], "amount": float(a)}]}
                       for z, y, a, p in zip(codes, labels, rng.uniform(0, 1, len(codes)),
                                             rng.uniform(-2, 2, len(codes)))]}
    paths = {"decode": "/api/decode", "edit": "/api/view"}
    out = {"clients": clients, "requests_per_client": requests, "image_size": int(explorer.vae.image_size)}
    try:
        for name, path in paths.items():
            _post(base + path, bodies[name][0])  # warm-up: the first edit fits its direction
            t0 = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                seconds = list(pool.map(lambda b: _post(base + path, b), bodies[name]))
            wall = time.perf_counter() - t0
            ms = 1000 * np.array(seconds)
            out[name] = {"p50_ms": round(float(np.median(ms)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
                         "requests_per_s": round(len(ms) / wall, 1)}
    finally:
        server.shutdown()
        server.server_close()
    return out
