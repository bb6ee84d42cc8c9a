"""Reconcile on push: an HTTP endpoint for the git server's push webhook, as Flux's Receiver.

`POST /hook` (or `/hook/<instance>`, so one ingress can route to several reconcilers) is accepted
when it is signed with the shared secret (`--receiver-secret-file`), in one of three ways:

* GitHub (and Gitea, Forgejo, Gogs): `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>`;
  `X-GitHub-Event: push` triggers, `ping` is answered, other events are ignored;
* GitLab: `X-Gitlab-Token: <the secret>`; `X-Gitlab-Event: Push Hook` / `Tag Push Hook` trigger;
* generic: `X-Signature: sha256=<hex>` (or `sha512=`), the HMAC of the body, as Flux's
  generic-hmac receiver.

Signatures and tokens are compared in constant time (`hmac.compare_digest`). An unsigned or
wrongly signed request gets 401 and changes nothing. An accepted push asks the loop for an
immediate fetch + reconcile (`Wakeup.request_run`); pushes that arrive while one is pending or
running are folded into it (one more run, not one per push). The body is never parsed or logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

from reconciler.errors import ReconcilerError
from reconciler.loop.metrics import BackgroundServer, bind_server, respond
from reconciler.loop.run import Received

log = logging.getLogger(__name__)

MAX_BODY = 4 * 1024 * 1024  # GitHub truncates push payloads well below this (20 commits)
READ_TIMEOUT = 10.0  # seconds a client may take to send its request
_DIGESTS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
_GITLAB_PUSH = frozenset({"Push Hook", "Tag Push Hook"})


@dataclass(frozen=True)
class Verdict:
    outcome: Received
    code: int
    sender: str  # github, gitlab, generic, or "" when refused before knowing
    message: str


def read_secret(path: Path, option: str) -> bytes:
    """A shared secret from a file (a mounted Secret), trailing newline removed; never empty."""
    try:
        secret = path.read_bytes().rstrip(b"\r\n")
    except OSError as e:
        raise ReconcilerError(f"{option} {path}: cannot read: {e.strerror or e}") from None
    if not secret.strip():
        raise ReconcilerError(f"{option} {path}: the file is empty")
    return secret


def _hmac_matches(secret: bytes, body: bytes, header: str) -> bool:
    """`<algo>=<hex>` against the HMAC of body, in constant time."""
    algo, _, given = header.strip().partition("=")
    digest = _DIGESTS.get(algo.lower())
    if digest is None or not given:
        return False
    expected = hmac.new(secret, body, digest).hexdigest()
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode())


class Headers(Protocol):
    """Request headers, looked up without regard to case (http.server's `Message`)."""

    def get(self, name: str, default: Any = None) -> Any: ...


def verify(headers: Headers, body: bytes, secret: bytes) -> Verdict:
    """Who sent it and whether it proves to know the secret; what to do with it."""
    refused = "signature does not match (check the webhook's secret)"
    if (sig := headers.get("X-Hub-Signature-256")) is not None:
        if not _hmac_matches(secret, body, sig) or not sig.lower().startswith("sha256="):
            return Verdict(Received.REFUSED, 401, "github", refused)
        event = headers.get("X-GitHub-Event") or headers.get("X-Gitea-Event") or "push"
        if event == "push":
            return Verdict(Received.ACCEPTED, 202, "github", "push accepted: reconciling")
        return Verdict(Received.IGNORED, 200, "github", f"event {event!r} ignored (only push triggers a run)")
    if (token := headers.get("X-Gitlab-Token")) is not None:
        if not hmac.compare_digest(token.encode(), secret):
            return Verdict(Received.REFUSED, 401, "gitlab", "token does not match (check the webhook's secret token)")
        event = headers.get("X-Gitlab-Event", "")
        if event in _GITLAB_PUSH:
            return Verdict(Received.ACCEPTED, 202, "gitlab", "push accepted: reconciling")
        return Verdict(Received.IGNORED, 200, "gitlab", f"event {event!r} ignored (only pushes trigger a run)")
    if (sig := headers.get("X-Signature")) is not None:
        if not _hmac_matches(secret, body, sig):
            return Verdict(Received.REFUSED, 401, "generic", refused)
        return Verdict(Received.ACCEPTED, 202, "generic", "accepted: reconciling")
    return Verdict(Received.REFUSED, 401, "", "unsigned request: send X-Hub-Signature-256, X-Gitlab-Token "
                   "or X-Signature")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = READ_TIMEOUT

    def do_POST(self) -> None:
        if not self.server.is_hook_path(self.path.split("?", 1)[0]):
            return self._reply(404, {"error": f"not found: POST /hook or /hook/{self.server.instance}"})
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            return self._reply(411, {"error": "Content-Length required"})
        if int(length) > MAX_BODY:
            self.close_connection = True
            return self._reply(413, {"error": f"body larger than {MAX_BODY} bytes"})
        body = self.rfile.read(int(length))
        verdict = verify(self.headers, body, self.server.secret)
        self.server.on_verdict(verdict, self.client_address[0])
        payload: dict[str, Any] = {"status": verdict.outcome, "message": verdict.message,
                                   "instance": self.server.instance}
        self._reply(verdict.code, payload)

    def do_GET(self) -> None:
        self._reply(405, {"error": "use POST"}, {"Allow": "POST"})

    do_PUT = do_DELETE = do_PATCH = do_GET

    def _reply(self, code: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        respond(self, code, "application/json", json.dumps(body).encode() + b"\n", headers)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("receiver http: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr: tuple[str, int], secret: bytes, instance: str,
                 on_verdict: Callable[[Verdict, str], None]) -> None:
        bind_server(self, addr)
        super().__init__(addr, _Handler)
        self.secret = secret
        self.instance = instance
        self.on_verdict = on_verdict

    def is_hook_path(self, path: str) -> bool:
        return path.rstrip("/") in ("/hook", f"/hook/{self.instance}")


class Receiver(BackgroundServer):
    """The push endpoint on a daemon thread. `request_run` asks the loop for a run (True: a new
    one, False: folded into one already pending); `count` records each outcome (metrics)."""

    def __init__(self, addr: str, secret: bytes, instance: str, request_run: Callable[[], bool],
                 count: Callable[[Received], None] = lambda _o: None) -> None:
        def on_verdict(v: Verdict, client: str) -> None:
            count(v.outcome)
            who = f"{v.sender} " if v.sender else ""
            if v.outcome is Received.REFUSED:
                log.warning("receiver: refused a %srequest from %s: %s", who, client, v.message,
                            extra={"receiver": v.outcome, "sender": v.sender})
            elif v.outcome is Received.IGNORED:
                log.info("receiver: %s%s", who, v.message, extra={"receiver": v.outcome, "sender": v.sender})
            else:
                new = request_run()
                log.info("receiver: %spush from %s: %s", who, client,
                         "fetch + reconcile requested" if new else "folded into the run already requested",
                         extra={"receiver": v.outcome, "sender": v.sender})

        super().__init__("--receiver-addr", addr, "receiver", lambda a: _Server(a, secret, instance, on_verdict))
        log.info("receiver: accepting signed pushes on %s:%d (POST /hook)", self.host or "*", self.port)
