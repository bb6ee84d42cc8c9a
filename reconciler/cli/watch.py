"""`mox-reconciler watch SOURCE`: the controller; reconcile on start, on change, on a signed push
(--receiver-addr) or SIGHUP, and every interval; notify (--notify) what it did."""

from __future__ import annotations

import argparse
import gc
import signal
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.cli.rotation_args import add_rotation_options, dns_access
from reconciler.cli.source_args import add_source_options, resolve_from_args
from reconciler.errors import ReconcilerError
from reconciler.mox.golang import parse_duration

if TYPE_CHECKING:
    from reconciler.desired.source import Source
    from reconciler.loop.metrics import Metrics
    from reconciler.loop.notify import Notifier
    from reconciler.loop.run import RunResult

NS = 1_000_000_000


def seconds(text: str) -> float:
    """A Go duration (1m30s, 500ms, 2s), as --interval takes; a bare number is seconds."""
    try:
        value = float(text) if text.replace(".", "", 1).isdigit() else parse_duration(text) / NS
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (e.g. 30s, 5m, 1h): {e}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"duration {text!r} must be positive")
    return value


def running_from(start: datetime) -> Callable[[], datetime]:
    """`--now TIME` for the watcher: a clock that starts at TIME and runs on from there."""
    t0 = time.monotonic()

    def now() -> datetime:
        return (start + timedelta(seconds=time.monotonic() - t0)).replace(microsecond=0)

    return now


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "The controller loop: the same pipeline as `apply`, run on start, when the source "
        "changes (watchfiles for a local checkout, a fetch every interval for a remote) and as a full "
        "resync every interval that also corrects drift. Failures are retried with backoff; a bad "
        "commit is reported and nothing is written. SIGTERM/SIGINT stop it after the current run.")
    add_source_options(p)
    p.add_argument("--interval", type=seconds, default=60.0, metavar="DURATION",
                   help="resync (and fetch) interval, Go-style: 30s, 5m, 1h30m (default: 1m)")
    p.add_argument("--debounce", type=float, default=2.0, metavar="SECONDS",
                   help="wait until a local source has been quiet this long before reconciling (default: 2)")
    p.add_argument("--once", action="store_true",
                   help="reconcile once and exit: 0 on success (applied or nothing to do), 1 on failure")
    p.add_argument("--suspend-file", type=Path, metavar="FILE",
                   help="while FILE exists, plan only (nothing is applied); the status says suspended")
    p.add_argument("--metrics-addr", metavar="HOST:PORT",
                   help="serve Prometheus /metrics, /healthz (liveness: the loop is alive) and /readyz "
                   "(readiness: reconciles succeed) here (e.g. 127.0.0.1:9100)")
    p.add_argument("--health-grace", type=seconds, default=None, metavar="DURATION",
                   help="/readyz stays 200 this long after failures begin (default: 3 intervals); the "
                   "failure clock is kept in the status file across restarts")
    p.add_argument("--status-file", type=Path, metavar="FILE",
                   help="status JSON (default: mox-reconciler.status.json in the config dir)")
    p.add_argument("--reports-dir", type=Path, metavar="DIR",
                   help="where DNS-record reports of changed domains are written "
                   "(default: mox-reconciler.records/ in the config dir)")
    p.add_argument("--force", action="store_true", help="apply plans above the safety threshold")
    p.add_argument("--instance", metavar="NAME",
                   help="the mox server's name in metrics (instance label), the status file, logs and "
                   "notifications (default: the last directory of --subdir, else the host name)")
    p.add_argument("--notify", action="append", metavar="URL",
                   help="POST an event here on applied, failed, drift corrected, blocked, recovered and DKIM "
                   "rotation stages (repeatable; retried with back-off, never delays a reconcile)")
    p.add_argument("--notify-secret-file", type=Path, metavar="FILE",
                   help="sign every notification: X-Mox-Reconciler-Signature: sha256=<HMAC of the body>")
    p.add_argument("--notify-format", choices=["json", "slack"], default="json",
                   help="json: the event; slack: {\"text\": ...} for Slack, Mattermost, Rocket.Chat (default: json)")
    p.add_argument("--receiver-addr", metavar="HOST:PORT",
                   help="accept signed push webhooks (GitHub, GitLab, generic HMAC) on POST /hook and "
                   "fetch + reconcile at once; needs --receiver-secret-file")
    p.add_argument("--receiver-secret-file", type=Path, metavar="FILE",
                   help="the webhook's shared secret (unsigned or wrongly signed requests get 401)")
    add_rotation_options(p)
    p.set_defaults(func=run)


def _notifier(args: argparse.Namespace, instance: str, metrics: Metrics | None, hide: list[bytes]) -> Notifier | None:
    from reconciler.loop.notify import Notifier
    from reconciler.loop.receiver import read_secret

    if not args.notify:
        if args.notify_secret_file is not None:
            raise ReconcilerError("--notify-secret-file needs at least one --notify URL")
        return None
    secret = read_secret(args.notify_secret_file, "--notify-secret-file") if args.notify_secret_file else None
    if metrics is None:
        return Notifier(args.notify, instance=instance, secret=secret, fmt=args.notify_format, hide=hide)
    return Notifier(args.notify, instance=instance, secret=secret, fmt=args.notify_format, hide=hide,
                    count=lambda d: metrics.notifications.labels(d).inc(), retried=metrics.notification_retries.inc)


def run(args: argparse.Namespace) -> int:
    gc.enable()  # off for one-shot verbs (cli.main.entrypoint); a watcher runs for weeks
    from reconciler.cli.logs import tag_instance, use_timestamps
    from reconciler.desired.fleet import default_instance_name
    from reconciler.fsutil import SharedDir
    from reconciler.loop.metrics import Health, Metrics, MetricsServer
    from reconciler.loop.receiver import Receiver, read_secret
    from reconciler.loop.run import Trigger
    from reconciler.loop.status import StatusBook, status_path
    from reconciler.loop.watch import Schedule, Wakeup, WatchedSource, WatchOptions, reconcile_once, run_loop
    from reconciler.mox.live import locate
    from reconciler.pipeline import Caches
    from reconciler.planmemo import PlanMemo

    use_timestamps()
    instance = args.instance or default_instance_name(args.subdir)
    tag_instance(instance)
    if args.receiver_addr and (args.once or args.receiver_secret_file is None):
        raise ReconcilerError("--receiver-addr needs --receiver-secret-file (unsigned pushes are never accepted)"
                              if not args.once else "--receiver-addr needs the watch loop, not --once")
    receiver_secret = read_secret(args.receiver_secret_file, "--receiver-secret-file") \
        if args.receiver_secret_file is not None else None
    hide = [receiver_secret] if receiver_secret is not None else []
    paths = locate(args.config)
    dns = dns_access(args)
    clock = running_from(args.now) if args.now is not None else None
    book = StatusBook(args.status_file or status_path(paths.config_dir), suspend_file=args.suspend_file,
                      shared=SharedDir.of(paths.domains_conf), instance=instance)

    def resolve() -> Source:
        return resolve_from_args(args)

    started = time.time()
    if args.once:
        notifier = _notifier(args, instance, None, hide)
        book.set_watcher("once", started, started)
        opts = WatchOptions(paths, resolve, force=args.force, reports_dir=args.reports_dir,
                            suspend_file=args.suspend_file, caches=Caches.for_cli(args.cache_dir, generate=True),
                            dns=dns, clock=clock, memo=PlanMemo.for_cli(args.cache_dir))
        result = reconcile_once(opts, book, Trigger.ONCE)
        if notifier is not None:
            notifier.observe(result)
            notifier.close()
        return 0 if result.ok else 1

    metrics = Metrics(instance)
    notifier = _notifier(args, instance, metrics, hide)
    health = Health(args.health_grace if args.health_grace is not None else 3 * args.interval,
                    failing_since=book.failing_since, last_success=book.last_success, instance=instance)
    server = MetricsServer(args.metrics_addr, metrics, health) if args.metrics_addr else None
    waker = Wakeup()
    receiver = None
    if args.receiver_addr and receiver_secret is not None:
        receiver = Receiver(args.receiver_addr, receiver_secret, instance, lambda: waker.request_run(Trigger.WEBHOOK),
                            count=lambda r: metrics.received.labels(r).inc())
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signo, _frame: waker.request_stop_from_signal())
    signal.signal(signal.SIGHUP, lambda _signo, _frame: waker.request_run_from_signal(Trigger.SIGHUP))
    # A local source's files are watched from its first resolve on, before they are read.
    watched = WatchedSource(resolve, waker)
    # One set of caches for every run: key verdicts, key threads, parsed desired-state files, plan memos.
    opts = WatchOptions(paths, watched, force=args.force, reports_dir=args.reports_dir,
                        suspend_file=args.suspend_file, heartbeat=health.beat,
                        caches=Caches.for_cli(args.cache_dir, generate=True), dns=dns, clock=clock,
                        memo=PlanMemo.for_cli(args.cache_dir))

    def one(trigger: Trigger) -> RunResult:
        book.set_watcher("running", started, time.time())
        result = reconcile_once(opts, book, trigger)
        metrics.observe(result)
        health.observe(result)
        if notifier is not None:
            notifier.observe(result)
        return result

    try:
        # Failures go on backing off where the last process left them (the status file).
        run_loop(one, Schedule(args.interval, args.debounce, failures=book.consecutive_failures), waker,
                 heartbeat=health.beat)
    finally:
        watched.close()
        for closing in (receiver, server):
            if closing is not None:
                closing.close()
        if notifier is not None:
            notifier.close()
        now = time.time()
        book.set_watcher("stopped", started, now)
        book.write()
    return 0
