"""The demo's HTTP server: one page, one JSON description of the runs, four JSON actions.

Routes:
    ``GET /``: the page (:mod:`.page`). ``GET /api/runs``: every run's controls.
    ``POST /api/sample|interpolate|complete|apply``: ``{"run": ID, ...}`` -> ``{"image":
    PNG data URL, "caption": ..., "note": ...}``.

Every refused request gets a JSON ``{"error": one line}`` and a 4xx status; the page shows
the line. A bug in an action is a 500 with a one-line message (its traceback goes to the
server's terminal), never a dead server. One action runs at a time (a lock): the models
share the machine's cores and memory, and concurrent clicks would only slow each other.
When the server listens on a loopback address, requests must name a loopback host
(``Host`` header), so a web page the user visits cannot reach the demo by DNS rebinding.
"""

from __future__ import annotations

import json
import sys
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..errors import UserError
from .actions import ACTIONS
from .images import MAX_UPLOAD_BYTES
from .page import PAGE
from .runs import ServedRun

#: the largest request body: a base64 upload (4/3 of the file) plus the other fields
MAX_BODY = MAX_UPLOAD_BYTES * 4 // 3 + 64 * 1024
#: the most bytes of a refused body read away before the 413 (beyond: the connection drops)
DISCARD_LIMIT = 64 * 2 ** 20
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")


class DemoServer(ThreadingHTTPServer):
    """A threading HTTP server holding the served runs (``runs[i].id == i``)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], runs: list[ServedRun], quiet: bool = False):
        super().__init__(address, DemoHandler)
        self.runs = runs
        self.quiet = quiet
        self.work_lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}/"

    def is_loopback(self) -> bool:
        return str(self.server_address[0]) in LOOPBACK_NAMES or \
            str(self.server_address[0]).startswith("127.")


class DemoHandler(BaseHTTPRequestHandler):
    """Routes one request; see the module docstring."""

    server: DemoServer
    server_version = "genvision-serve"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    # ----- responses -------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: dict[str, Any] | list[Any]) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": " ".join(message.split())})

    def _host_ok(self) -> bool:
        if not self.server.is_loopback():
            return True
        host = (self.headers.get("Host") or "").strip()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name in LOOPBACK_NAMES or name.startswith("127."):
            return True
        self._error(HTTPStatus.FORBIDDEN, f"host {host!r} is not this machine (fix: open the "
                                          "URL that `genvision serve` printed)")
        return False

    # ----- routes ----------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if not self._host_ok():
            return
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, PAGE.encode(), "text/html; charset=utf-8")
        elif path == "/api/runs":
            self._json(HTTPStatus.OK, [r.describe() for r in self.server.runs])
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no page {path} (fix: open /)")

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        if not self._host_ok():
            return
        name = self.path.split("?", 1)[0].removeprefix("/api/")
        action = ACTIONS.get(name)
        if action is None:
            self._error(HTTPStatus.NOT_FOUND, f"no action {name!r} (fix: use one of "
                                              f"{', '.join(ACTIONS)})")
            return
        try:
            body = self._read_body()
            run = self._run_of(body)
            with self.server.work_lock:
                result = action(run, body)
        except _Refused as err:
            self._error(err.status, str(err))
        except UserError as err:
            self._error(HTTPStatus.BAD_REQUEST, err.one_line())
        except MemoryError:
            self._error(HTTPStatus.BAD_REQUEST, "out of memory (fix: ask for fewer or "
                                                "smaller images)")
        except Exception as exc:  # a bug: say so on the page, keep serving
            traceback.print_exc(file=sys.stderr)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR,
                        f"internal error in {name}: {type(exc).__name__}: "
                        f"{str(exc)[:200]} (fix: see the server's terminal; please report it)")
        else:
            self._json(HTTPStatus.OK, result)

    def _read_body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            raise _Refused(HTTPStatus.LENGTH_REQUIRED,
                           "the request has no Content-Length (fix: send a JSON body)") from None
        if length > MAX_BODY:
            self._discard(length)
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                           f"the request is {length:,} bytes, more than the demo takes "
                           f"({MAX_BODY:,}) (fix: upload an image under "
                           f"{MAX_UPLOAD_BYTES // 2**20} MB)")
        if length < 0:
            raise _Refused(HTTPStatus.BAD_REQUEST, "negative Content-Length")
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise UserError("the request body is not JSON", "send a JSON object") from None
        if not isinstance(body, dict):
            raise UserError("the request body is not a JSON object", "send a JSON object")
        return body

    def _discard(self, length: int) -> None:
        """Read a refused body away (bounded), so the client gets the 413 and not a reset
        connection; the connection then closes (what is left must not be parsed)."""
        self.close_connection = True
        left = min(length, DISCARD_LIMIT)
        while left > 0:
            chunk = self.rfile.read(min(left, 2 ** 20))
            if not chunk:
                break
            left -= len(chunk)

    def _run_of(self, body: dict[str, Any]) -> ServedRun:
        run = body.get("run")
        runs = self.server.runs
        if isinstance(run, bool) or not isinstance(run, int) or not 0 <= run < len(runs):
            raise UserError(f"no run {run!r}", f"pass a run id from 0 to {len(runs) - 1}")
        return runs[run]


class _Refused(Exception):
    """A request refused before its action ran, with its HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def start_in_thread(server: DemoServer) -> threading.Thread:
    """Serve in a daemon thread (tests, notebooks); stop with ``server.shutdown()``."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread
