"""Account passwords: when the plan sets one, and what the reconciler keeps to know that.

mox keeps passwords in each account's database, not in domains.conf (store/account.go
SetPassword, reached through the control socket's `setaccountpassword`, ctl.go), so they are
set after the config is written, as plan steps of their own (`SetPassword`). A password is set
when the plan creates its account, and again whenever the content of its secret changes; a
password someone changed in mox since (the account's own user, an admin) is left alone until then.

To know whether the secret changed without storing it, the reconciler keeps a keyed digest per
account (HMAC-SHA256 over the account name and the password, with a random key) in
`mox-reconciler.passwords.json` beside the inventory: mode 0600, owned like domains.conf, key and
digests in one file. Deleting the file makes the next run set every password from its secret
again (to the same values). Removing `Password` from an account leaves its password as it is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from reconciler.desired.models import DesiredState
from reconciler.desired.secrets import SecretError, SecretRef, read_secret
from reconciler.errors import REPORTED, LiveConfigError
from reconciler.fsutil import SharedDir
from reconciler.mox.admin import JSON_VERSION, Context, Effect, Operation
from reconciler.mox.config import Dynamic
from reconciler.mox.ctl import password_problem
from reconciler.mox.errors import RequestError

PASSWORDS_FILE = "mox-reconciler.passwords.json"
VERSION = 1
KEY_BYTES = 32
_DIGEST_PREFIX = "hmac-sha256:"


@dataclass(frozen=True, slots=True)
class SetPassword(Operation):
    """mox's `setaccountpassword` through the control socket, from a secret reference. Changes
    nothing in domains.conf: apply runs it after the config is written and mox has loaded it."""

    account: str
    password: SecretRef
    changed: bool = False  # the secret's content changed since the reconciler last set it

    def describe(self) -> str:
        text = f"set password of account {self.account} (from {self.password.describe()})"
        return text + " (changed)" if self.changed else text

    def apply(self, dyn: Dynamic, ctx: Context) -> Effect:
        if self.account not in dyn.Accounts:
            raise RequestError("account not present")
        return Effect(dyn)

    def to_json(self) -> dict[str, Any]:
        """The reference only: a plan never holds a password."""
        return {"version": JSON_VERSION, "op": type(self).__name__, "account": self.account,
                "password": self.password.to_json(), "changed": self.changed}


class PasswordStatus(StrEnum):
    """What the reconciler knows about an account's password, compared with its secret now."""

    UNKNOWN = "unknown"  # never set by the reconciler (or its record was lost)
    SAME = "same"  # set from this very content
    CHANGED = "changed"  # set from another content: the secret changed


def password_statuses(desired: DesiredState, book: PasswordBook) -> dict[str, PasswordStatus]:
    """What the book says of each desired account's password (its secret read already)."""
    return {name: book.status(name, a.Password.text()) for name, a in desired.Accounts.items()
            if a.Password is not None}


def password_text(step: SetPassword) -> str:
    """The password a step sets: as read with the desired state, or (a step of a plan file) read
    now from its reference. SecretError names the account and the reference, never the password."""
    ref = step.password
    if ref.is_read:
        return ref.text()
    try:
        text = read_secret(ref)
    except SecretError as e:
        raise SecretError(f"password of account {step.account}: {e}") from None
    why = password_problem(text)
    if why:
        raise SecretError(f"password of account {step.account}: the password from {ref.describe()} "
                          f"would be refused by mox: {why}")
    ref.remember(text)
    return text


def passwords_path(config_dir: Path) -> Path:
    return config_dir / PASSWORDS_FILE


@dataclass(frozen=True)
class PasswordBook:
    """The key and the digest of the password last set per account (never a password)."""

    key: bytes = b""  # empty: no file yet (a key is made when the first password is recorded)
    digests: Mapping[str, str] = field(default_factory=dict)

    def digest(self, account: str, password: str) -> str:
        mac = hmac.new(self.key, account.encode() + b"\0" + password.encode(), hashlib.sha256)
        return _DIGEST_PREFIX + mac.hexdigest()

    def status(self, account: str, password: str) -> PasswordStatus:
        have = self.digests.get(account)
        if have is None or not self.key:
            return PasswordStatus.UNKNOWN
        same = hmac.compare_digest(have, self.digest(account, password))
        return PasswordStatus.SAME if same else PasswordStatus.CHANGED

    def recorded(self, passwords: Mapping[str, str], keep: frozenset[str] | set[str]) -> PasswordBook:
        """The book after setting `passwords` (account -> password), keeping only accounts in `keep`."""
        book = PasswordBook(self.key, {a: d for a, d in self.digests.items() if a in keep})
        digests = dict(book.digests)
        digests.update((a, book.digest(a, p)) for a, p in passwords.items())
        return PasswordBook(self.key, dict(sorted(digests.items())))

    def to_json(self) -> dict[str, Any]:
        return {"version": VERSION, "key": base64.b64encode(self.key).decode(), "accounts": dict(self.digests)}


def read_password_book(config_dir: Path) -> PasswordBook:
    """The book beside domains.conf; an empty one when there is none yet (LiveConfigError when it
    cannot be read or is damaged: deleting it is safe, every password is then set once more)."""
    path = passwords_path(config_dir)
    try:
        data = json.loads(SharedDir.of(config_dir / "domains.conf").read(path))
    except FileNotFoundError:
        return PasswordBook()
    except PermissionError:
        raise LiveConfigError(f"{path}: cannot read: permission denied (it is mode 0600, owned like domains.conf: "
                              f"run as root or as mox's user)") from None
    except REPORTED as e:
        raise LiveConfigError(f"cannot read the password digests: {e}") from None
    except (OSError, ValueError) as e:
        raise LiveConfigError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    try:
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ValueError(f"not a version {VERSION} passwords file")
        key = base64.b64decode(str(data["key"]), validate=True)
        accounts = data["accounts"]
        if len(key) != KEY_BYTES or not isinstance(accounts, dict) or not all(
                isinstance(v, str) and v.startswith(_DIGEST_PREFIX) for v in accounts.values()):
            raise ValueError("damaged")
    except (KeyError, ValueError, binascii.Error) as e:
        raise LiveConfigError(f"{path}: {e} (delete it to have every password set once more)") from None
    return PasswordBook(key, {str(k): v for k, v in accounts.items()})
