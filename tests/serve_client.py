"""Helpers of the demo's tests: data URLs of test images and a urllib client.

The run ids of :mod:`serve_runs`' server are here too, so test modules import this file
and load ``serve_runs`` only as a plugin (``pytest_plugins``).
"""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
from typing import Any

import numpy as np
from PIL import Image

#: run id of each kind in the served list (the order of ``serve_runs``)
VAE_ID, DDPM_ID, SR_ID, COLOR_ID = 0, 1, 2, 3


def png_url(array: np.ndarray) -> str:
    """A data URL of uint8 [H, W] (grey) or [H, W, 3]."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def decode_url(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,"), url[:40]
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
        return np.asarray(im.convert("RGB"))


def request(server, path: str, body: Any = None, raw: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """(status, parsed JSON or text) of GET (body None) or POST ``path``."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.url.rstrip("/") + path, data=data,
                                 headers=headers or {}, method="GET" if data is None else "POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            status, text, kind = resp.status, resp.read(), resp.headers["Content-Type"]
    except urllib.error.HTTPError as err:
        status, text, kind = err.code, err.read(), err.headers["Content-Type"]
    return status, json.loads(text) if kind == "application/json" else text.decode()
