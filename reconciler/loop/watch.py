"""The GitOps loop: `reconcile_once` (the same pipeline as `apply`) run on start, on change and
at every interval, with backoff after failures.

Triggers: a local checkout is watched with watchfiles (desired *.yaml files and git's HEAD/refs,
debounced); a remote is fetched at every interval. Every interval there is a full resync, which
also corrects drift (hand edits of domains.conf, mox's admin pages). A failed run is retried after
1 s, 2 s, 4 s ... but never later than the interval; a bad commit is reported and nothing is
written, so the last good state stays applied. Stopping (SIGTERM/SIGINT) takes effect between
runs, never in the middle of one. Clock and waiting are injected so the schedule is unit-tested.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Protocol

from reconciler.desired.source import Source
from reconciler.errors import REPORTED, DesiredStateError, LiveConfigError, SourceError, UnsafePlan
from reconciler.loop.status import (
    APPLIED,
    APPLY_FAILED,
    DESIRED_INVALID,
    FAILED,
    LIVE_UNREADABLE,
    PLAN_UNSAFE,
    PLANNED,
    SOURCE_FAILED,
    SUCCEEDED,
    SUSPENDED,
    UNCHANGED,
    RunResult,
    StatusBook,
)
from reconciler.mox.live import ConfigPaths
from reconciler.pipeline import apply_prepared, check_safety, desired_digest, prepare

log = logging.getLogger(__name__)

DEFAULT_BACKOFF = 1.0  # seconds before the first retry; doubles, capped at the interval


@dataclass(frozen=True)
class WatchOptions:
    """What every run needs; `resolve` fetches/re-reads the source (raises SourceError)."""

    paths: ConfigPaths
    resolve: Callable[[], Source]
    force: bool = False
    reports_dir: Path | None = None
    suspend_file: Path | None = None


def revision_of(source: Source) -> str:
    """The desired state's identity: the commit, plus a digest when files are uncommitted
    (a plain directory is its digest alone)."""
    if source.commit is None:
        return f"sha256:{desired_digest(source.path)[:16]}"
    if source.dirty:
        return f"{source.commit.sha}+dirty.sha256:{desired_digest(source.path)[:16]}"
    return source.commit.sha


def _managed(objects: Sequence[str]) -> dict[str, int]:
    out = {"domain": 0, "account": 0}
    for o in objects:
        kind = o.split("/", 1)[0]
        out[kind] = out.get(kind, 0) + 1
    return out


def _reason(stage: str, e: BaseException) -> str:
    if isinstance(e, SourceError):
        return SOURCE_FAILED
    if isinstance(e, LiveConfigError):
        return LIVE_UNREADABLE
    if isinstance(e, UnsafePlan):
        return PLAN_UNSAFE
    if isinstance(e, DesiredStateError):
        return DESIRED_INVALID
    # Anything else while planning means the desired state cannot be made from this live config.
    return {"fetch": SOURCE_FAILED, "plan": DESIRED_INVALID, "safety": PLAN_UNSAFE}.get(stage, APPLY_FAILED)


def reconcile_once(opts: WatchOptions, book: StatusBook, trigger: str = "once", *,
                   clock: Callable[[], float] = time.time) -> RunResult:
    """Fetch, plan, check safety, apply (unless suspended); record and write the status.

    Never raises for a failed run: the failure is the result (reason per stage), logged, and in
    the status file. Only the stage that failed decides the reason, so SourceFailed means no
    desired state was even read.
    """
    started = clock()
    t0 = time.monotonic()
    stage = "fetch"
    ctx: dict[str, Any] = {"trigger": trigger}
    at = ""  # " [<commit>]" in text log lines; JSON lines carry commit and revision fields
    source: Source | None = None
    revision: str | None = None
    counts: dict[str, int] = {}
    checksum: str | None = None
    drift = False
    managed: dict[str, int] | None = None
    suspended = False  # looked at right before applying, so a file created mid-run still counts

    def done(result: str, reason: str, message: str = "") -> RunResult:
        run = RunResult(trigger=trigger, started=started, duration=time.monotonic() - t0, result=result,
                        reason=reason, stage=stage, message=message, revision=revision,
                        commit=source.commit.to_json() if source is not None and source.commit else None,
                        source=source.location if source is not None else None, counts=counts,
                        plan_checksum=checksum, objects_managed=managed, drift=drift,
                        suspended=suspended or (result == FAILED and opts.suspend_file is not None
                                                and opts.suspend_file.exists()))
        book.record(run, clock())
        book.write()
        return run

    try:
        source = opts.resolve()
        revision = revision_of(source)
        ctx.update(commit=source.commit.sha if source.commit else None, revision=revision)
        at = f" [{source.commit.sha[:12]}]" if source.commit else ""
        log.info("fetch: %s", source.describe(), extra={"stage": "fetch", **ctx})
        stage = "plan"
        prepared = prepare(opts.paths, source)
        plan = prepared.plan
        counts = {**plan.counts(), "operations": len(plan.steps)}
        checksum = plan.checksum()
        drift = not plan.empty and revision == book.last_applied_revision
        log.info("plan%s: %s%s", at, plan.summary(), " (drift: the live config was changed outside the reconciler)"
                 if drift else "", extra={"stage": "plan", "drift": drift, "plan_checksum": checksum, **ctx})
        suspended = opts.suspend_file is not None and opts.suspend_file.exists()
        if suspended:
            stage = "done"
            if plan.empty:
                managed = _managed(sorted(plan.inventory_after))
                return done(UNCHANGED, SUCCEEDED, "suspended; nothing to apply")
            log.warning("apply%s: suspended while %s exists; %d operation(s) not applied", at, opts.suspend_file,
                        len(plan.steps), extra={"stage": "apply", "suspended": True, **ctx})
            return done(PLANNED, SUSPENDED, f"suspended while {opts.suspend_file} exists")
        stage = "safety"
        check_safety(prepared.doc, force=opts.force)
        stage = "apply"
        outcome = apply_prepared(prepared, force=opts.force, reports_dir=opts.reports_dir)
        managed = _managed(outcome.doc.inventory_after)
        stage = "done"
        if outcome.batch is None:
            if outcome.inventory_changed:
                log.info("apply%s: inventory updated", at, extra={"stage": "apply", **ctx})
            return done(UNCHANGED, SUCCEEDED)
        log.info("apply%s: applied %d operation(s) to %s", at, len(outcome.operations), outcome.batch.path,
                 extra={"stage": "apply", "operations": len(outcome.operations), **ctx})
        for path in outcome.reports:
            log.info("apply%s: DNS records written to %s", at, path, extra={"stage": "apply", **ctx})
        return done(APPLIED, SUCCEEDED)
    except Exception as e:  # a long-running loop reports every failure and goes on
        reason = _reason(stage, e)
        message = str(e) if isinstance(e, REPORTED) else f"internal error: {type(e).__name__}: {e}"
        log.error("%s%s: %s (%s)", stage if stage != "done" else "apply", at, message, reason,
                  exc_info=not isinstance(e, REPORTED),
                  extra={"stage": stage, "reason": reason, **ctx})
        return done(FAILED, reason, message)


# ---------------------------------------------------------------------------------------------
# Scheduling


@dataclass
class Schedule:
    """When the next run is due and why: resync/retry timer, or a debounced change."""

    interval: float
    debounce: float
    backoff: float = DEFAULT_BACKOFF
    failures: int = 0
    resync_at: float = 0.0
    change_at: float | None = None

    def ran(self, now: float, ok: bool) -> float:
        """After a run: the delay until the next resync (or retry)."""
        self.change_at = None
        self.failures = 0 if ok else self.failures + 1
        delay = self.interval if ok else self.retry_delay()
        self.resync_at = now + delay
        return delay

    def retry_delay(self) -> float:
        return min(self.interval, self.backoff * 2.0 ** min(self.failures - 1, 62))

    def changed(self, now: float) -> None:
        """A change was seen: run once nothing more changed for `debounce` seconds."""
        self.change_at = now + self.debounce

    def next(self) -> tuple[float, str]:
        if self.change_at is not None and self.change_at <= self.resync_at:
            return self.change_at, "change"
        return self.resync_at, "retry" if self.failures else "resync"


class Waker(Protocol):
    """What the loop waits on: a stop request, a change notice, or a timeout."""

    def stopping(self) -> bool: ...
    def wait(self, timeout: float) -> None: ...
    def take_changed(self) -> bool: ...


class Wakeup:
    """The real Waker: an Event set by the file watcher thread and the signal handlers."""

    def __init__(self) -> None:
        self.stop_requested = False
        self._changed = False
        self._event = threading.Event()

    def stopping(self) -> bool:
        return self.stop_requested

    def request_stop_from_signal(self) -> None:
        """Safe in a signal handler: the Event's lock is taken by another thread, never re-entered."""
        self.stop_requested = True
        threading.Thread(target=self._event.set, daemon=True).start()

    def notify_change(self) -> None:
        self._changed = True
        self._event.set()

    def wait(self, timeout: float) -> None:
        self._event.wait(timeout)
        self._event.clear()

    def take_changed(self) -> bool:
        changed, self._changed = self._changed, False
        return changed


def run_loop(run: Callable[[str], RunResult], schedule: Schedule, waker: Waker,
             monotonic: Callable[[], float] = time.monotonic) -> RunResult | None:
    """Run on start, then whenever due, until a stop is requested; returns the last result."""
    if waker.stopping():
        return None
    last = run("start")
    delay = schedule.ran(monotonic(), last.ok)
    if not last.ok:
        log.info("retrying in %gs (failure %d)", delay, schedule.failures, extra={"retry_in": delay})
    while not waker.stopping():
        now = monotonic()
        if waker.take_changed():
            schedule.changed(now)
        due, trigger = schedule.next()
        if now < due:
            waker.wait(due - now)
            continue
        last = run(trigger)
        delay = schedule.ran(monotonic(), last.ok)
        if not last.ok:
            log.info("retrying in %gs (failure %d)", delay, schedule.failures, extra={"retry_in": delay})
    log.info("stopping: stop requested")
    return last


# ---------------------------------------------------------------------------------------------
# File watching (local sources)


def desired_change(_change: object, path: str) -> bool:
    """Changes that can alter the desired state: YAML files, and git's HEAD and refs (commits,
    checkouts, resets), which watchfiles' default filter would hide with the rest of .git."""
    parts = PurePath(path).parts
    if ".git" in parts:
        rest = parts[parts.index(".git") + 1:]
        return bool(rest) and rest[0] in ("HEAD", "refs", "packed-refs")
    return PurePath(path).suffix in (".yaml", ".yml")


def watch_paths(source: Source) -> list[Path]:
    """What to watch for a local source: the work tree (with its .git) or the plain directory."""
    if source.remote:
        return []
    return [source.repo_dir if source.repo_dir is not None else source.path]


class FileWatcher:
    """watchfiles on a daemon thread; every relevant change wakes the loop."""

    def __init__(self, paths: Sequence[Path], waker: Wakeup) -> None:
        import watchfiles

        self._stop = threading.Event()
        self.paths = list(paths)

        def loop() -> None:
            try:
                for _ in watchfiles.watch(*self.paths, watch_filter=desired_change, debounce=200,
                                          stop_event=self._stop, raise_interrupt=False, rust_timeout=1000):
                    log.debug("change seen under %s", ", ".join(map(str, self.paths)))
                    waker.notify_change()
            except Exception as e:  # resyncs still run at the interval
                log.warning("file watching stopped: %s; changes are picked up at the next interval", e)

        self._thread = threading.Thread(target=loop, name="watchfiles", daemon=True)
        self._thread.start()
        log.info("watching %s for changes", ", ".join(map(str, self.paths)))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
