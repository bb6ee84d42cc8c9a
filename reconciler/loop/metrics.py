"""Prometheus metrics, /healthz and /readyz for the watcher, served by a small HTTP server on a thread.

The metrics live in their own CollectorRegistry (no process/platform collectors, nothing global),
so tests and several watchers in one process do not collide. The watcher names its mox server
(`--instance`): every sample then carries an `instance` label, so one dashboard shows a fleet.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.metrics_core import Metric

from reconciler.errors import ReconcilerError
from reconciler.loop.run import FAILURE_REASONS, Delivery, Received, Result, RunResult
from reconciler.loop.status import iso
from reconciler.plan.objects import ObjectKind
from reconciler.plan.rotation import Stage

STAGES = tuple(str(s) for s in Stage)

log = logging.getLogger(__name__)

NS = "mox_reconciler"


class _Labelled:
    """A collector that shows another registry's samples with one more label (`instance`)."""

    def __init__(self, inner: CollectorRegistry, name: str, value: str) -> None:
        self.inner, self.name, self.value = inner, name, value

    def collect(self) -> Iterator[Metric]:
        for family in self.inner.collect():
            out = Metric(family.name, family.documentation, family.type, family.unit)
            for sample in family.samples:
                out.add_sample(sample.name, {self.name: self.value, **sample.labels}, sample.value,
                               sample.timestamp, sample.exemplar)
            yield out


class Metrics:
    """The watcher's metrics; `observe` is called after every run. With `instance`, every
    sample has an `instance` label (the mox server, for fleet dashboards)."""

    def __init__(self, instance: str | None = None) -> None:
        r = CollectorRegistry(auto_describe=True)
        self.registry = r
        if instance is not None:
            self.registry = CollectorRegistry(auto_describe=False)
            self.registry.register(_Labelled(r, "instance", instance))
        self.reconciles = Counter(f"{NS}_reconcile", "Reconcile runs by result (applied, unchanged, planned, failed).",
                                  ["result"], registry=r)
        self.duration = Histogram(f"{NS}_reconcile_duration_seconds", "Duration of reconcile runs.", registry=r,
                                  buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
        self.last_success = Gauge(f"{NS}_last_success_timestamp_seconds",
                                  "Unix time of the last successful reconcile (0: none yet).", registry=r)
        self.errors = Counter(f"{NS}_reconcile_errors", "Failed reconcile runs by reason.", ["reason"], registry=r)
        self.drift = Counter(f"{NS}_drift_detected", "Runs at the last applied revision that found changes "
                             "to make (someone edited the live config).", registry=r)
        self.managed = Gauge(f"{NS}_objects_managed", "Objects in the inventory, by kind.", ["kind"], registry=r)
        self.pending = Gauge(f"{NS}_pending_operations", "Operations the last plan had (0 after an apply).",
                             registry=r)
        self.suspended = Gauge(f"{NS}_suspended", "1 while applying is suspended (the suspend file exists).",
                               registry=r)
        self.commit = Info(f"{NS}_last_applied_commit", "The commit the live config was last made to match.",
                           registry=r)
        self.received = Counter(f"{NS}_receiver_requests", "Requests to the push receiver by result (accepted, "
                                "ignored, refused: unsigned or wrongly signed).", ["result"], registry=r)
        self.notifications = Counter(f"{NS}_notifications", "Notification deliveries by result (sent, failed, "
                                     "dropped), over all --notify URLs.", ["result"], registry=r)
        self.notification_retries = Counter(f"{NS}_notification_retries", "Notification attempts that failed "
                                            "and were retried.", registry=r)
        for received in Received:
            self.received.labels(received)
        for delivery in Delivery:
            self.notifications.labels(delivery)
        self.rotation_stage = Gauge(f"{NS}_dkim_rotation_stage", "1 for the stage each rotating domain's DKIM "
                                    "rotation is in, 0 for the others.", ["domain", "stage"], registry=r)
        self.rotation_next = Gauge(f"{NS}_dkim_rotation_next_step_timestamp_seconds", "Unix time of the earliest "
                                   "next step of each rotating domain (0: not known yet).", ["domain"], registry=r)
        self.rotation_problems = Gauge(f"{NS}_dkim_rotation_problems", "Problems of each rotating domain's DKIM "
                                       "rotation (a signing record missing from DNS, publishing failed).",
                                       ["domain"], registry=r)
        self._rotating: set[str] = set()
        for result in Result:
            self.reconciles.labels(result)
        for reason in FAILURE_REASONS:
            self.errors.labels(reason)
        for kind in (ObjectKind.DOMAIN, ObjectKind.ACCOUNT):
            self.managed.labels(kind)

    def observe_rotation(self, rotation: Mapping[str, Mapping[str, Any]]) -> None:
        """The stage, next step and problems of each rotating domain; gone domains lose their series."""
        for domain in self._rotating - set(rotation):
            for stage in STAGES:
                self.rotation_stage.remove(domain, stage)
            self.rotation_next.remove(domain)
            self.rotation_problems.remove(domain)
        self._rotating = set(rotation)
        for domain, info in rotation.items():
            for stage in STAGES:
                self.rotation_stage.labels(domain, stage).set(1 if info.get("stage") == stage else 0)
            pending = info.get("pending") or []
            earliest = pending[0].get("earliest") if pending else None
            self.rotation_next.labels(domain).set(datetime.fromisoformat(earliest).timestamp() if earliest else 0)
            publish = info.get("publish_result") or {}
            problems = len(info.get("problems") or []) + (0 if publish.get("ok", True) else 1)
            self.rotation_problems.labels(domain).set(problems)

    def observe(self, run: RunResult) -> None:
        self.reconciles.labels(run.result).inc()
        if run.plan_checksum is not None:
            self.observe_rotation(run.rotation)
        self.duration.observe(run.duration)
        self.suspended.set(1 if run.suspended else 0)
        if not run.ok:
            self.errors.labels(run.reason).inc()
            return
        self.last_success.set(run.started + run.duration)
        if run.drift:
            self.drift.inc()
        self.pending.set(run.counts.get("operations", 0) if run.result is Result.PLANNED else 0)
        if run.objects_managed is not None:
            for kind, n in run.objects_managed.items():
                self.managed.labels(kind).set(n)
        if run.result in (Result.APPLIED, Result.UNCHANGED):
            c: Mapping[str, Any] = run.commit or {}
            self.commit.info({"revision": run.revision or "", "sha": str(c.get("sha") or ""),
                              "subject": str(c.get("subject") or ""), "source": run.source or ""})

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))


# The loop beats at least every watch.BEAT_EVERY seconds while it waits, and at every stage (and
# DKIM key) of a run; no beat for STUCK_AFTER means it hangs. Longer than anything a run waits for
# without a beat: a git clone or fetch may take up to desired.source.NETWORK_TIMEOUT (10 min).
STUCK_AFTER = 30 * 60.0


class Health:
    """/healthz (liveness) and /readyz (readiness) of the watcher.

    Liveness means the loop is alive: it beat less than `stuck_after` ago. A failing reconcile is
    not a reason to restart the process (a restart fixes neither a bad commit nor a git server
    that is down, and would start the failure clock anew), so it never fails liveness.

    Readiness carries reconcile failures: ready while the last run succeeded (or is suspended),
    or failures began less than `grace` ago; not ready before the first success. The failure
    clock (`failing_since`) is taken from the status file on start, so a restart does not reset it.
    """

    def __init__(self, grace: float, *, stuck_after: float = STUCK_AFTER, clock: Callable[[], float] = time.time,
                 failing_since: float | None = None, last_success: float | None = None,
                 instance: str | None = None) -> None:
        self.grace = grace
        self.stuck_after = stuck_after
        self.clock = clock
        self.instance = instance
        self.started = clock()
        self._lock = threading.Lock()
        self._beat = self.started
        self._last: RunResult | None = None
        self._last_success = last_success
        self._failing_since = failing_since

    def beat(self) -> None:
        """The loop is alive (called as it waits and as a run moves on)."""
        with self._lock:
            self._beat = self.clock()

    def observe(self, run: RunResult) -> None:
        with self._lock:
            self._beat = self.clock()
            self._last = run
            if run.ok:
                self._last_success = run.started + run.duration
                self._failing_since = None
            elif self._failing_since is None:
                self._failing_since = run.started

    def live(self) -> tuple[int, dict[str, Any]]:
        """HTTP status code and JSON body of /healthz."""
        now = self.clock()
        with self._lock:
            quiet = now - self._beat
        ok = quiet <= self.stuck_after
        body: dict[str, Any] = {"status": "ok" if ok else "stuck", "loop_seconds_since_beat": round(quiet, 3)}
        if self.instance is not None:
            body["instance"] = self.instance
        return (200 if ok else 503), body

    def ready(self) -> tuple[int, dict[str, Any]]:
        """HTTP status code and JSON body of /readyz."""
        now = self.clock()
        with self._lock:
            last, success, failing = self._last, self._last_success, self._failing_since
        body: dict[str, Any] = {"last_success": iso(success) if success is not None else None}
        if self.instance is not None:
            body["instance"] = self.instance
        if failing is not None:
            ok = now - failing <= self.grace
            body.update(status="failing, within grace period" if ok else "failing", failing_since=iso(failing))
            if last is not None and not last.ok:
                body.update(result=last.result, reason=last.reason, error=last.message[:500])
        elif last is not None:
            ok = True
            body.update(status="ok", result=last.result, revision=last.revision)
        elif success is not None:
            ok = True
            body.update(status="ok (before the first run of this process)")
        else:
            ok = False
            body.update(status="starting: no reconcile has succeeded yet")
        return (200 if ok else 503), body


def parse_addr(addr: str, option: str = "--metrics-addr") -> tuple[str, int]:
    """HOST:PORT (IPv6 as [::1]:9100; an empty host means all interfaces)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ReconcilerError(f"{option} {addr!r}: expected HOST:PORT, e.g. 127.0.0.1:9100")
    return host.strip("[]"), int(port)


def bind_server(server: ThreadingHTTPServer, addr: tuple[str, int]) -> None:
    """Before binding: an IPv6 host needs an IPv6 socket."""
    if ":" in addr[0]:
        server.address_family = socket.AF_INET6


def respond(handler: BaseHTTPRequestHandler, code: int, ctype: str, data: bytes,
            headers: Mapping[str, str] | None = None) -> None:
    """One complete response with its length (both loop servers answer this way)."""
    handler.send_response(code)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(data)))
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(data)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, CONTENT_TYPE_LATEST, self.server.metrics.render())
        elif path in ("/healthz", "/readyz"):
            code, body = self.server.health.live() if path == "/healthz" else self.server.health.ready()
            self._send(code, "application/json", json.dumps(body).encode() + b"\n")
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found: try /metrics, /healthz or /readyz\n")

    def _send(self, code: int, ctype: str, data: bytes) -> None:
        respond(self, code, ctype, data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr: tuple[str, int], metrics: Metrics, health: Health) -> None:
        bind_server(self, addr)
        super().__init__(addr, _Handler)
        self.metrics = metrics
        self.health = health


class BackgroundServer:
    """An HTTP server (`make(host, port)`) on a daemon thread, for --OPTION HOST:PORT; `close` stops it."""

    def __init__(self, option: str, addr: str, name: str,
                 make: Callable[[tuple[str, int]], ThreadingHTTPServer]) -> None:
        self.host, port = parse_addr(addr, option)
        try:
            self._server = make((self.host, port))
        except OSError as e:
            raise ReconcilerError(f"{option} {addr}: cannot listen: {e.strerror or e}") from None
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class MetricsServer(BackgroundServer):
    """/metrics, /healthz and /readyz on a daemon thread; `close` stops it."""

    def __init__(self, addr: str, metrics: Metrics, health: Health) -> None:
        super().__init__("--metrics-addr", addr, "metrics", lambda a: _Server(a, metrics, health))
        log.info("metrics: serving /metrics, /healthz and /readyz on %s:%d", self.host or "*", self.port)
