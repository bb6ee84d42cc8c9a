"""The GitOps loop: `reconcile_once` (the same pipeline as `apply`) run on start, on change, on
request (a signed push at the receiver, SIGHUP) and at every interval, with backoff after failures.

Triggers: a local checkout is watched with watchfiles (desired *.yaml files and git's HEAD/refs,
debounced); a remote is fetched at every interval. Every interval there is a full resync, which
also corrects drift (hand edits of domains.conf, mox's admin pages). A failed run is retried after
1 s, 2 s, 4 s ... but never later than the interval; a bad commit is reported and nothing is
written, so the last good state stays applied. Stopping (SIGTERM/SIGINT) takes effect between
runs, never in the middle of one. Clock and waiting are injected so the schedule is unit-tested.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any, Protocol

from reconciler.apply.confirm import LoadNotConfirmed
from reconciler.desired.source import Source
from reconciler.dns.rotation import DNSAccess
from reconciler.errors import REPORTED, DesiredStateError, LiveConfigError, SourceError, UnsafePlan
from reconciler.loop.run import Reason, Result, RunResult, Stage, Trigger
from reconciler.loop.status import StatusBook
from reconciler.mox.admin import now_local, release_configs
from reconciler.mox.config import Dynamic
from reconciler.mox.live import ConfigPaths
from reconciler.pipeline import (
    Caches,
    Outcome,
    Prepared,
    RecalledMoved,
    apply_prepared,
    apply_recalled,
    check_safety,
    desired_digest,
    prepare,
)
from reconciler.plan.document import PlanDocument
from reconciler.plan.objects import ObjectKind, ObjectRef
from reconciler.plan.passwords import SetPassword
from reconciler.plan.rotation import StageChange
from reconciler.planmemo import PlanMemo, say_recalled

log = logging.getLogger(__name__)

DEFAULT_BACKOFF = 1.0  # seconds before the first retry; doubles, capped at the interval
BEAT_EVERY = 30.0  # the loop shows it is alive (heartbeat) at least this often while it waits


@dataclass
class Kept:
    """What a watcher keeps from one run for the next besides its caches: domains.conf as the last
    run left it, parsed, so a run answered from the plan memo confirms it with mox without parsing
    it again (dropped before a run plans, which parses the file itself)."""

    live: tuple[bytes, Dynamic] | None = None


@dataclass(frozen=True)
class WatchOptions:
    """What every run needs; `resolve` fetches/re-reads the source (raises SourceError)."""

    paths: ConfigPaths
    resolve: Callable[[], Source]
    force: bool = False
    reports_dir: Path | None = None
    suspend_file: Path | None = None
    heartbeat: Callable[[], None] | None = None  # called as a run moves on (liveness)
    caches: Caches = field(default_factory=Caches)  # kept across runs: key verdicts, key threads
    dns: DNSAccess = field(default_factory=DNSAccess)  # DKIM rotation: resolver and publisher
    clock: Callable[[], datetime] | None = None  # the time of a run (`--now`); None: the real time
    # Plans with nothing to do, remembered with their inputs (`reconciler.planmemo`); None: none kept.
    memo: PlanMemo | None = None
    kept: Kept = field(default_factory=Kept)


def revision_of(source: Source, digest: str | None = None) -> str:
    """The desired state's identity: the commit, plus a digest when files are uncommitted
    (a plain directory is its digest alone). `digest`: the desired digest of the plan made from
    `source` (its document's `desired_digest`), else the files are read again for it."""
    if source.commit is not None and not source.dirty:
        return source.commit.sha
    digest = digest or desired_digest(source.path, source.root)
    if source.commit is None:
        return f"sha256:{digest[:16]}"
    return f"{source.commit.sha}+dirty.sha256:{digest[:16]}"


def _managed(objects: Iterable[ObjectRef]) -> dict[str, int]:
    """Owned objects by kind, for the status file and the metrics."""
    out = {str(ObjectKind.DOMAIN): 0, str(ObjectKind.ACCOUNT): 0}
    for o in objects:
        out[o.kind] = out.get(o.kind, 0) + 1
    return out


def _reason(stage: Stage, e: BaseException) -> Reason:
    """The reason of a failure: by the kind of error, else by the stage it happened in."""
    if isinstance(e, SourceError):
        return Reason.SOURCE_FAILED
    if isinstance(e, LiveConfigError):
        return Reason.LIVE_UNREADABLE
    if isinstance(e, UnsafePlan):
        return Reason.PLAN_UNSAFE
    if isinstance(e, DesiredStateError):
        return Reason.DESIRED_INVALID
    # Anything else while planning means the desired state cannot be made from this live config.
    by_stage = {Stage.FETCH: Reason.SOURCE_FAILED, Stage.PLAN: Reason.DESIRED_INVALID, Stage.SAFETY: Reason.PLAN_UNSAFE}
    return by_stage.get(stage, Reason.APPLY_FAILED)


def reconcile_once(opts: WatchOptions, book: StatusBook, trigger: Trigger = Trigger.ONCE, *,
                   clock: Callable[[], float] = time.time) -> RunResult:
    """Fetch, plan, check safety, apply (unless suspended); record and write the status.

    Never raises for a failed run: the failure is the result (reason per stage), logged, and in
    the status file. Only the stage that failed decides the reason, so SourceFailed means no
    desired state was even read.
    """
    run = _Run(opts, book, Trigger(trigger), clock)
    try:
        planned = run.plan(run.fetch())
        held = run.hold_if_suspended(planned)
        if held is not None:
            return held
        run.check_safety(planned)
        return run.apply(planned)
    except Exception as e:  # a long-running loop reports every failure and goes on
        return run.failed(e)
    finally:
        if opts.caches.maker is not None:
            opts.caches.maker.discard()  # keys of a plan that was not applied
        release_configs()  # the next run parses its configs anew: keep none of this one's alive


@dataclass(frozen=True)
class _Planned:
    """A run's plan: made now (`prepared`), or recalled from the plan memo (`prepared` None: a
    plan with no operations and no DKIM rotation, its document alone)."""

    doc: PlanDocument
    prepared: Prepared | None


class _Run:
    """One run's stages, each entered by name (`stage` is where a failure happened), and what
    they found so far, which goes into the RunResult however the run ends."""

    def __init__(self, opts: WatchOptions, book: StatusBook, trigger: Trigger, clock: Callable[[], float]) -> None:
        self.opts = opts
        self.book = book
        self.trigger = trigger
        self.clock = clock
        self.started = clock()
        self.t0 = time.monotonic()
        self.stage = Stage.FETCH
        self.source: Source | None = None
        self.revision: str | None = None
        self.counts: dict[str, int] = {}
        self.summary = ""
        self.operations: tuple[str, ...] = ()
        self.checksum: str | None = None
        self.drift = False
        self.managed: dict[str, int] | None = None
        self.suspended = False  # looked at right before applying, so a file created mid-run still counts
        self.rotation: dict[str, dict[str, Any]] = {}  # DKIM rotation per domain (the plan document's, as JSON)
        self.rotation_changes: tuple[StageChange, ...] = ()
        self.confirmation: str | None = None  # whether the running mox holds the result (RunResult)
        self._fetch_logged = False

    def _extra(self, stage: Stage, **fields: Any) -> dict[str, Any]:
        """Log fields: the stage, the trigger and (once fetched) the commit and revision."""
        extra: dict[str, Any] = {"stage": stage, **fields, "trigger": self.trigger}
        if self.source is not None:
            extra.update(commit=self.source.commit.sha if self.source.commit else None, revision=self.revision)
        return extra

    @property
    def _at(self) -> str:
        """" [<commit>]" in text log lines (JSON lines carry commit and revision fields)."""
        commit = self.source.commit if self.source is not None else None
        return f" [{commit.sha[:12]}]" if commit is not None else ""

    def _enter(self, stage: Stage) -> None:
        self.stage = stage
        if self.opts.heartbeat is not None:
            self.opts.heartbeat()

    def fetch(self) -> Source:
        self._enter(Stage.FETCH)
        source = self.opts.resolve()
        self.source = source
        if source.commit is not None and not source.dirty:
            self.revision = revision_of(source)
            self._log_fetch()
        # Else the revision is the desired state's digest, which the plan reads the files for: the
        # fetch line waits for it (`_log_fetch`) rather than have every file read a second time.
        return source

    def _log_fetch(self) -> None:
        if self.source is not None and not self._fetch_logged:
            self._fetch_logged = True
            log.info("fetch: %s", self.source.describe(), extra=self._extra(Stage.FETCH))

    def plan(self, source: Source, *, recall: bool = True) -> _Planned:
        self._enter(Stage.PLAN)
        clock = self.opts.clock
        # --now plans for another time: never remembered nor recalled (as `plan --now`).
        memo = self.opts.memo if clock is None else None
        recalled = memo.recall(self.opts.paths, source, None, now_local(), announce=False) \
            if memo is not None and recall else None
        if recalled is not None:
            for warning in recalled.warnings:  # as loading the desired state logs them
                logging.getLogger("reconciler.desired.load").warning("%s", warning)
            planned = _Planned(recalled.doc, None)
        else:
            self.opts.kept.live = None  # the plan parses domains.conf itself: one parse held at a time
            prepared = prepare(self.opts.paths, source, now=clock() if clock is not None else None,
                               caches=self.opts.caches, dns=self.opts.dns, recording=True, memo=memo)
            planned = _Planned(prepared.doc, prepared)
        doc = planned.doc
        if source.commit is None or source.dirty:
            self.revision = revision_of(source, doc.desired_digest)
        self._log_fetch()
        if recalled is not None:
            say_recalled(recalled)
        self.rotation = {info.domain: info.model_dump(mode="json") for info in doc.dkim_rotation}
        summary = doc.summary
        self.counts = {"create": summary.create, "update": summary.update, "delete": summary.delete,
                       "operations": len(doc.changes)}
        self.summary = summary.text
        self.operations = tuple(c.description for c in doc.changes)
        self.checksum = doc.checksum
        # Drift: changes at the revision already applied. A password to set is not drift (its secret
        # changed, or mox could not take it yet), nor is a DKIM rotation's own step.
        config_steps = any(c.operation.op != SetPassword.__name__ for c in doc.changes)
        rotating = planned.prepared is not None and any(st.actions for st in planned.prepared.plan.rotations)
        self.drift = config_steps and not rotating and self.revision == self.book.last_applied_revision
        log.info("plan%s: %s%s", self._at, summary.text,
                 " (drift: the live config was changed outside the reconciler)" if self.drift else "",
                 extra=self._extra(Stage.PLAN, drift=self.drift, plan_checksum=self.checksum))
        return planned

    def hold_if_suspended(self, planned: _Planned) -> RunResult | None:
        """While the suspend file exists the run ends here: planned, nothing applied."""
        suspend = self.opts.suspend_file
        self.suspended = suspend is not None and suspend.exists()
        if not self.suspended:
            return None
        self.stage = Stage.DONE
        doc = planned.doc
        if not doc.changes:
            self.managed = _managed(doc.inventory_after)
            return self.finish(Result.UNCHANGED, Reason.SUCCEEDED, "suspended; nothing to apply")
        log.warning("apply%s: suspended while %s exists; %d operation(s) not applied", self._at, suspend,
                    len(doc.changes), extra=self._extra(Stage.APPLY, suspended=True))
        return self.finish(Result.PLANNED, Reason.SUSPENDED, f"suspended while {suspend} exists")

    def check_safety(self, planned: _Planned) -> None:
        self._enter(Stage.SAFETY)
        check_safety(planned.doc, force=self.opts.force)

    def _apply(self, planned: _Planned) -> Outcome:
        """The apply of a plan made now, or of a recalled one (planned again, and that plan
        applied, when domains.conf or the inventory changed since it was made)."""
        opts = self.opts
        beat = opts.heartbeat
        progress = (lambda _done, _total: beat()) if beat is not None else None
        if planned.prepared is None:
            try:
                return apply_recalled(opts.paths, planned.doc, force=opts.force, reports_dir=opts.reports_dir,
                                      progress=progress, caches=opts.caches, publisher=opts.dns.publisher,
                                      known=(opts.kept.live,) if opts.kept.live is not None else ())
            except RecalledMoved as e:
                log.info("apply%s: %s; planning again", self._at, e, extra=self._extra(Stage.APPLY))
                assert self.source is not None
                planned = self.plan(self.source, recall=False)
                self.check_safety(planned)
                self._enter(Stage.APPLY)
        assert planned.prepared is not None
        return apply_prepared(planned.prepared, force=opts.force, reports_dir=opts.reports_dir, progress=progress)

    def apply(self, planned: _Planned) -> RunResult:
        self._enter(Stage.APPLY)
        outcome = self._apply(planned)
        if self.opts.memo is not None:  # for the next run, if the memo answers it
            state = outcome.applied.batches[-1].state
            self.opts.kept.live = (state.data, state.dynamic)
        self.managed = _managed(outcome.doc.inventory_after)
        self.rotation_changes = outcome.rotation_changes
        for p in outcome.published:
            self.rotation.setdefault(p.domain, {})["publish_result"] = {"ok": p.ok, "text": p.text}
        self.confirmation = outcome.confirmation.message
        log.info("apply%s: %s", self._at, self.confirmation,
                 extra=self._extra(Stage.APPLY, confirmation=str(outcome.confirmation.status)))
        if outcome.written:
            log.info("apply%s: applied %d operation(s) to %s%s", self._at, len(outcome.operations), outcome.path,
                     f" (mox wrote over it {outcome.rewrites}x first: applied again)" if outcome.rewrites else "",
                     extra=self._extra(Stage.APPLY, operations=len(outcome.operations)))
            self.log_operations(outcome)
            for path in outcome.reports:
                log.info("apply%s: DNS records written to %s", self._at, path, extra=self._extra(Stage.APPLY))
            for domain, records in outcome.records_to_delete.items():
                log.warning("apply%s: %s is no longer hosted: delete its DNS records: %s", self._at, domain,
                            "; ".join(records) or "(none published)", extra=self._extra(Stage.APPLY, domain=domain))
        elif outcome.inventory_changed:
            log.info("apply%s: inventory updated", self._at, extra=self._extra(Stage.APPLY))
        for result in outcome.passwords:
            if result.set:
                log.info("apply%s: %s", self._at, result.describe(), extra=self._extra(Stage.APPLY))
        if outcome.passwords_pending:
            # The config is applied; the password waits for mox: retried like any failure.
            message = "; ".join(r.describe() for r in outcome.passwords_pending)
            log.error("apply%s: %s (%s)", self._at, message, Reason.PASSWORD_PENDING,
                      extra=self._extra(Stage.APPLY, reason=Reason.PASSWORD_PENDING))
            return self.finish(Result.FAILED, Reason.PASSWORD_PENDING, message)
        self.stage = Stage.DONE
        if not outcome.written and not outcome.passwords:
            return self.finish(Result.UNCHANGED, Reason.SUCCEEDED)
        return self.finish(Result.APPLIED, Reason.SUCCEEDED)

    def log_operations(self, outcome: Outcome) -> None:
        """One line per operation written (in order), destructive ones marked: what the watcher
        changed, in its own log, weeks later. Passwords are logged as they are set."""
        changes = [c for c in outcome.doc.changes if c.operation.op != SetPassword.__name__]
        total = len(changes)
        for i, c in enumerate(changes, 1):
            mark = "DESTRUCTIVE " if c.destructive else ""
            log.log(logging.WARNING if c.destructive else logging.INFO, "apply%s: [%d/%d] %s%s: %s", self._at, i,
                    total, mark, c.object, c.description,
                    extra=self._extra(Stage.APPLY, object=str(c.object), action=str(c.action),
                                      destructive=c.destructive))

    def failed(self, e: Exception) -> RunResult:
        if self.source is not None and self.revision is None:  # the plan did not get to the digest
            with contextlib.suppress(*REPORTED, OSError):
                self.revision = revision_of(self.source)
            self._log_fetch()
        reason = _reason(self.stage, e)
        message = str(e) if isinstance(e, REPORTED) else f"internal error: {type(e).__name__}: {e}"
        if isinstance(e, LoadNotConfirmed):
            self.confirmation = message
        shown = self.stage if self.stage is not Stage.DONE else Stage.APPLY
        log.error("%s%s: %s (%s)", shown, self._at, message, reason, exc_info=not isinstance(e, REPORTED),
                  extra=self._extra(self.stage, reason=reason))
        return self.finish(Result.FAILED, reason, message)

    def finish(self, result: Result, reason: Reason, message: str = "") -> RunResult:
        """The run's result, recorded in the status file."""
        source = self.source
        suspend = self.opts.suspend_file
        run = RunResult(trigger=self.trigger, started=self.started, duration=time.monotonic() - self.t0,
                        result=result, reason=reason, stage=self.stage, message=message, revision=self.revision,
                        commit=source.commit.to_json() if source is not None and source.commit else None,
                        source=source.location if source is not None else None, counts=self.counts,
                        plan_checksum=self.checksum, objects_managed=self.managed, drift=self.drift,
                        summary=self.summary, operations=self.operations,
                        suspended=self.suspended or (result is Result.FAILED and suspend is not None
                                                     and suspend.exists()),
                        rotation=self.rotation, rotation_changes=self.rotation_changes,
                        confirmation=self.confirmation)
        self.book.record(run, self.clock())
        self.book.write()
        return run


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

    def next(self) -> tuple[float, Trigger]:
        if self.change_at is not None and self.change_at <= self.resync_at:
            return self.change_at, Trigger.CHANGE
        return self.resync_at, Trigger.RETRY if self.failures else Trigger.RESYNC


class Waker(Protocol):
    """What the loop waits on: a stop request, a change notice, a request to run now, or a timeout."""

    def stopping(self) -> bool: ...
    def wait(self, timeout: float) -> None: ...
    def take_changed(self) -> bool: ...
    def take_requested(self) -> Trigger | None: ...


class Wakeup:
    """The real Waker: an Event set by the file watcher thread, the push receiver and the signal
    handlers. Requests to run now (webhook, SIGHUP) coalesce: any number of them while a run is
    pending or in progress make one run."""

    def __init__(self) -> None:
        self.stop_requested = False
        self._changed = False
        self._requested: Trigger | None = None
        self._event = threading.Event()

    def stopping(self) -> bool:
        return self.stop_requested

    def request_stop_from_signal(self) -> None:
        """Safe in a signal handler: the Event's lock is taken by another thread, never re-entered."""
        self.stop_requested = True
        threading.Thread(target=self._event.set, daemon=True).start()

    def request_run(self, trigger: Trigger) -> bool:
        """Run (fetch + reconcile) as soon as the current run, if any, is done. Returns False when a
        run was already requested: this request is folded into it."""
        first = self._requested is None
        if first:
            self._requested = trigger
        self._event.set()
        return first

    def request_run_from_signal(self, trigger: Trigger) -> None:
        """`request_run` from a signal handler (the Event is set by another thread)."""
        if self._requested is None:
            self._requested = trigger
        threading.Thread(target=self._event.set, daemon=True).start()

    def take_requested(self) -> Trigger | None:
        requested, self._requested = self._requested, None
        return requested

    def notify_change(self) -> None:
        self._changed = True
        self._event.set()

    def wait(self, timeout: float) -> None:
        self._event.wait(timeout)
        self._event.clear()

    def take_changed(self) -> bool:
        changed, self._changed = self._changed, False
        return changed


def run_loop(run: Callable[[Trigger], RunResult], schedule: Schedule, waker: Waker,
             monotonic: Callable[[], float] = time.monotonic,
             heartbeat: Callable[[], None] = lambda: None) -> RunResult | None:
    """Run on start, then whenever due, until a stop is requested; returns the last result.
    `heartbeat` is called at least every BEAT_EVERY seconds while the loop waits (liveness)."""
    if waker.stopping():
        return None
    last = run(Trigger.START)
    delay = schedule.ran(monotonic(), last.ok)
    if not last.ok:
        log.info("retrying in %gs (failure %d)", delay, schedule.failures, extra={"retry_in": delay})
    while not waker.stopping():
        now = monotonic()
        if waker.take_changed():
            schedule.changed(now)
        requested = waker.take_requested()
        due, trigger = (now, requested) if requested is not None else schedule.next()
        heartbeat()
        if now < due:
            waker.wait(min(due - now, BEAT_EVERY))
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
    """Watches `paths` from the moment it is constructed; every relevant change wakes the loop.

    watchfiles' Rust watcher (`RustNotify`, what `watchfiles.watch` runs) is created here, so the
    OS watches are in place when this returns (`watchfiles.watch` would only start watching when
    its generator is first iterated, on the thread); a daemon thread collects the changes.
    """

    def __init__(self, paths: Sequence[Path], waker: Wakeup) -> None:
        from watchfiles._rust_notify import RustNotify

        self._stop = threading.Event()
        self.paths = list(paths)
        where = ", ".join(map(str, self.paths))
        notify = RustNotify([str(p) for p in self.paths], False, False, 300, True, False)

        def loop() -> None:
            try:
                while True:
                    # Up to 200 ms of changes at a time; the stop event is checked every 50 ms.
                    changes = notify.watch(200, 50, 5000, self._stop)
                    if changes == "stop":
                        return
                    if isinstance(changes, set) and any(desired_change(c, p) for c, p in changes):
                        log.debug("change seen under %s", where)
                        waker.notify_change()
            except Exception as e:  # resyncs still run at the interval
                log.warning("file watching stopped: %s; changes are picked up at the next interval", e)
            finally:
                notify.close()

        self._thread = threading.Thread(target=loop, name="watchfiles", daemon=True)
        self._thread.start()
        log.info("watching %s for changes", where)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class WatchedSource:
    """The run's `resolve`, watching a local source's files before it reads them.

    The first time a resolve names a local source, the file watcher starts and the source is
    resolved again, so a change made at any time after that (even during the first run) wakes
    the loop; a change made before it is in what the run reads.
    """

    def __init__(self, resolve: Callable[[], Source], waker: Wakeup) -> None:
        self._resolve = resolve
        self._waker = waker
        self.files: FileWatcher | None = None

    def __call__(self) -> Source:
        source = self._resolve()
        if self.files is None and (paths := watch_paths(source)):
            self.files = FileWatcher(paths, self._waker)
            source = self._resolve()
        return source

    def close(self) -> None:
        if self.files is not None:
            self.files.close()
