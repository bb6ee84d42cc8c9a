"""The loop's parts in-process: reconcile_once's reason per stage and status file, the schedule
(backoff, debounce, stop) on a fake clock, /healthz grace, metrics, option parsing."""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reconciler.cli.watch import seconds
from reconciler.desired.importer import import_files
from reconciler.desired.source import Source, resolve_source
from reconciler.errors import ConcurrentChange, ReconcilerError, SourceError
from reconciler.loop.metrics import Health, Metrics, parse_addr
from reconciler.loop.run import Trigger
from reconciler.loop.status import HISTORY, RunResult, StatusBook, status_path
from reconciler.loop.watch import (
    BEAT_EVERY,
    FileWatcher,
    Schedule,
    Wakeup,
    WatchedSource,
    WatchOptions,
    _reason,
    desired_change,
    reconcile_once,
    run_loop,
)
from reconciler.mox.live import locate, read_live

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Setup:
    paths_conf: Path
    desired: Path
    book: StatusBook
    suspend: Path
    resolve: Callable[[], Source] = field(init=False)

    def __post_init__(self) -> None:
        self.resolve = lambda: resolve_source(str(self.desired))

    def opts(self, **kw: object) -> WatchOptions:
        base: dict[str, object] = {"suspend_file": self.suspend}
        base.update(kw)
        return WatchOptions(locate(str(self.paths_conf)), self.resolve, **base)  # type: ignore[arg-type]

    def once(self, trigger: str = "once", **kw: object) -> RunResult:
        return reconcile_once(self.opts(**kw), self.book, trigger)


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    shutil.copytree(ROOT / "examples" / "mox", tmp_path / "mox")
    (tmp_path / "mox" / "data").mkdir(exist_ok=True)
    conf = tmp_path / "mox" / "config" / "mox.conf"
    live = read_live(locate(str(conf)))
    desired = tmp_path / "desired"
    desired.mkdir()
    for name, text in import_files(live.static, live.dynamic).items():
        (desired / name).write_text(text)
    return Setup(conf, desired, StatusBook(status_path(conf.parent)), tmp_path / "suspend")


def add_bob(desired: Path) -> None:
    p = desired / "accounts.yaml"
    p.write_text(p.read_text() + "  bob:\n    Destinations:\n      bob@example.com: {}\n      bobby@example.com: {}\n")


def test_success_then_unchanged_then_drift(setup: Setup) -> None:
    add_bob(setup.desired)
    first = setup.once("start")
    assert (first.result, first.reason, first.stage) == ("applied", "ReconciliationSucceeded", "done")
    assert first.counts["create"] == 1 and first.objects_managed == {"domain": 1, "account": 2}
    assert first.revision is not None and first.revision.startswith("sha256:")  # a plain directory
    second = setup.once("resync")
    assert second.result == "unchanged" and not second.drift
    # A hand edit at the same revision is drift; the run repairs it.
    conf = setup.paths_conf.with_name("domains.conf")
    conf.write_text(conf.read_text().replace("\t\t\tbobby@example.com: nil\n", ""))
    third = setup.once("resync")
    assert third.result == "applied" and third.drift
    doc = json.loads(status_path(setup.paths_conf.parent).read_text())
    assert doc["drift_detected"] is True and doc["last_drift"]["revision"] == first.revision
    assert [h["trigger"] for h in doc["history"]] == ["resync", "resync", "start"]
    # A changed desired state is not drift, even though the plan is not empty.
    (setup.desired / "domain-example.org.yaml").write_text("Domains:\n  example.org:\n    ReportsAccount: admin\n")
    fourth = setup.once()
    assert fourth.result == "applied" and not fourth.drift and fourth.revision != first.revision


def test_reason_per_stage(setup: Setup) -> None:
    good = setup.once()
    assert good.ok
    # SourceFailed: no desired state could be read.
    def broken() -> Source:
        raise SourceError("git.example.org: fetch failed: connection refused")
    setup.resolve = broken
    r = setup.once()
    assert (r.result, r.reason, r.stage) == ("failed", "SourceFailed", "fetch") and "connection refused" in r.message
    setup.__post_init__()
    # DesiredInvalid, with file:line.
    (setup.desired / "bad.yaml").write_text("Domains: [\n")
    r = setup.once()
    assert (r.reason, r.stage) == ("DesiredInvalid", "plan") and "bad.yaml:2:1" in r.message
    (setup.desired / "bad.yaml").unlink()
    # LiveUnreadable.
    conf = setup.paths_conf.with_name("domains.conf")
    saved = conf.read_bytes()
    conf.write_text("Domains:\n\tnot valid sconf\n")
    r = setup.once()
    assert r.reason == "LiveUnreadable" and "domains.conf" in r.message
    conf.write_bytes(saved)
    # PlanUnsafe: an account removal the desired state implies but does not state.
    add_bob(setup.desired)
    assert setup.once().result == "applied"
    accounts = setup.desired / "accounts.yaml"
    accounts.write_text(accounts.read_text().split("  bob:")[0])
    (setup.desired / "policy.yaml").write_text("Policy:\n  Prune: true\n")
    before = conf.read_bytes()
    r = setup.once()
    assert (r.reason, r.stage) == ("PlanUnsafe", "safety") and "Removed.Accounts" in r.message
    assert conf.read_bytes() == before
    doc = json.loads(status_path(setup.paths_conf.parent).read_text())
    cond = {c["type"]: c for c in doc["conditions"]}
    assert cond["Stalled"]["status"] == "True" and cond["Ready"]["reason"] == "PlanUnsafe"
    assert doc["error"] == r.message and doc["last_applied_revision"] != r.revision
    # ApplyFailed is the reason for anything failing while writing.
    assert _reason("apply", ConcurrentChange("domains.conf changed")) == "ApplyFailed"
    assert _reason("apply", OSError("disk full")) == "ApplyFailed"


def test_suspended_plans_only(setup: Setup) -> None:
    setup.suspend.touch()
    add_bob(setup.desired)
    conf = setup.paths_conf.with_name("domains.conf")
    before = conf.read_bytes()
    r = setup.once()
    assert (r.result, r.reason, r.suspended) == ("planned", "Suspended", True) and r.counts["operations"] == 2
    assert conf.read_bytes() == before
    doc = json.loads(status_path(setup.paths_conf.parent).read_text())
    assert doc["suspended"] is True and doc["last_applied_revision"] is None
    setup.suspend.unlink()
    assert setup.once().result == "applied"


def _run(result: str = "applied", *, started: float = 0.0, reason: str = "ReconciliationSucceeded",
         revision: str = "abc", drift: bool = False) -> RunResult:
    return RunResult(trigger="resync", started=started, duration=0.5, result=result, reason=reason, stage="done",
                     message="boom" if result == "failed" else "", revision=revision,
                     counts={"create": 1, "update": 0, "delete": 0, "operations": 1}, drift=drift,
                     objects_managed={"domain": 3, "account": 2})


def test_status_book_history_transitions_and_reload(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    book = StatusBook(path)
    book.record(_run(), 100.0)
    t0 = book.doc["conditions"][0]["lastTransitionTime"]
    for i in range(HISTORY + 3):
        book.record(_run(started=200.0 + i), 200.0 + i)
    assert len(book.doc["history"]) == HISTORY
    assert book.doc["conditions"][0]["lastTransitionTime"] == t0  # Ready stayed True
    book.record(_run("failed", reason="ApplyFailed", revision="def"), 300.0)
    cond = {c["type"]: c for c in book.doc["conditions"]}
    assert cond["Ready"]["status"] == "False" and cond["Ready"]["lastTransitionTime"] != t0
    assert cond["Reconciling"]["status"] == "True" and cond["Reconciling"]["reason"] == "ProgressingWithRetry"
    assert cond["Stalled"]["status"] == "False"
    assert book.doc["last_attempted_revision"] == "def" and book.doc["last_applied_revision"] == "abc"
    book.write()
    again = StatusBook(path)
    assert again.last_applied_revision == "abc" and len(again.doc["history"]) == HISTORY
    path.write_text("{not json")
    assert StatusBook(path).last_applied_revision is None  # unreadable: start afresh


# --- the schedule, on a fake clock -------------------------------------------------------------


class FakeWaker:
    """Time moves only when the loop waits; events are scheduled at fake times."""

    def __init__(self) -> None:
        self.now = 0.0
        self.changes: list[float] = []
        self.requests: list[float] = []  # pushes at the receiver (any number at one time: one request)
        self.stop_at = float("inf")
        self._changed = False
        self._requested: Trigger | None = None

    def stopping(self) -> bool:
        return self.now >= self.stop_at

    def wait(self, timeout: float) -> None:
        target = self.now + timeout
        upcoming = sorted(t for t in [*self.changes, *self.requests] if self.now < t <= target)
        if self.stop_at <= target and (not upcoming or self.stop_at <= upcoming[0]):
            self.now = self.stop_at
        elif upcoming:
            self.now = upcoming[0]
            self._changed = self.now in self.changes
            if self.now in self.requests:
                self._requested = Trigger.WEBHOOK
        else:
            self.now = target

    def take_changed(self) -> bool:
        c, self._changed = self._changed, False
        return c

    def take_requested(self) -> Trigger | None:
        r, self._requested = self._requested, None
        return r


def loop(outcomes: list[bool], *, interval: float = 60, debounce: float = 2, changes: list[float] | None = None,
         stop_at: float = 1000, requests: list[float] | None = None) -> list[tuple[float, str]]:
    waker = FakeWaker()
    waker.changes = changes or []
    waker.requests = requests or []
    waker.stop_at = stop_at
    calls: list[tuple[float, str]] = []

    def run(trigger: str) -> RunResult:
        calls.append((waker.now, trigger))
        ok = outcomes.pop(0) if outcomes else True
        return _run("applied" if ok else "failed", reason="ReconciliationSucceeded" if ok else "SourceFailed")

    run_loop(run, Schedule(interval, debounce), waker, lambda: waker.now)
    return calls


def test_schedule_resync_every_interval() -> None:
    assert loop([], interval=60, stop_at=200) == [(0, "start"), (60, "resync"), (120, "resync"), (180, "resync")]


def test_schedule_backoff_doubles_capped_at_interval_and_resets() -> None:
    calls = loop([False] * 8, interval=30, stop_at=200)
    times = [t for t, _ in calls]
    assert times[:9] == [0, 1, 3, 7, 15, 31, 61, 91, 121]  # 1, 2, 4, 8, 16, then 30, 30 ...
    assert [tr for _, tr in calls][1:8] == ["retry"] * 7
    assert calls[8][1] == "retry" and calls[9] == (151, "resync")  # after the first success: interval


def test_schedule_debounces_changes() -> None:
    # Changes at 10, 11 and 12.5 (each within the 2 s debounce of the last) make one run at 14.5.
    calls = loop([], interval=60, debounce=2, changes=[10, 11, 12.5, 40], stop_at=70)
    assert calls == [(0, "start"), (14.5, "change"), (42, "change")]


def test_schedule_change_skips_backoff_wait() -> None:
    # A failure at 0 waits 1 s, 2 s, ...; a change (a new commit) is tried after its debounce.
    calls = loop([False, False, False], interval=60, debounce=0.5, changes=[3.2], stop_at=10)
    assert calls[:4] == [(0, "start"), (1, "retry"), (3, "retry"), (3.7, "change")]


def test_schedule_requested_runs_start_at_once_and_skip_backoff() -> None:
    # A push at 10 runs at 10 (no debounce); after it, resyncs count from that run.
    assert loop([], interval=60, requests=[10], stop_at=100) == [(0, "start"), (10, "webhook"), (70, "resync")]
    # During a backoff after failures, a push is tried at once.
    calls = loop([False, False, False], interval=60, requests=[2.5], stop_at=5)
    assert calls[:3] == [(0, "start"), (1, "retry"), (2.5, "webhook")]


def test_wakeup_coalesces_requests() -> None:
    waker = Wakeup()
    assert waker.request_run(Trigger.WEBHOOK) is True
    assert waker.request_run(Trigger.WEBHOOK) is False  # folded into the pending one
    waker.request_run_from_signal(Trigger.SIGHUP)
    waker.wait(60)  # returns at once: a request is pending (60 s only bounds a failure)
    assert waker.take_requested() is Trigger.WEBHOOK and waker.take_requested() is None
    waker.request_run_from_signal(Trigger.SIGHUP)
    waker.wait(60)
    assert waker.take_requested() is Trigger.SIGHUP


def test_stop_takes_effect_between_runs() -> None:
    assert loop([], interval=60, stop_at=30) == [(0, "start")]
    assert loop([], stop_at=0) == []


# --- health, metrics, options --------------------------------------------------------------------


def test_readiness_grace() -> None:
    now = [1000.0]
    h = Health(grace=60, clock=lambda: now[0])
    assert h.ready()[0] == 503 and h.ready()[1]["status"].startswith("starting")  # nothing succeeded yet
    assert h.live()[0] == 200
    h.observe(_run(started=1100))
    assert h.ready() == (200, {"last_success": "1970-01-01T00:18:20Z", "status": "ok", "result": "applied",
                               "revision": "abc"})
    h.observe(_run("failed", started=1200, reason="DesiredInvalid"))
    now[0] = 1250
    code, body = h.ready()
    assert code == 200 and body["reason"] == "DesiredInvalid" and "grace" in body["status"]
    h.observe(_run("failed", started=1255, reason="DesiredInvalid"))
    now[0] = 1261  # failing since 1200: more than 60 s
    code, body = h.ready()
    assert code == 503 and body["failing_since"] == "1970-01-01T00:20:00Z" and body["error"] == "boom"
    assert h.live()[0] == 200  # a failing reconcile is no reason to restart the process
    h.observe(_run(started=1262))
    assert h.ready()[0] == 200


def test_liveness_is_the_loop_beating() -> None:
    now = [0.0]
    h = Health(grace=60, stuck_after=600, clock=lambda: now[0])
    now[0] = 599
    assert h.live()[0] == 200
    h.beat()
    now[0] = 1199
    assert h.live() == (200, {"status": "ok", "loop_seconds_since_beat": 600.0})
    now[0] = 1200.5  # no beat for longer than stuck_after: the loop hangs
    code, body = h.live()
    assert code == 503 and body["status"] == "stuck"
    h.observe(_run("failed", started=1200))  # a run that ends (even failing) is the loop moving
    assert h.live()[0] == 200


def test_failure_clock_survives_a_restart(tmp_path: Path) -> None:
    """The status file keeps when failures began and how many: a restarted watcher is not ready
    again just because it restarted, and its retries go on backing off."""
    path = tmp_path / "status.json"
    book = StatusBook(path)
    book.record(_run(started=100), 100)
    book.record(_run("failed", started=200, reason="SourceFailed"), 200)
    book.record(_run("failed", started=300, reason="SourceFailed"), 300)
    book.write()
    again = StatusBook(path)
    assert again.failing_since == 200 and again.consecutive_failures == 2 and again.last_success == 100
    now = [1000.0]
    h = Health(grace=60, clock=lambda: now[0], failing_since=again.failing_since, last_success=again.last_success)
    code, body = h.ready()
    assert code == 503 and body["failing_since"] == "1970-01-01T00:03:20Z"
    again.record(_run(started=400), 400)
    assert again.failing_since is None and again.consecutive_failures == 0
    # A fresh file, or one whose last run succeeded: ready on the recorded success until a run says otherwise.
    assert Health(grace=60, clock=lambda: now[0], last_success=100).ready()[0] == 200


def test_loop_beats_while_it_waits() -> None:
    waker = FakeWaker()
    waker.stop_at = 300
    beats: list[float] = []
    run_loop(lambda trigger: _run(), Schedule(3600, 2), waker, lambda: waker.now,
             heartbeat=lambda: beats.append(waker.now))
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    assert beats[0] == 0 and max(gaps) <= BEAT_EVERY and beats[-1] >= 300 - BEAT_EVERY


def test_metrics_text() -> None:
    m = Metrics()
    m.observe(_run(drift=True))
    m.observe(_run("failed", reason="PlanUnsafe"))
    text = m.render().decode()
    assert 'mox_reconciler_reconcile_total{result="applied"} 1.0' in text
    assert 'mox_reconciler_reconcile_errors_total{reason="PlanUnsafe"} 1.0' in text
    assert 'mox_reconciler_reconcile_errors_total{reason="SourceFailed"} 0.0' in text
    assert "mox_reconciler_drift_detected_total 1.0" in text
    assert 'mox_reconciler_objects_managed{kind="domain"} 3.0' in text
    assert "mox_reconciler_reconcile_duration_seconds_count 2.0" in text
    assert 'mox_reconciler_last_applied_commit_info{revision="abc"' in text
    assert "mox_reconciler_last_success_timestamp_seconds 0.5" in text
    assert "process_" not in text  # own registry: no global collectors
    assert Metrics().render()  # a second instance does not collide


def test_metrics_and_status_name_the_instance(tmp_path: Path) -> None:
    """Every sample has the instance label, so one dashboard shows the fleet."""
    m = Metrics("mail-a")
    m.observe(_run(drift=True))
    m.received.labels("refused").inc()
    m.notifications.labels("failed").inc()
    samples = [line for line in m.render().decode().splitlines() if line and not line.startswith("#")]
    assert samples and all('instance="mail-a"' in line for line in samples)
    assert 'mox_reconciler_reconcile_total{instance="mail-a",result="applied"} 1.0' in samples
    assert 'mox_reconciler_drift_detected_total{instance="mail-a"} 1.0' in samples
    assert 'mox_reconciler_receiver_requests_total{instance="mail-a",result="refused"} 1.0' in samples
    assert 'mox_reconciler_notifications_total{instance="mail-a",result="failed"} 1.0' in samples
    assert 'mox_reconciler_notifications_total{instance="mail-a",result="dropped"} 0.0' in samples
    health = Health(60, instance="mail-a")
    assert health.live()[1]["instance"] == "mail-a" and health.ready()[1]["instance"] == "mail-a"
    book = StatusBook(tmp_path / "s.json", instance="mail-a")
    book.record(_run(), 1.0)
    book.write()
    assert json.loads((tmp_path / "s.json").read_text())["instance"] == "mail-a"


def test_option_parsing() -> None:
    assert seconds("2s") == 2 and seconds("1m30s") == 90 and seconds("500ms") == 0.5 and seconds("5") == 5
    for bad in ("2x", "-1s", "0s", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            seconds(bad)
    assert parse_addr("127.0.0.1:9100") == ("127.0.0.1", 9100)
    assert parse_addr("[::1]:0") == ("::1", 0)
    assert parse_addr(":9100") == ("", 9100)
    with pytest.raises(ReconcilerError, match="HOST:PORT"):
        parse_addr("localhost")


def test_watch_filter() -> None:
    assert desired_change(None, "/r/domain-a.yaml") and desired_change(None, "/r/sub/x.yml")
    assert desired_change(None, "/r/.git/HEAD") and desired_change(None, "/r/.git/refs/heads/main")
    assert not desired_change(None, "/r/.git/objects/ab/cdef") and not desired_change(None, "/r/README.md")


def test_run_values_are_the_enums_everywhere() -> None:
    """Status file, history, metrics and /healthz name results, reasons, stages and triggers with
    the same enums; a run given their text holds the enums."""
    from reconciler.loop.run import FAILURE_REASONS, Reason, Result, Stage, Trigger

    r = _run("failed", reason="PlanUnsafe")
    assert (r.trigger, r.result, r.reason, r.stage) == (Trigger.RESYNC, Result.FAILED, Reason.PLAN_UNSAFE, Stage.DONE)
    assert type(r.result) is Result and not r.ok
    with pytest.raises(ValueError):
        _run("exploded")
    text = Metrics().render().decode()
    for result in Result:
        assert f'mox_reconciler_reconcile_total{{result="{result}"}} 0.0' in text
    for reason in Reason:
        assert (f'mox_reconciler_reconcile_errors_total{{reason="{reason}"}} 0.0' in text) == (reason in FAILURE_REASONS)
    assert set(FAILURE_REASONS) == set(Reason) - {Reason.SUCCEEDED, Reason.SUSPENDED}


def test_file_watcher_sees_a_change_made_right_after_it_starts(tmp_path: Path) -> None:
    """The OS watches are in place when FileWatcher returns: a change in the next instant wakes the
    loop (no pause between starting the watcher and making the change)."""
    waker = Wakeup()
    files = FileWatcher([tmp_path], waker)
    try:
        (tmp_path / "domain-a.yaml").write_text("Domains: {}\n")
        waker.wait(60)  # returns as soon as the change is seen; 60 s only bounds a failure
        assert waker.take_changed()
    finally:
        files.close()


def test_watched_source_starts_watching_before_the_first_read(tmp_path: Path) -> None:
    waker = Wakeup()
    calls: list[bool] = []

    def resolve() -> Source:
        calls.append(watched.files is not None)
        return Source(location=str(tmp_path), path=tmp_path, commit=None, dirty=False)

    watched = WatchedSource(resolve, waker)
    try:
        assert watched().path == tmp_path
        # Resolved once to learn what to watch, then again with the watcher running.
        assert calls == [False, True] and watched.files is not None and watched.files.paths == [tmp_path]
        watched()
        assert calls == [False, True, True]
    finally:
        watched.close()
    remote = WatchedSource(lambda: Source(location="https://x/d.git", path=tmp_path, commit=None, dirty=False,
                                          remote=True), waker)
    remote()
    assert remote.files is None  # a remote is fetched every interval, not watched
