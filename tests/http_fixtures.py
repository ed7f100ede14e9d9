"""A local HTTP server for the download tests (tests/nn and tests/reliability).

Each test file defines the request handler that misbehaves the way it needs
(subclassing `QuietHandler`); this module starts and stops the server.
Importable as ``http_fixtures`` from any test folder, because pytest puts
``tests/`` (the folder of the shared conftest.py) on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator

__all__ = ["QuietHandler", "dead_url", "serve_http"]


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler that keeps the test output free of access logs."""

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve_http(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free port of 127.0.0.1 in a background thread.

    Yields the base URL (``http://127.0.0.1:PORT``, no trailing slash); the
    server is shut down on exit. Each request runs in its own daemon thread,
    so a handler that stalls cannot keep the test process alive.
    """
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def dead_url() -> str:
    """A URL on a local port where nothing listens (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
