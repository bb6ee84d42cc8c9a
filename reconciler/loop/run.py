"""One reconcile run of the watcher, as the status file, the metrics, /healthz and the logs see
it: what triggered it, the stage it reached, its result and the reason (Flux's vocabulary).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reconciler.plan.rotation import StageChange


class Trigger(StrEnum):
    """Why a run started."""

    START = "start"  # the watcher started
    CHANGE = "change"  # a local source changed (debounced)
    RESYNC = "resync"  # the interval passed (also fetches a remote)
    RETRY = "retry"  # backing off after a failure
    ONCE = "once"  # `watch --once`
    WEBHOOK = "webhook"  # a signed push notification reached --receiver-addr (fetches first)
    SIGHUP = "sighup"  # the process got SIGHUP (fetches first)


class Stage(StrEnum):
    """The stages of a run, in order; a failed run names the one it failed in."""

    FETCH = "fetch"  # resolve the source (clone/fetch, ref, signature)
    PLAN = "plan"  # read desired state, live config and inventory; plan; validate the result
    SAFETY = "safety"  # the change threshold and unstated removals
    APPLY = "apply"  # one batch write, the inventory, the DNS-record reports
    DONE = "done"  # finished (applied, nothing to do, or suspended)


class Result(StrEnum):
    """What a run did."""

    APPLIED = "applied"  # operations were written
    UNCHANGED = "unchanged"  # the live config already matched
    PLANNED = "planned"  # suspended: planned only, changes pending
    FAILED = "failed"


class Reason(StrEnum):
    """Why a run ended as it did: success, suspended, or the kind of failure (Flux-style)."""

    SUCCEEDED = "ReconciliationSucceeded"
    SUSPENDED = "Suspended"
    SOURCE_FAILED = "SourceFailed"
    DESIRED_INVALID = "DesiredInvalid"
    LIVE_UNREADABLE = "LiveUnreadable"
    PLAN_UNSAFE = "PlanUnsafe"
    APPLY_FAILED = "ApplyFailed"
    PASSWORD_PENDING = "PasswordPending"  # the config is applied; a password could not be set yet


class Received(StrEnum):
    """What the push receiver did with a request (--receiver-addr; metrics' `result` label)."""

    ACCEPTED = "accepted"  # signed push: a run was requested
    IGNORED = "ignored"  # signed, but not a push (ping, other events)
    REFUSED = "refused"  # unsigned or wrongly signed: 401, nothing happens


class Delivery(StrEnum):
    """What became of a notification to one URL (--notify; metrics' `result` label)."""

    SENT = "sent"  # the endpoint answered 2xx
    FAILED = "failed"  # refused (4xx) or still failing after the last retry
    DROPPED = "dropped"  # the queue was full (the endpoint is far behind): the oldest event is dropped


FAILURE_REASONS = (Reason.SOURCE_FAILED, Reason.DESIRED_INVALID, Reason.LIVE_UNREADABLE, Reason.PLAN_UNSAFE,
                   Reason.APPLY_FAILED, Reason.PASSWORD_PENDING)
# Failures that retrying at the same revision cannot fix: a new commit (or --force) is needed.
STALLING = (Reason.DESIRED_INVALID, Reason.PLAN_UNSAFE)


@dataclass(frozen=True)
class RunResult:
    """One reconcile: what triggered it, how far it got, and what it found or did."""

    trigger: Trigger
    started: float  # Unix time
    duration: float  # seconds
    result: Result
    reason: Reason
    stage: Stage  # the last stage entered
    message: str = ""
    revision: str | None = None  # commit SHA (+ digest of uncommitted files), or sha256 of a plain dir
    commit: Mapping[str, Any] | None = None
    source: str | None = None  # location, redacted
    counts: Mapping[str, int] = field(default_factory=dict)  # create/update/delete/operations
    plan_checksum: str | None = None
    objects_managed: Mapping[str, int] | None = None  # by kind (domain, account), after the run
    drift: bool = False  # a run at the last applied revision found changes to make
    suspended: bool = False
    summary: str = ""  # the plan's one-line summary ("Plan: 1 to add, ...")
    operations: tuple[str, ...] = ()  # the plan's operations, one line each (no secrets: descriptions only)
    # DKIM rotation per rotating domain (the plan document's `dkim_rotation` entry, as JSON, plus
    # `publish_result`), and the stages that changed in this run (what notifications hook).
    rotation: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    rotation_changes: tuple[StageChange, ...] = ()
    # Whether the running mox holds the result: `mox loaded the change`, `mox loaded domains.conf as
    # it is`, `not confirmed: mox not running (...)`, or why it could not be confirmed (a failure).
    confirmation: str | None = None

    def __post_init__(self) -> None:
        # Accept the enums' text too (a status file read back, a test); keep the enums.
        for name, kind in (("trigger", Trigger), ("result", Result), ("reason", Reason), ("stage", Stage)):
            object.__setattr__(self, name, kind(getattr(self, name)))

    @property
    def ok(self) -> bool:
        return self.result is not Result.FAILED

    @property
    def error(self) -> str | None:
        return self.message if not self.ok else None
