"""The watcher's status file: what the last reconcile did, in Flux's vocabulary.

`mox-reconciler.status.json` sits beside the inventory (the config dir) so an operator, a
monitoring check or a sidecar can read it without talking to the process. It keeps the last
attempted and last applied revisions, the Ready/Reconciling/Stalled conditions with a reason per
stage, whether the last resync found drift, and the last HISTORY runs. Written atomically.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.errors import MoxError, ReconcilerError
from reconciler.fsutil import SharedDir
from reconciler.loop.run import STALLING, Reason, Result, RunResult

log = logging.getLogger(__name__)

STATUS_FILE = "mox-reconciler.status.json"
VERSION = 1
HISTORY = 10


def status_path(config_dir: Path) -> Path:
    return config_dir / STATUS_FILE


def iso(ts: float) -> str:
    """RFC 3339 UTC with seconds, as Kubernetes status times."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _timestamp(text: object) -> float | None:
    """Unix time of an `iso` string; None for anything else."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def history_entry(run: RunResult) -> dict[str, Any]:
    return {"time": iso(run.started), "trigger": run.trigger, "revision": run.revision,
            "result": run.result, "reason": run.reason, "plan_checksum": run.plan_checksum,
            "duration_seconds": round(run.duration, 3), "drift": run.drift,
            "counts": dict(run.counts), "error": run.error, "confirmation": run.confirmation}


def _condition(ctype: str, status: str, reason: str, message: str, now: float,
               previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """A condition; its transition time moves only when its status does (as Kubernetes does)."""
    since = iso(now)
    if previous is not None and previous.get("status") == status and previous.get("lastTransitionTime"):
        since = str(previous["lastTransitionTime"])
    return {"type": ctype, "status": status, "reason": reason, "message": message, "lastTransitionTime": since}


def conditions_for(run: RunResult, now: float, previous: list[Mapping[str, Any]],
                   suspend_file: Path | None = None) -> list[dict[str, Any]]:
    prev = {str(c.get("type")): c for c in previous if isinstance(c, Mapping)}
    n = int(run.counts.get("operations", 0))
    states: tuple[tuple[str, str, str, str], ...]  # (type, status, reason, message) of each condition
    if run.result in (Result.APPLIED, Result.UNCHANGED):
        what = "Applied" if run.result is Result.APPLIED else "Live config matches"
        msg = f"{what} revision {run.revision}" if run.revision else what
        if run.confirmation:
            msg += f"; {run.confirmation}"
        states = (("Ready", "True", Reason.SUCCEEDED, msg), ("Reconciling", "False", Reason.SUCCEEDED, msg),
                  ("Stalled", "False", Reason.SUCCEEDED, msg))
    elif run.result is Result.PLANNED:
        msg = (f"applying is suspended while {suspend_file} exists" if suspend_file else "applying is suspended")
        msg += f"; {n} operation{'s' if n != 1 else ''} pending at revision {run.revision}"
        states = (("Ready", "Unknown", Reason.SUSPENDED, msg), ("Reconciling", "False", Reason.SUSPENDED, msg),
                  ("Stalled", "False", Reason.SUSPENDED, msg))
    elif run.reason in STALLING:
        states = (("Ready", "False", run.reason, run.message), ("Reconciling", "False", run.reason, run.message),
                  ("Stalled", "True", run.reason, run.message))
    else:
        states = (("Ready", "False", run.reason, run.message),
                  ("Reconciling", "True", "ProgressingWithRetry", run.message),
                  ("Stalled", "False", run.reason, run.message))
    return [_condition(t, s, r, m, now, prev.get(t)) for t, s, r, m in states]


class StatusBook:
    """The status document, updated after every run and written to `path`.

    Loaded from the previous file on start, so the applied revision (which drift detection
    compares with) and the history survive a restart.
    """

    def __init__(self, path: Path, *, suspend_file: Path | None = None, shared: SharedDir | None = None,
                 instance: str | None = None) -> None:
        self.path = path
        self.suspend_file = suspend_file
        # The config dir when the file is in it: owned like domains.conf, never through a link.
        self.shared = shared if shared is not None else SharedDir(path.parent)
        self.doc: dict[str, Any] = {"version": VERSION, "conditions": [], "history": [],
                                    "last_attempted_revision": None, "last_applied_revision": None,
                                    "drift_detected": False, "last_drift": None, "failing_since": None,
                                    "consecutive_failures": 0}
        if instance is not None:
            self.doc["instance"] = instance  # the mox server this file is about (--instance)
        self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.shared.read(self.path))
        except FileNotFoundError:
            return
        except (ReconcilerError, MoxError, OSError, ValueError) as e:
            log.warning("status: %s unreadable, starting a new one: %s", self.path, e)
            return
        if isinstance(data, dict) and data.get("version") == VERSION:
            for key in ("conditions", "history", "last_attempted_revision", "last_applied_revision",
                        "last_applied_time", "last_success_time", "last_drift", "failing_since",
                        "consecutive_failures", "dkim_rotation"):
                if key in data:
                    self.doc[key] = data[key]

    @property
    def failing_since(self) -> float | None:
        """When the current run of failures began (Unix time), kept across restarts; None when
        the last run succeeded."""
        return _timestamp(self.doc.get("failing_since"))

    @property
    def last_success(self) -> float | None:
        return _timestamp(self.doc.get("last_success_time"))

    @property
    def consecutive_failures(self) -> int:
        n = self.doc.get("consecutive_failures")
        return n if isinstance(n, int) and n >= 0 else 0

    @property
    def last_applied_revision(self) -> str | None:
        rev = self.doc.get("last_applied_revision")
        return str(rev) if rev is not None else None

    def record(self, run: RunResult, now: float) -> dict[str, Any]:
        """Fold one run into the document (not written: see `write`)."""
        d = self.doc
        d["time"] = iso(now)
        d["source"] = run.source
        d["commit"] = dict(run.commit) if run.commit is not None else None
        d["result"] = run.result
        d["reason"] = run.reason
        d["stage"] = run.stage
        d["error"] = run.error
        d["confirmation"] = run.confirmation
        d["counts"] = dict(run.counts)
        d["suspended"] = run.suspended
        d["plan_checksum"] = run.plan_checksum
        if run.objects_managed is not None:
            d["objects_managed"] = dict(run.objects_managed)
        d["last_attempted_revision"] = run.revision if run.revision is not None else d["last_attempted_revision"]
        if run.result in (Result.APPLIED, Result.UNCHANGED):
            d["last_applied_revision"] = run.revision
            d["last_applied_time"] = iso(now)
        if run.ok:
            d["last_success_time"] = iso(now)
            d["failing_since"] = None
            d["consecutive_failures"] = 0
        else:
            d["failing_since"] = d.get("failing_since") or iso(run.started)
            d["consecutive_failures"] = self.consecutive_failures + 1
        d["drift_detected"] = run.drift
        if run.plan_checksum is not None:  # planned: the rotation was looked at
            if run.rotation:
                d["dkim_rotation"] = {k: dict(v) for k, v in sorted(run.rotation.items())}
            else:
                d.pop("dkim_rotation", None)
        if run.drift:
            d["last_drift"] = {"time": iso(run.started), "revision": run.revision, "counts": dict(run.counts)}
        d["conditions"] = conditions_for(run, now, list(d.get("conditions") or []), self.suspend_file)
        d["history"] = [history_entry(run), *list(d.get("history") or [])][:HISTORY]
        return d

    def set_watcher(self, state: str, started: float, now: float) -> None:
        """Who writes this file: pid and state (running, stopped, once), so a stale file is visible."""
        self.doc["watcher"] = {"pid": os.getpid(), "state": state, "started": iso(started), "updated": iso(now)}

    def write(self) -> None:
        try:
            self.shared.write_json(self.path, self.doc)
        except (ReconcilerError, MoxError, OSError) as e:  # the status must never stop the loop
            log.error("status: cannot write %s: %s", self.path, e)
