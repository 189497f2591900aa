"""``genvision serve RUN [RUN...] [--port 7860] [--host 127.0.0.1] [--open]``: a local web
page to sample, interpolate, complete and apply the runs (:mod:`genvision.serve`)."""

from __future__ import annotations

import ipaddress
import sys
import webbrowser

from ..errors import UserError
from ..serve import make_server
from ..train.device import resolve_device
from .parser import Parser


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(argv: list[str]) -> int:
    """Entry point of ``genvision serve``; serves until Ctrl-C, then returns 0."""
    p = Parser(prog="genvision serve",
               description="Serve an interactive demo page of trained runs: sample, "
                           "interpolate, complete drawings; super-resolve, colorize and "
                           "translate uploaded images.")
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="model runs, or superres / colorize / translate runs")
    p.add_argument("--port", type=int, default=7860,
                   help="port to listen on (default 7860; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--open", action="store_true", help="open the page in a web browser")
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true", help="do not log each request")
    args = p.parse_args(argv)
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port} is not a port", "pass 0 to 65535")
    server = make_server(args.runs, args.host, args.port, resolve_device(args.device),
                         quiet=args.quiet)
    if not _is_loopback(args.host):
        print(f"warning: listening on {args.host}: anyone who can reach this machine can use "
              "the demo (and its CPU); use --host 127.0.0.1 to keep it local", file=sys.stderr)
    names = ", ".join(r.name for r in server.runs)
    print(f"serving {names} at {server.url} (Ctrl-C stops)", flush=True)
    if args.open:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0
