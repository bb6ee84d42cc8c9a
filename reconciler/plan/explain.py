"""Errors found on the live side, pointed at their cause in the desired state.

Some problems show only once the desired state meets the live config: mox's validation of the
plan's result (a key file that is not there, a removed account that still receives a domain's
reports), a primitive's precondition. mox words them in its own terms (`domain example.org:
selector 2026a: reading private key: ...`, `account "bob": destination "x@y": ...`); here each
is given the file:line:col of the desired object it comes from and, for the common ones, what
to do about it. Located problems come first, in file order (the cause before its echoes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from reconciler.desired.models import DesiredState
from reconciler.desired.yamlload import dotted
from reconciler.errors import ConfigInvalid

_P = tuple[str | int, ...]

# "<go-quoted string>" as mox's messages quote names (strconv.Quote)
_QUOTED = r'"(?:[^"\\]|\\.)*"'

# What to do, by what mox says (searched in the message).
HINTS: tuple[tuple[str, str], ...] = (
    (r"reading private key: .*no such file or directory",
     "the key file is not in the config dir: put it there first, or leave PrivateKeyFile out and a key is "
     "generated"),
    (r"^postmaster account .* does not exist",
     "mox.conf's Postmaster.Account must exist: keep that account (do not list it under Removed.Accounts)"),
    (r"^host tlsrpt account .* does not exist",
     "mox.conf's HostTLSRPT.Account must exist: keep that account"),
    (r"(DMARC|TLSRPT) account .* does not exist",
     "the domain's reports go to an account that does not exist (removed?): give the domain another "
     "ReportsAccount (or DMARC/TLSRPT Account) first"),
    (r"unknown domain",
     "the address is in a domain the config does not have (removed?): remove the address too, or keep the domain"),
    (r"references non-existent address",
     "an alias member that no account has (removed?): take it out of the alias's Addresses too"),
    (r"MTA-STS enabled, but there is no listener",
     "mox.conf has no listener serving MTA-STS: set MTASTS: null for the domain, or enable MTASTSHTTPS"),
    (r"last member of alias",
     "the address is the last member of an alias: remove the alias too, or give it another member"),
)


def hint(message: str) -> str | None:
    for pattern, text in HINTS:
        if re.search(pattern, message):
            return text
    return None


def _unquote(text: str) -> str:
    try:
        value = json.loads(text)
    except ValueError:
        return text[1:-1]
    return value if isinstance(value, str) else text[1:-1]


def desired_path(message: str, desired: DesiredState) -> _P | None:
    """The desired-state path a mox validation message is about (most specific first)."""
    m = re.search(r"unknown domain (\S+?)[ :,)]|unknown domain (\S+)$", message)
    if m:  # an address left behind by a domain this plan removes: the removal is the cause
        name = m.group(1) or m.group(2)
        if name in desired.Removed.Domains:
            return ("Removed", "Domains", desired.Removed.Domains.index(name))
    m = re.match(rf"^account ({_QUOTED}): (?:destination ({_QUOTED}): )?", message)
    if m:
        path: _P = ("Accounts", _unquote(m.group(1)))
        if m.group(2):
            path = (*path, "Destinations", _unquote(m.group(2)))
        return path
    m = re.match(r"^domain (\S+): (?:(selector|alias) (\S+): )?(?:(DMARC|TLSRPT) )?", message)
    if m:
        path = ("Domains", m.group(1))
        if m.group(2) == "selector":
            path = (*path, "DKIM", "Selectors", m.group(3))
            if "private key" in message:
                path = (*path, "PrivateKeyFile")
        elif m.group(2) == "alias":
            path = (*path, "Aliases", m.group(3))
        elif m.group(4):
            path = (*path, m.group(4))
        return path
    m = re.match(rf"^(?:postmaster|host tlsrpt) account ({_QUOTED}) does not exist", message)
    if m:
        name = _unquote(m.group(1))
        if name in desired.Removed.Accounts:
            return ("Removed", "Accounts", desired.Removed.Accounts.index(name))
        return ("Accounts", name)
    return None


def locate(message: str, desired: DesiredState, path: _P | None = None) -> tuple[tuple[str, int, int], str]:
    """`file:line:col: field: message (hint)` for a message about `path` (found from the
    message when not given), with its sort key; without a place, the message and its hint."""
    path = path if path is not None else desired_path(message, desired)
    text = message
    why = hint(message)
    if why:
        text += f" ({why})"
    shortest = min(2, len(path or ()))  # an object, or a top-level key; never just "Accounts"
    while path and len(path) >= shortest:
        where = desired.where(*path)
        if where is not None:
            return (where.file, where.line, where.col), f"{where}: {dotted(path)}: {text}"
        path = path[:-1]
    return ("\uffff", 0, 0), text


class PlanRejected(ConfigInvalid):
    """mox would reject the plan's result: its messages, each at its cause in the desired state."""

    def __init__(self, errors: Sequence[str], desired: DesiredState) -> None:
        super().__init__(errors, where="the plan's result would be rejected by mox")
        self.located = [text for _, text in sorted(locate(e, desired) for e in errors)]

    def __str__(self) -> str:
        n = len(self.located)
        return (f"the plan's result would be rejected by mox ({n} problem{'s' if n != 1 else ''}; nothing was "
                "written):\n  " + "\n  ".join(self.located))
