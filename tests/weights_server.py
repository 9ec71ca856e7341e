"""A real HTTP server on 127.0.0.1 for the weights download tests (Python's ``http.server``).

    with serve_files({"googlenet-1a2b3c4d.pth": data}, truncate={"x.pth"}) as base:
        ...  # GET {base}/googlenet-1a2b3c4d.pth -> data

A name in ``truncate`` is sent with its full Content-Length but only half of its bytes, then
the connection closes: a download cut short. ``hits`` counts requests per name.
"""
from __future__ import annotations

import contextlib
import hashlib
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def hashed_name(stem: str, data: bytes, suffix: str = ".pth") -> str:
    """torchvision's naming: ``<stem>-<first 8 hex digits of the sha256><suffix>``."""
    return f"{stem}-{hashlib.sha256(data).hexdigest()[:8]}{suffix}"


@contextlib.contextmanager
def serve_files(files: dict[str, bytes], truncate: set[str] = frozenset()):
    hits: Counter = Counter()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            name = self.path.rsplit("/", 1)[-1]
            hits[name] += 1
            data = files.get(name)
            if data is None:
                self.send_error(404, "File not found")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2] if name in truncate else data)
            if name in truncate:
                self.close_connection = True

        def log_message(self, *args):  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/models", hits
    finally:
        server.shutdown()
        server.server_close()
