"""Did the running mox load domains.conf as it is now?

mox has no file watcher. Whenever something takes its dynamic-config lock (a control-socket
command, an SMTP or IMAP session, a web request, queue work), and more than one second has passed
since its last check, it stats domains.conf and reloads it when the mtime differs from the one it
loaded or wrote last (mox-/config.go Config.DynamicLockUnlock). Its own writes record their mtime
and the time as its last check (WriteDynamicLocked). A mox write from the in-memory config that
has not reloaded an external change yet overwrites that change: the lost update.

So, for a state S of domains.conf (bytes, inode, size, mtime, ctime) that the caller wants mox
to hold:

1. if mox's control socket does not answer, mox is not running: it reads the file when it
   starts (not confirmed, said so);
2. wait until more than one second has passed since S was written (its ctime; no one can set a
   ctime back), so mox's last check before S is more than a second old;
3. make mox take its lock once (`accountlist`): either it checks the file now, or it checked (or
   wrote) within the last second, that is after S was written;
4. read domains.conf again: still S (same bytes, inode, size, mtime and ctime) means no one wrote
   it since S, so that check saw S and loaded it (or mox wrote S itself); anything else means
   mox or someone wrote over it, and the caller reads it again, plans again and applies again;
5. cross-check what the control socket can show of mox's memory: its accounts (and which are
   disabled) equal S's, and each domain the change touched exists in mox exactly when it is in
   S. A difference means mox refused S (it logs `loading domains config` and keeps its old one).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from reconciler.apply import writer
from reconciler.errors import ReconcilerError
from reconciler.mox.ctl import Ctl
from reconciler.mox.errors import CtlCommandFailed, CtlError, CtlNotRunning

log = logging.getLogger(__name__)

THROTTLE = 1.0  # mox stats domains.conf at most once a second
MARGIN = 0.05  # file times come from the kernel's coarse clock (a tick behind), clocks drift
MAX_PROBES = 8  # domains looked up in mox's memory per confirmation (each is a socket round trip)


class Loaded(StrEnum):
    """How a confirmation ended (a failure is an exception: `NotLoaded`, `LoadNotConfirmed`)."""

    LOADED = "loaded"  # the running mox holds domains.conf as it is
    NOT_RUNNING = "mox-not-running"  # no mox answers: it reads domains.conf when it starts


@dataclass(frozen=True, slots=True)
class Confirmation:
    status: Loaded
    message: str  # `mox loaded the change`, `not confirmed: mox not running (...)`
    waited: float = 0.0  # seconds spent waiting out mox's one-second throttle

    @property
    def loaded(self) -> bool:
        return self.status is Loaded.LOADED


class LoadNotConfirmed(ReconcilerError):
    """domains.conf was written, but that mox holds it cannot be shown: mox's socket cannot be
    used, or the change kept being overwritten (the message names what is missing). `batches`:
    the writes that happened all the same (set by `rounds`)."""

    batches: tuple[Any, ...] = ()


class NotLoaded(LoadNotConfirmed):
    """mox's memory differs from domains.conf: mox refused the file and keeps its old config."""


Sleep = Callable[[float], None]
Clock = Callable[[], float]


def wait_out_throttle(state: writer.Snapshot, *, clock: Clock = time.time, sleep: Sleep = time.sleep) -> float:
    """Sleep until more than THROTTLE has passed since `state` was written; the seconds slept.

    Written at: its ctime or mtime, whichever is later; a time in the future (a clock set back)
    counts as now.
    """
    st = state.stat
    now = clock()
    written = min(max(st.st_mtime_ns, st.st_ctime_ns) / 1e9, now)
    wait = written + THROTTLE + MARGIN - now
    if wait <= 0:
        return 0.0
    sleep(wait)
    return wait


def confirm(state: writer.Snapshot, ctl: Ctl, *, domains: Sequence[str] = (), written: bool = True,
            clock: Clock = time.time, sleep: Sleep = time.sleep) -> Confirmation | None:
    """Whether the running mox holds `state` (see the module doc); None when domains.conf is no
    longer `state`. `domains`: names the change touched, looked up in mox's memory (at most
    MAX_PROBES). `written`: `state` is our write (the message says "the change")."""
    path = state.path
    writer.checkpoint("confirm")
    try:
        ctl.version()  # connecting takes no lock: this only tells whether mox runs
    except CtlNotRunning as e:
        return _not_running(e)
    except CtlError as e:
        raise _unreachable(state, e) from None
    waited = wait_out_throttle(state, clock=clock, sleep=sleep)
    try:
        accounts = {a.name: a.login_disabled for a in ctl.account_list()}
        present = {d: _has_domain(ctl, d) for d in list(domains)[:MAX_PROBES]}
    except CtlNotRunning as e:  # mox stopped meanwhile: it reads the file when it starts again
        return _not_running(e)
    except CtlError as e:
        raise _unreachable(state, e) from None
    data, st = writer.current(path)
    if not state.same_file(writer.Snapshot(path, data, state.dynamic, st)):
        return None
    want = {name: bool(acc.LoginDisabled) for name, acc in state.dynamic.Accounts.items()}
    problems = _differences(want, accounts, {d: d in state.dynamic.Domains for d in present}, present)
    if problems:
        raise NotLoaded(
            f"mox did not load {path}: {'; '.join(problems)}. mox keeps serving its previous config and logs "
            f"why as `loading domains config` (look in its log); the file stays as written")
    message = "mox loaded the change" if written else "mox has loaded domains.conf as it is"
    log.info("confirm: %s (waited %.2f s for its reload throttle)", message, waited)
    return Confirmation(Loaded.LOADED, message, waited)


def _not_running(e: CtlError) -> Confirmation:
    return Confirmation(Loaded.NOT_RUNNING, f"not confirmed: mox not running ({e}); mox reads domains.conf "
                                            "when it starts")


def _unreachable(state: writer.Snapshot, e: CtlError) -> LoadNotConfirmed:
    return LoadNotConfirmed(f"{state.path} is written, but whether mox loaded it cannot be confirmed: {e}")


def _has_domain(ctl: Ctl, domain: str) -> bool:
    """The domain is in mox's memory (`aliaslist` answers "no such domain" otherwise)."""
    try:
        ctl.alias_list(domain)
    except CtlCommandFailed as e:
        if "no such domain" in e.reply:
            return False
        raise
    return True


def _differences(want: dict[str, bool], have: dict[str, bool], domains_want: dict[str, bool],
                 domains_have: dict[str, bool]) -> list[str]:
    out = []
    if missing := sorted(set(want) - set(have)):
        out.append(f"its accounts lack {', '.join(missing)}")
    if extra := sorted(set(have) - set(want)):
        out.append(f"it has accounts the file does not: {', '.join(extra)}")
    if flipped := sorted(n for n in set(want) & set(have) if want[n] != have[n]):
        out.append(f"login disabled differs for {', '.join(flipped)}")
    for d, exists in domains_want.items():
        if domains_have[d] != exists:
            out.append(f"domain {d} is {'missing' if exists else 'still there'}")
    return out
