"""An apply that ends only when the running mox holds the change: write, confirm, and when mox (or
anyone) wrote over it in the meantime, plan again against the new file and write again on top of
it, a bounded number of times.

One round: a locked batch (`batch.apply_batch`, which decides its operations under the lock from
domains.conf and the inventory as they are then: nothing, when the change is already there), then
`confirm.confirm` of domains.conf as the batch left it, outside the lock so that other writers
are not held up by mox's one-second throttle. The rounds share one key journal, settled at the
end: key files written for a domains.conf that mox then wrote over move to `dkim/old/`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from reconciler.apply import batch, confirm, journal, writer
from reconciler.apply.batch import BatchResult, PlanFor, Validator, Work
from reconciler.apply.keymaker import KeyMaker, Progress
from reconciler.errors import REPORTED
from reconciler.mox.admin import used_key_paths
from reconciler.mox.ctl import Ctl
from reconciler.mox.errors import CtlError
from reconciler.mox.live import ConfigPaths, read_static
from reconciler.plan.inventory import Inventory

log = logging.getLogger(__name__)

WRITES = 5  # writes of one apply before it gives up: mox wrote over each of them
QUIET_TIMEOUT = 60.0  # seconds to wait for a second in which no one writes domains.conf


@dataclass(frozen=True, slots=True)
class Applied:
    """The rounds of one apply and how the last one was confirmed."""

    batches: tuple[BatchResult, ...]
    confirmation: confirm.Confirmation

    @property
    def writes(self) -> tuple[BatchResult, ...]:
        return tuple(b for b in self.batches if b.written)


class _Budget:
    """`plan_for` with a bound on writes: when mox has written over the change `writes` times,
    another write is not tried; LoadNotConfirmed names the operations it would have needed."""

    def __init__(self, plan_for: PlanFor, writes: int, path: str) -> None:
        self.plan_for = plan_for
        self.writes = writes
        self.path = path
        self.used = 0

    def __call__(self, snap: writer.Snapshot, inventory: Inventory) -> Work:
        work = self.plan_for(snap, inventory)
        if work.operations and self.used >= self.writes:
            lost = "; ".join(work.described())
            raise confirm.LoadNotConfirmed(
                f"{self.path} was written over {self.used} times before mox loaded the change (mox's admin "
                f"pages or CLI working from an older config, or another writer); lost: {lost}. Re-run to apply "
                "it again")
        return work


def apply_until_loaded(paths: ConfigPaths, plan_for: PlanFor, ctl: Ctl, *, domains: Sequence[str] = (),
                       writes: int = WRITES, quiet_timeout: float = QUIET_TIMEOUT,
                       progress: Progress | None = None, workers: int | None = None,
                       validator: Validator | None = None, keys: KeyMaker | None = None,
                       known: Sequence[writer.Parsed] = (), written_by_us: Collection[str] = (),
                       accepted: confirm.Accepted | None = None) -> Applied:
    """Rounds of write + confirm until mox holds the change (or is not running).

    A round whose file was written over is followed by another: a new write when the change is
    missing from the new file (at most `writes` in all), or a new confirmation of the new file
    when it still holds the change (another writer built on it), for up to `quiet_timeout`
    seconds. LoadNotConfirmed (naming what mox lost) when either runs out. `known`: domains.conf
    bytes already parsed (the plan's read), not parsed again under the lock; `written_by_us`:
    digests of files the reconciler wrote (`batch.apply_batch`).
    `accepted`: whether the file a write replaced validates (default: mox's full validation),
    asked only when mox can be seen holding the change at once (confirm's module doc).
    """
    key_journal = journal.KeyJournal(paths.config_dir, writer.config_dir_of(paths.config_dir))
    budget = _Budget(plan_for, writes, str(paths.domains_conf))
    accepted = accepted or validates(paths)
    batches: list[BatchResult] = []
    deadline = time.monotonic() + quiet_timeout
    try:
        while True:
            done = batch.apply_batch(paths, budget, progress=progress, workers=workers, keys=keys,
                                     key_journal=key_journal, validator=validator, known=known,
                                     written_by_us=written_by_us, after_rename=lambda: _wait_for_mox_writes(ctl))
            batches.append(done)
            budget.used += done.written
            written = any(b.written for b in batches)
            outcome = confirm.confirm(done.state, ctl, domains=domains, written=written, before=done.before,
                                      accepted=accepted)
            if outcome is not None:
                return Applied(tuple(batches), outcome)
            log.warning("apply: %s was written over before mox was seen to load it; reading it again",
                        paths.domains_conf)
            if time.monotonic() > deadline:
                raise confirm.LoadNotConfirmed(
                    f"{paths.domains_conf} holds the change, but it was written again and again for "
                    f"{quiet_timeout:g} s: mox was not seen to load it (it needs a second without writes)")
    except confirm.LoadNotConfirmed as e:
        e.batches = tuple(batches)  # what was written all the same, for the apply report
        raise
    finally:
        _settle(paths, key_journal, [(b.state.data, b.state.dynamic) for b in batches[-1:]])


def _wait_for_mox_writes(ctl: Ctl) -> None:
    """Make mox take its config lock once, right after our rename: a write of mox's into the
    replaced file (mox writes in place, holding that lock) that began before the rename has ended
    when it answers, so the batch finds it in the old file and writes again on top of it. Without
    this, such a write ending after the batch's look was lost with the unlinked file. Nothing to
    wait for when mox is not running or does not answer (the confirmation says so)."""
    with contextlib.suppress(CtlError):
        ctl.account_list()


def validates(paths: ConfigPaths, validator: Validator = batch.default_validator) -> confirm.Accepted:
    """`confirm.Accepted` by `validator` against mox.conf as it is now (mox's reasons to refuse a
    file; any error reading mox.conf counts as a refusal)."""
    def accepted(snap: writer.Snapshot) -> bool:
        try:
            validator(read_static(paths), snap.dynamic, paths.config_dir)
        except REPORTED as e:
            log.info("confirm: %s before the write does not validate (%s): waiting out mox's throttle",
                     snap.path, e)
            return False
        return True
    return accepted


def _settle(paths: ConfigPaths, keys: journal.KeyJournal, known: Sequence[writer.Parsed] = ()) -> None:
    """Settle the key journal against domains.conf as it is now. `known`: the last round's
    domains.conf as written (or read), not parsed again when it is still the file: settling
    reads only its key file names, which the writer writes verbatim (sconf refuses the others)."""
    if not keys.entries:
        return
    try:
        with writer.config_lock(paths.config_dir):
            now = writer.read_stable(paths.domains_conf, known=known)
            keys.settle(used_key_paths(now.dynamic), now.stat, batch.mover(paths.config_dir, now.stat))
    except REPORTED as e:  # the next apply settles it (the journal stays)
        log.error("apply: cannot settle the key journal %s now: %s", keys.path, e)
