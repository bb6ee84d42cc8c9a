"""Setting account passwords through mox's control socket, after the config is written.

The account must exist in the running mox first: a new account is in domains.conf, and mox
loads a changed domains.conf lazily (at most once a second, when something takes its config
lock; mox-/config.go DynamicLockUnlock). So before setting, this asks mox for its accounts
(`accountlist`, which takes that lock and so makes mox look at the file) until the accounts are
there. Then each password is set (`setaccountpassword`; mox stores only derived hashes, a
bcrypt each) and the digests recorded in the password book, read and written under the config
lock (held only for that), so concurrent reconcilers never lose each other's records.

A password that cannot be set now (mox not running, mox has not loaded the config, mox refused
the password) is reported with the reason and not recorded: the next run plans it again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reconciler.apply.writer import config_lock
from reconciler.fsutil import SharedDir
from reconciler.mox.ctl import Ctl
from reconciler.mox.errors import CtlCommandFailed, CtlError
from reconciler.mox.live import ConfigPaths
from reconciler.plan.passwords import KEY_BYTES, PasswordBook, SetPassword, passwords_path, read_password_book

BOOK_MODE = 0o600  # the key: only domains.conf's owner (mox's user) and root
LOAD_TIMEOUT = 15.0  # mox reloads within a second of being asked; a busy machine needs more
POLL = 0.1


@dataclass(frozen=True, slots=True)
class PasswordResult:
    """What became of one SetPassword step: set, or why not (never the password)."""

    account: str
    source: str  # where the password came from: "file /run/secrets/alice"
    set: bool
    reason: str = ""

    def describe(self) -> str:
        if self.set:
            return f"set password of account {self.account} (from {self.source})"
        return f"password of account {self.account} not set: {self.reason}"

    def to_json(self) -> dict[str, str]:
        return {"account": self.account, "from": self.source, "result": "set" if self.set else "pending",
                "reason": self.reason}


NEXT_RUN = "the config is applied; the next run (or the watcher's retry) sets the password"


def set_passwords(paths: ConfigPaths, steps: Sequence[tuple[SetPassword, str]], *, accounts_after: set[str],
                  load_timeout: float = LOAD_TIMEOUT, clock: Callable[[], float] = time.monotonic,
                  ) -> list[PasswordResult]:
    """Set each step's password (the text read from its reference) in the running mox.

    `accounts_after`: the accounts of domains.conf as written (the book keeps only those).
    """
    if not steps:
        return []
    try:
        ctl = Ctl.for_config(paths.mox_conf)
        missing = _wait_for_accounts(ctl, {s.account for s, _ in steps}, load_timeout, clock)
    except CtlError as e:
        return [_pending(step, f"{e}; {NEXT_RUN}") for step, _ in steps]
    results: list[PasswordResult] = []
    done: dict[str, str] = {}
    for step, text in steps:
        if step.account in missing:
            results.append(_pending(step, f"mox has not loaded the config with account {step.account} "
                                    f"(not in mox's account list after {load_timeout:g} s); {NEXT_RUN}"))
            continue
        try:
            ctl.set_account_password(step.account, text)
        except CtlCommandFailed as e:
            results.append(_pending(step, f"{e}; fix the secret, the next run sets it"))
            continue
        except CtlError as e:
            results.append(_pending(step, f"{e}; {NEXT_RUN}"))
            continue
        done[step.account] = text
        results.append(PasswordResult(step.account, step.password.describe(), True))
    if done:
        with config_lock(paths.config_dir):
            write_password_book(paths, read_password_book(paths.config_dir), done, accounts_after)
    return results


def _pending(step: SetPassword, reason: str) -> PasswordResult:
    """Not set (the caller reports it: the CLI on stderr, the watcher in its log and status)."""
    return PasswordResult(step.account, step.password.describe(), False, reason)


def _wait_for_accounts(ctl: Ctl, wanted: set[str], timeout: float, clock: Callable[[], float]) -> set[str]:
    """The accounts of `wanted` that mox still does not know after `timeout` (asking makes mox
    reload a changed domains.conf once its one-second window has passed)."""
    deadline = clock() + timeout
    while True:
        missing = wanted - {a.name for a in ctl.account_list()}
        if not missing or clock() >= deadline:
            return missing
        time.sleep(POLL)  # mox's reload window, not luck: the deadline bounds it


def write_password_book(paths: ConfigPaths, book: PasswordBook, passwords: dict[str, str],
                        accounts: set[str]) -> None:
    """Record `passwords` (account -> password as set) and forget accounts that no longer
    exist; a new book gets a random key. Mode 0600, owned like domains.conf. Call under the lock."""
    if not book.key:
        book = PasswordBook(os.urandom(KEY_BYTES), book.digests)
    new = book.recorded(passwords, accounts)
    SharedDir.of(paths.domains_conf).write_json(passwords_path(paths.config_dir), new.to_json(), BOOK_MODE)


def forget_accounts(paths: ConfigPaths, accounts: set[str]) -> None:
    """Drop the records of accounts that no longer exist (after an AccountRemove): an account
    made again under the same name gets its password set again."""
    with config_lock(paths.config_dir):
        book = read_password_book(paths.config_dir)
        if set(book.digests) - accounts:
            write_password_book(paths, book, {}, accounts)
