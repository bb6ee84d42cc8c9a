"""Notifications, delivered to a real loopback HTTP server: the JSON event and its HMAC signature,
the Slack body, retries with back-off (5xx, 429, a dead endpoint), no retry on 4xx, failures
counted, a slow endpoint never blocking the caller, secrets scrubbed, which runs notify."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from typing import Any

import pytest

from reconciler.loop.metrics import Metrics
from reconciler.loop.notify import SIGNATURE_HEADER, Event, EventType, Notifier, RunEvents, rotation_event
from reconciler.loop.run import Delivery, RunResult

from .httpcapture import Capture, capture_server

SECRET = b"notify-secret-0123456789"


def run(result: str = "applied", **kw: Any) -> RunResult:
    base: dict[str, Any] = {"trigger": "resync", "started": 1.0, "duration": 0.5, "result": result,
                            "reason": "ReconciliationSucceeded", "stage": "done", "revision": "abc123",
                            "commit": {"sha": "a" * 40, "subject": "add shop-a.example", "author": "A <a@x>",
                                       "date": "2026-01-01T00:00:00+00:00", "signed": None},
                            "source": "https://git.example.org/mail/fleet.git", "summary": "Plan: 1 to add.",
                            "operations": ("add domain shop-a.example for account anna",)}
    base.update(kw)
    return RunResult(**base)


def notifier(cap: Capture, metrics: Metrics | None = None, **kw: Any) -> Notifier:
    m = metrics or Metrics("mail-a")
    opts: dict[str, Any] = {"instance": "mail-a", "secret": SECRET, "backoff": 0.01,
                            "count": lambda d: m.notifications.labels(d).inc(),
                            "retried": m.notification_retries.inc, **kw}
    return Notifier([cap.url], **opts)


def signed(body: bytes, header: str) -> bool:
    return hmac.compare_digest(header, "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest())


def sample(m: Metrics, name: str) -> float:
    for line in m.render().decode().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}")


def test_json_event_signed() -> None:
    with capture_server() as cap:
        n = notifier(cap)
        n.observe(run())
        n.close()
        (req,) = cap.requests
    assert signed(req.body, req.headers[SIGNATURE_HEADER])
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["X-Mox-Reconciler-Event"] == "applied"
    event = json.loads(req.body)
    assert event["type"] == "applied" and event["instance"] == "mail-a" and event["version"] == 1
    assert event["commit"] == {"sha": "a" * 40, "subject": "add shop-a.example", "author": "A <a@x>",
                               "date": "2026-01-01T00:00:00+00:00"}
    assert event["operations"] == ["add domain shop-a.example for account anna"]
    assert event["summary"] == "Plan: 1 to add." and event["revision"] == "abc123"
    assert req.headers["X-Mox-Reconciler-Delivery"] == event["id"]
    # A body changed in transit no longer matches its signature.
    assert not signed(req.body.replace(b"mail-a", b"mail-b"), req.headers[SIGNATURE_HEADER])


def test_slack_format_and_no_signature_without_secret() -> None:
    with capture_server() as cap:
        n = notifier(cap, fmt="slack", secret=None)
        n.observe(run("failed", reason="DesiredInvalid", stage="plan", message="a.yaml:4:1: YAML syntax error"))
        n.close()
        (req,) = cap.requests
    assert SIGNATURE_HEADER not in req.headers
    body = json.loads(req.body)
    assert list(body) == ["text"]
    assert body["text"].startswith(":x: *mail-a* failed at `aaaaaaaaaaaa` (add shop-a.example): failed in stage plan")
    assert "a.yaml:4:1: YAML syntax error" in body["text"]


def test_retries_with_backoff_then_sent_and_counted() -> None:
    m = Metrics("mail-a")
    with capture_server() as cap:
        cap.codes = [500, 429, 503]
        n = notifier(cap, m)
        n.observe(run())
        n.close()
        assert len(cap.requests) == 4 and len({r.body for r in cap.requests}) == 1  # the same delivery
    assert sample(m, "mox_reconciler_notifications_total{instance=\"mail-a\",result=\"sent\"}") == 1
    assert sample(m, "mox_reconciler_notification_retries_total") == 3


def test_client_errors_are_not_retried_and_failures_counted() -> None:
    m = Metrics("mail-a")
    with capture_server() as cap:
        cap.codes = [404]
        n = notifier(cap, m)
        n.observe(run())
        n.close()
        assert len(cap.requests) == 1
    assert sample(m, "mox_reconciler_notifications_total{instance=\"mail-a\",result=\"failed\"}") == 1


def test_dead_endpoint_gives_up_after_the_attempts() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    m = Metrics("mail-a")
    n = Notifier([f"http://127.0.0.1:{port}/x"], instance="mail-a", attempts=3, backoff=0.01,
                 count=lambda d: m.notifications.labels(d).inc(), retried=m.notification_retries.inc)
    n.emit(Event(EventType.APPLIED, "x"))
    n.close()
    assert sample(m, "mox_reconciler_notifications_total{instance=\"mail-a\",result=\"failed\"}") == 1
    assert sample(m, "mox_reconciler_notification_retries_total") == 2


def test_a_slow_endpoint_never_blocks_emit_and_a_full_queue_drops_the_oldest() -> None:
    m = Metrics("mail-a")
    with capture_server() as cap:
        cap.hold.clear()  # the endpoint takes every request and does not answer
        n = notifier(cap, m, queue_size=2)
        n.emit(Event(EventType.APPLIED, "first"))
        for i in range(5):  # each returns at once although nothing was answered yet
            n.emit(Event(EventType.APPLIED, f"more {i}"))
        assert cap.requests == []
        cap.hold.set()
        n.close()
        received = [json.loads(r.body)["summary"] for r in cap.requests]
    assert received[-2:] == ["more 3", "more 4"]  # the newest are kept
    dropped = sample(m, "mox_reconciler_notifications_total{instance=\"mail-a\",result=\"dropped\"}")
    assert dropped == 6 - len(received) and dropped >= 2


def test_no_secret_leaves_in_an_event() -> None:
    receiver_secret = b"receiver-secret-abcdef"
    with capture_server() as cap:
        url = cap.url + "/T000/B000/slack-path-secret"
        n = Notifier([url], instance="mail-a", secret=SECRET, hide=[receiver_secret], backoff=0.01)
        message = (f"fetch https://deploy:tok-123456@git.example.org/x.git failed; {receiver_secret.decode()}; "
                   f"{SECRET.decode()}; posting to {url}")
        n.observe(run("failed", reason="SourceFailed", stage="fetch", message=message))
        n.close()
        (req,) = cap.requests
    text = req.body.decode()
    for secret in ("tok-123456", receiver_secret.decode(), SECRET.decode(), "slack-path-secret"):
        assert secret not in text
    assert "https://***@git.example.org/x.git" in json.loads(text)["message"]


@pytest.mark.parametrize("fmt", ["json", "slack"])
def test_rotation_events_through_emit(fmt: str) -> None:
    with capture_server() as cap:
        n = notifier(cap, fmt=fmt)
        n.emit(rotation_event("example.com", "switch", "example.com now signs with 2026b", selector="2026b"))
        n.close()
        (req,) = cap.requests
    body = json.loads(req.body)
    if fmt == "json":
        assert body["type"] == "rotation" and body["instance"] == "mail-a"
        assert body["details"] == {"domain": "example.com", "stage": "switch", "selector": "2026b"}
    else:
        assert body["text"] == ":key: *mail-a* rotation: example.com now signs with 2026b"


def test_which_runs_notify() -> None:
    ev = RunEvents()
    kinds = []
    for r in (run(), run("unchanged"), run(drift=True), run("failed", reason="SourceFailed", message="down"),
              run("failed", reason="SourceFailed", message="down"),  # the same failure again: once
              run("failed", reason="SourceFailed", message="still down"),
              run("unchanged"), run("unchanged"),
              run("failed", reason="PlanUnsafe", message="needs --force"), run(),
              run("planned", suspended=True)):
        e = ev.observe(r)
        kinds.append(e.type if e else None)
    assert kinds == [EventType.APPLIED, None, EventType.DRIFT_CORRECTED, EventType.FAILED, None, EventType.FAILED,
                     EventType.RECOVERED, None, EventType.BLOCKED, EventType.APPLIED, None]


def test_bad_options() -> None:
    from reconciler.errors import ReconcilerError

    with pytest.raises(ReconcilerError, match="expected an http:// or https:// URL"):
        Notifier(["ftp://x/y"], instance="a")
    with pytest.raises(ReconcilerError, match="--notify-format"):
        Notifier(["http://x/y"], instance="a", fmt="xml")
    assert set(Delivery) == {"sent", "failed", "dropped"}
