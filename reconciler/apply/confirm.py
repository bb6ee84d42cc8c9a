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

Step 2 costs up to a second. It is skipped when mox can be seen holding S at once. P is the
file our write of S replaced: domains.conf as read under the config lock, still unchanged at the
rename (no write of mox's slipped in). Right after the write, mox takes its lock (step 3:
`accountlist`, then a lookup per probed domain and `accountaddresses` per account whose
addresses differ between P and S, unless it has a bare-localpart key, which mox rewrites in its
memory) and what it shows is S's view (its accounts, which are disabled, whether each probed
domain exists, those accounts' addresses as the file spells them), P's view differs from S's,
and domains.conf is still S afterwards (step 4). Then mox holds S:

* mox holds one whole file at a time: it parses a file and swaps it in entirely, or keeps what
  it had; its own writes make the file equal to its memory;
* at each of those commands mox holds P or S. Its last look at the file (t) was at that command
  or less than a second before it (the throttle). P was on the path from its ctime until our
  rename, and P's ctime (or mtime, if later) must be more than THROTTLE + MARGIN before the
  first command; so at t the file was P or S. If P: mox loaded P then, or held it already (P's
  mtime differs from that of the file before it, and P validates, `accepted`: mox does not
  refuse it and keep an even older config that could look like S). If S: it loaded S. Between
  t and the command only a write of mox's changes its memory, and that would change the file;
* something it showed is not P's, so that command saw S; from then on mox keeps S: the file is
  still S (bytes, inode, size, mtime, ctime), so mox did not write, and reloading S gives S.

Not concluded at once (the wait of step 2 instead): the change does not show over the socket
(P's and S's views are equal: a DMARC or other domain field, an alias, a FullName); P is
younger than the throttle (its author may have written it after mox's last look, so mox may hold
an older file that looks like S: someone removed what we add back); P does not validate; the
write replaced a write of mox's (P is not what the path held); or mox shows P's view (it looked
less than a second before our write) or anything else. A file no longer S ends the confirmation
as in step 4, without the wait. Shared with the full protocol: S validates (mox refusing S and
keeping an older file that looks like S cannot be told from the socket), file times move only
forward, distinct writes get distinct mtimes (the writer makes sure of it for its own), and the
wall clock is not stepped during an apply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from reconciler.apply import writer
from reconciler.errors import ReconcilerError
from reconciler.mox.config import Dynamic
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
    at_once: bool = False  # mox was seen holding the change right after the write, without waiting

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
Accepted = Callable[[writer.Snapshot], bool]  # the file validates: mox would load it, not refuse it


@dataclass(frozen=True, slots=True)
class View:
    """What mox's control socket shows of a config: every account (login disabled or not),
    whether each probed domain exists, and the destination addresses of each probed account
    (None: no such account)."""

    accounts: dict[str, bool]
    domains: dict[str, bool]
    addresses: dict[str, frozenset[str] | None]

    @classmethod
    def of(cls, dynamic: Dynamic, probes: Sequence[str], holders: Sequence[str] = ()) -> View:
        return cls({name: bool(acc.LoginDisabled) for name, acc in dynamic.Accounts.items()},
                   {d: d in dynamic.Domains for d in probes},
                   {a: frozenset(dynamic.Accounts[a].Destinations) if a in dynamic.Accounts else None
                    for a in holders})

    @classmethod
    def seen(cls, ctl: Ctl, probes: Sequence[str], holders: Sequence[str] = ()) -> View:
        """mox's memory, each command taking its config lock (raises CtlError)."""
        return cls({a.name: a.login_disabled for a in ctl.account_list()}, {d: _has_domain(ctl, d) for d in probes},
                   {a: _destinations(ctl, a) for a in holders})


def written_at(state: writer.Snapshot) -> float:
    """When `state` was written: its ctime or mtime, whichever is later (seconds)."""
    return max(state.stat.st_mtime_ns, state.stat.st_ctime_ns) / 1e9


def wait_out_throttle(state: writer.Snapshot, *, clock: Clock = time.time, sleep: Sleep = time.sleep) -> float:
    """Sleep until more than THROTTLE has passed since `state` was written; the seconds slept.

    Written at: its ctime or mtime, whichever is later; a time in the future (a clock set back)
    counts as now.
    """
    now = clock()
    written = min(written_at(state), now)
    wait = written + THROTTLE + MARGIN - now
    if wait <= 0:
        return 0.0
    sleep(wait)
    return wait


def confirm(state: writer.Snapshot, ctl: Ctl, *, domains: Sequence[str] = (), written: bool = True,
            before: writer.Snapshot | None = None, accepted: Accepted | None = None,
            clock: Clock = time.time, sleep: Sleep = time.sleep) -> Confirmation | None:
    """Whether the running mox holds `state` (see the module doc); None when domains.conf is no
    longer `state`. `domains`: names the change touched, looked up in mox's memory (at most
    MAX_PROBES). `written`: `state` is our write (the message says "the change"). `before`: the
    file our write of `state` replaced, with `accepted` telling whether it validates: then mox may
    be seen holding `state` at once, without the wait."""
    path = state.path
    probes = list(domains)[:MAX_PROBES]
    message = "mox loaded the change" if written else "mox has loaded domains.conf as it is"
    writer.checkpoint("confirm")
    try:
        ctl.version()  # connecting takes no lock: this only tells whether mox runs
        if before is not None and accepted is not None:
            seen = _seen_at_once(state, before, accepted, ctl, probes, clock)
            if seen is None:
                return None
            if seen:
                log.info("confirm: %s (seen at once, no wait for its reload throttle)", message)
                return Confirmation(Loaded.LOADED, message, 0.0, at_once=True)
    except CtlNotRunning as e:  # (again: mox stopped meanwhile) it reads the file when it starts
        return _not_running(e)
    except CtlError as e:
        raise _unreachable(state, e) from None
    waited = wait_out_throttle(state, clock=clock, sleep=sleep)
    try:
        seen_view = View.seen(ctl, probes)
    except CtlNotRunning as e:  # mox stopped meanwhile: it reads the file when it starts again
        return _not_running(e)
    except CtlError as e:
        raise _unreachable(state, e) from None
    if not _unchanged(state):
        return None
    problems = _differences(View.of(state.dynamic, probes), seen_view)
    if problems:
        raise NotLoaded(
            f"mox did not load {path}: {'; '.join(problems)}. mox keeps serving its previous config and logs "
            f"why as `loading domains config` (look in its log); the file stays as written")
    log.info("confirm: %s (waited %.2f s for its reload throttle)", message, waited)
    return Confirmation(Loaded.LOADED, message, waited)


def _seen_at_once(state: writer.Snapshot, before: writer.Snapshot, accepted: Accepted, ctl: Ctl,
                  probes: Sequence[str], clock: Clock) -> bool | None:
    """Right after our write of `state` over `before`: True when mox holds `state` already (the
    module doc says why that follows), False when that cannot be told yet, None when domains.conf
    is no longer `state`. Raises CtlError."""
    holders = _moved_addresses(before.dynamic, state.dynamic)
    want = View.of(state.dynamic, probes, holders)
    if want == View.of(before.dynamic, probes, holders):
        return False  # the change does not show over the socket
    if clock() - written_at(before) <= THROTTLE + MARGIN:
        return False  # mox may have looked at the file before `before` was written
    # Whether `before` validates is worked out while mox answers (it may be reloading a large
    # file): a thread of ours on one core, mox on the other.
    with ThreadPoolExecutor(1, thread_name_prefix="confirm") as pool:
        valid = pool.submit(accepted, before)
        seen = View.seen(ctl, probes, holders)
        if not _unchanged(state):
            return None
        if seen != want:
            return False  # mox looked at the file less than a second before our write (or refused it)
        return valid.result()


def _unchanged(state: writer.Snapshot) -> bool:
    """domains.conf is still `state`: same bytes, inode, size, mtime and ctime."""
    return writer.holds(state)


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


def _destinations(ctl: Ctl, account: str) -> frozenset[str] | None:
    """The account's destination addresses in mox's memory, as its config spells them
    (`accountaddresses`: the keys of its Destinations); None when mox has no such account."""
    try:
        return frozenset(ctl.account_addresses(account))
    except CtlCommandFailed as e:
        if "no such account" in e.reply:
            return None
        raise


def _moved_addresses(before: Dynamic, after: Dynamic) -> list[str]:
    """Accounts (at most MAX_PROBES) in both configs whose destination addresses differ: an
    address added or removed shows in `accountaddresses`. Not an account with a key mox
    rewrites in memory (a bare localpart becomes localpart@domain: mox-/config.go
    prepareDynamicConfig, replaceLocalparts), where mox's answer is not the file's spelling."""
    out = []
    for name, acc in after.Accounts.items():
        old = before.Accounts.get(name)
        if old is None or old is acc or old.Destinations.keys() == acc.Destinations.keys():
            continue
        if not all(map(_kept_as_written, [*old.Destinations, *acc.Destinations])):
            continue
        out.append(name)
        if len(out) == MAX_PROBES:
            break
    return out


def _kept_as_written(key: str) -> bool:
    """A Destinations key mox keeps as it is: a catch-all `@domain` or an address with an
    unquoted localpart (a bare localpart, quoted or not, is replaced by a full address)."""
    return key.startswith("@") or ("@" in key and not key.startswith('"'))


def _differences(want: View, have: View) -> list[str]:
    out = []
    if missing := sorted(set(want.accounts) - set(have.accounts)):
        out.append(f"its accounts lack {', '.join(missing)}")
    if extra := sorted(set(have.accounts) - set(want.accounts)):
        out.append(f"it has accounts the file does not: {', '.join(extra)}")
    if flipped := sorted(n for n in set(want.accounts) & set(have.accounts) if want.accounts[n] != have.accounts[n]):
        out.append(f"login disabled differs for {', '.join(flipped)}")
    for d, exists in want.domains.items():
        if have.domains[d] != exists:
            out.append(f"domain {d} is {'missing' if exists else 'still there'}")
    return out
