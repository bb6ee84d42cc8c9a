"""A loopback HTTP server that records every POST (headers and body) and answers with the codes
it is told to; tests wait on what it received (a marker), never on time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEADLINE = 60.0  # bounds a failure only


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


class Capture:
    """What the server received; `codes` are answered in turn (then 200); `hold` blocks each
    handler until it is set (to show that senders do not wait)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.codes: list[int] = []
        self.hold = threading.Event()
        self.hold.set()
        self._cond = threading.Condition()
        self.url = ""

    def add(self, req: Request) -> int:
        with self._cond:
            self.requests.append(req)
            self._cond.notify_all()
            return self.codes.pop(0) if self.codes else 200

    def wait_for(self, what: str, cond: Callable[[list[Request]], Any], deadline: float = DEADLINE) -> Any:
        end = time.monotonic() + deadline
        with self._cond:
            while True:
                value = cond(list(self.requests))
                if value:
                    return value
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; received {len(self.requests)} request(s)")
                self._cond.wait(left)


@contextmanager
def capture_server() -> Iterator[Capture]:
    cap = Capture()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            cap.hold.wait(DEADLINE)
            code = cap.add(Request(self.path, dict(self.headers.items()), body))
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    cap.url = f"http://127.0.0.1:{server.server_address[1]}/events"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield cap
    finally:
        cap.hold.set()
        server.shutdown()
        server.server_close()
