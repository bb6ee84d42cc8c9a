"""Notifications: a JSON event (or a Slack-compatible `{"text": ...}`) POSTed to every `--notify`
URL when the watcher applied, failed, corrected drift, was blocked, recovered, or a DKIM rotation
stage changed.

Delivery never blocks a reconcile: `Notifier.emit` queues the event and returns; one daemon
thread per URL sends it, retrying connection errors, time-outs, 429 and 5xx with back-off (1 s,
2 s, 4 s ... up to `max_backoff`, `attempts` tries in all). Every delivery's outcome is counted
(`mox_reconciler_notifications_total{result}`); a full queue drops its oldest event. With
`--notify-secret-file` every body is signed: `X-Mox-Reconciler-Signature: sha256=<HMAC-SHA256 of
the body>` (the receiver's generic scheme checks the same). Events carry no secrets: operations
are their one-line descriptions (secrets never appear in them), and every text goes through
`redact` plus the removal of the notification and receiver secrets and the --notify URLs.

A failure that repeats (same revision, reason and message) is notified once, not at every retry.
Other parts of the watcher (DKIM rotation) notify through `Notifier.emit(Event(...))`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from reconciler import __version__
from reconciler.desired.source import redact
from reconciler.errors import ReconcilerError
from reconciler.loop.run import Delivery, Reason, Result, RunResult
from reconciler.loop.status import iso
from reconciler.plan.rotation import Stage as RotationStage
from reconciler.plan.rotation import StageChange

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Mox-Reconciler-Signature"
FORMATS = ("json", "slack")
EVENT_VERSION = 1


class EventType(StrEnum):
    """What happened (the event's `type`, the X-Mox-Reconciler-Event header)."""

    APPLIED = "applied"  # operations were written
    DRIFT_CORRECTED = "drift_corrected"  # the live config had been changed by hand; put back
    FAILED = "failed"  # a run failed (source, desired state, live config, write)
    BLOCKED = "blocked"  # the plan needs --force (unstated removals, too large a change)
    RECOVERED = "recovered"  # a run succeeded with nothing to write after a failed or blocked one
    ROTATION = "rotation"  # a DKIM rotation stage changed (details: domain, selector, stage)


_ICON = {EventType.APPLIED: ":white_check_mark:", EventType.DRIFT_CORRECTED: ":wrench:",
         EventType.FAILED: ":x:", EventType.BLOCKED: ":no_entry:", EventType.RECOVERED: ":large_green_circle:",
         EventType.ROTATION: ":key:"}


@dataclass(frozen=True)
class Event:
    """One notification. `instance` is filled in by the Notifier when empty."""

    type: EventType
    summary: str
    instance: str = ""
    revision: str | None = None
    commit: Mapping[str, Any] | None = None
    source: str | None = None
    operations: Sequence[str] = ()
    reason: str | None = None
    message: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_json(self) -> dict[str, Any]:
        c = self.commit or {}
        commit = {k: c.get(k) for k in ("sha", "subject", "author", "date")} if self.commit else None
        return {"version": EVENT_VERSION, "id": self.id, "type": self.type, "time": iso(self.time),
                "instance": self.instance, "source": self.source, "revision": self.revision, "commit": commit,
                "summary": self.summary, "operations": list(self.operations), "reason": self.reason,
                "message": self.message, "details": dict(self.details)}

    def text(self) -> str:
        """The event for a chat: one headline, then the operations or the error (Slack mrkdwn)."""
        sha = str((self.commit or {}).get("sha") or "")[:12]
        subject = (self.commit or {}).get("subject")
        at = f" at `{sha}`" + (f" ({subject})" if subject else "") if sha else ""
        lines = [f"{_ICON[self.type]} *{self.instance}* {self.type.replace('_', ' ')}{at}: {self.summary}"]
        shown = list(self.operations[:20])
        lines += [f"• {op}" for op in shown]
        if len(self.operations) > len(shown):
            lines.append(f"… and {len(self.operations) - len(shown)} more")
        if self.message:
            lines.append(f"```{self.message[:1500]}```")
        return "\n".join(lines)


def rotation_event(domain: str, stage: str, summary: str, **details: Any) -> Event:
    """The event of a DKIM rotation stage change (for the rotation code to `emit`)."""
    return Event(EventType.ROTATION, summary, details={"domain": domain, "stage": stage, **details})


def change_event(change: StageChange) -> Event:
    """The event of a rotating domain's stage change: the selector it is about (the new one while
    it is prepared and published, else the signing one) and where the rotation stands."""
    st = change.status
    new = change.after in (RotationStage.PREPARE, RotationStage.PUBLISH)
    selector = (st.next if new else st.signing) or ""
    return rotation_event(change.domain, change.after, change.message(), selector=selector, before=change.before,
                          signing=st.signing, next=st.next, retiring=list(st.retiring), problems=list(st.problems))


class RunEvents:
    """Which runs are worth a notification: applied / drift corrected (always), failed / blocked
    (once per distinct failure), recovered (the first success with nothing to write after one)."""

    def __init__(self) -> None:
        self._problem: tuple[object, ...] | None = None

    def observe(self, run: RunResult) -> Event | None:
        def event(kind: EventType, summary: str, **kw: Any) -> Event:
            return Event(kind, summary, revision=run.revision, commit=run.commit, source=run.source,
                         reason=run.reason, **kw)

        if not run.ok:
            kind = EventType.BLOCKED if run.reason is Reason.PLAN_UNSAFE else EventType.FAILED
            key = (kind, run.revision, run.reason, run.message)
            if key == self._problem:
                return None
            self._problem = key
            what = "needs --force" if kind is EventType.BLOCKED else f"failed in stage {run.stage}"
            return event(kind, f"{what} ({run.reason})", message=run.message, operations=run.operations)
        had_problem, self._problem = self._problem is not None, None
        if run.result is Result.APPLIED:
            kind = EventType.DRIFT_CORRECTED if run.drift else EventType.APPLIED
            return event(kind, run.summary, operations=run.operations)
        if had_problem and run.result is Result.UNCHANGED:
            return event(EventType.RECOVERED, "the live config matches the desired state again")
        return None


class _Sink:
    """One URL: a bounded queue and the thread that delivers it, with retries."""

    def __init__(self, url: str, notifier: Notifier) -> None:
        self.url = url
        parts = urlsplit(url)
        self.shown = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")  # no path: secret
        self.n = notifier
        self.queue: queue.Queue[tuple[Event, bytes] | None] = queue.Queue(maxsize=notifier.queue_size)
        self.thread = threading.Thread(target=self._run, name=f"notify {self.shown}", daemon=True)
        self.thread.start()

    def put(self, item: tuple[Event, bytes]) -> None:
        while True:
            try:
                self.queue.put_nowait(item)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    dropped = self.queue.get_nowait()
                    if dropped is not None:
                        self.n.count(Delivery.DROPPED)
                        log.warning("notify: %s is far behind; dropped the %s event %s", self.shown,
                                    dropped[0].type, dropped[0].id)

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            self._deliver(*item)

    def _deliver(self, event: Event, body: bytes) -> None:
        n = self.n
        headers = {"Content-Type": "application/json", "User-Agent": f"mox-reconciler/{__version__}",
                   "X-Mox-Reconciler-Event": str(event.type), "X-Mox-Reconciler-Delivery": event.id}
        if n.secret is not None:
            headers[SIGNATURE_HEADER] = "sha256=" + hmac.new(n.secret, body, hashlib.sha256).hexdigest()
        for attempt in range(1, n.attempts + 1):
            retry, why = self._send(body, headers)
            if why is None:
                n.count(Delivery.SENT)
                log.debug("notify: %s event %s sent to %s", event.type, event.id, self.shown)
                return
            if not retry or attempt == n.attempts or n.aborting.is_set():
                n.count(Delivery.FAILED)
                log.warning("notify: the %s event could not be sent to %s: %s (gave up after %d attempt%s)",
                            event.type, self.shown, why, attempt, "s" if attempt != 1 else "")
                return
            delay = min(n.max_backoff, n.backoff * 2.0 ** (attempt - 1))
            n.retried()
            log.info("notify: sending the %s event to %s failed: %s; retry %d of %d in %gs", event.type,
                     self.shown, why, attempt, n.attempts - 1, delay)
            if n.aborting.wait(delay):
                n.count(Delivery.FAILED)
                return

    def _send(self, body: bytes, headers: Mapping[str, str]) -> tuple[bool, str | None]:
        """(retry?, problem or None when delivered)."""
        req = urllib.request.Request(self.url, data=body, headers=dict(headers), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.n.timeout) as resp:
                resp.read(1024)
                return False, None
        except urllib.error.HTTPError as e:
            return e.code == 429 or e.code >= 500, f"HTTP {e.code}"
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            return True, self.n.scrub(str(reason) or type(e).__name__)


class Notifier:
    """Queues events for every URL and delivers them on background threads (see the module doc).
    `count(Delivery)` and `retried()` feed the metrics."""

    def __init__(self, urls: Sequence[str], *, instance: str, secret: bytes | None = None, fmt: str = "json",
                 hide: Iterable[bytes | str] = (), count: Callable[[Delivery], None] = lambda _d: None,
                 retried: Callable[[], None] = lambda: None, attempts: int = 5, backoff: float = 1.0,
                 max_backoff: float = 60.0, timeout: float = 10.0, queue_size: int = 100) -> None:
        if fmt not in FORMATS:
            raise ReconcilerError(f"--notify-format {fmt!r}: expected one of {', '.join(FORMATS)}")
        for url in urls:
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
                raise ReconcilerError(f"--notify {redact(url)!r}: expected an http:// or https:// URL")
        self.instance = instance
        self.secret = secret
        self.fmt = fmt
        self.count = count
        self.retried = retried
        self.attempts, self.backoff, self.max_backoff, self.timeout = attempts, backoff, max_backoff, timeout
        self.queue_size = queue_size
        self.aborting = threading.Event()
        words = [s.decode(errors="replace") if isinstance(s, bytes) else s for s in (*hide, *urls)]
        if secret is not None:
            words.append(secret.decode(errors="replace"))
        self._hidden = sorted({w for w in words if len(w) >= 4}, key=len, reverse=True)
        self._events = RunEvents()
        self._sinks = [_Sink(url, self) for url in urls]

    def scrub(self, text: str) -> str:
        """No secret leaves in an event: redact() plus our own secrets and the notify URLs."""
        text = redact(text)
        for word in self._hidden:
            text = text.replace(word, "***")
        return text

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, list):
            return [self._clean(v) for v in value]
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items()}
        return value

    def body(self, event: Event) -> bytes:
        """The bytes POSTed for `event` in this notifier's format (scrubbed)."""
        if self.fmt == "slack":
            return json.dumps({"text": self.scrub(event.text())}, ensure_ascii=False).encode()
        return json.dumps(self._clean(event.to_json()), ensure_ascii=False).encode()

    def emit(self, event: Event) -> None:
        """Queue `event` for every URL; returns at once."""
        if not event.instance:
            event = replace(event, instance=self.instance)
        body = self.body(event)
        for sink in self._sinks:
            sink.put((event, body))

    def observe(self, run: RunResult) -> None:
        """After every run: notify what is worth it (RunEvents), and every DKIM rotation stage change."""
        event = self._events.observe(run)
        if event is not None:
            self.emit(event)
        for change in run.rotation_changes:
            self.emit(change_event(change))

    def close(self, timeout: float = 30.0) -> None:
        """Deliver what is queued (at most `timeout` seconds, retries cut short after it), then stop."""
        for sink in self._sinks:
            sink.queue.put(None)
        deadline = time.monotonic() + timeout
        for sink in self._sinks:
            sink.thread.join(max(0.0, deadline - time.monotonic()))
        if any(s.thread.is_alive() for s in self._sinks):
            self.aborting.set()
            for sink in self._sinks:
                sink.thread.join(5)
