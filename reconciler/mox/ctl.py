"""A client for the control socket of a running mox, `<DataDir>/ctl`.

mox's own CLI (`mox config account list`, `mox setaccountpassword`, ...) talks to the server over
this unix socket, and so does the reconciler: to learn whether mox runs, to make it take its
config lock (which reloads a changed domains.conf), to read its live view of accounts and
addresses, and to set passwords, which live in the account databases and not in domains.conf.

The protocol, as mox v0.0.17 implements it (ctl.go: `xctl`, `servectl`, `servectlcmd`,
`ctlreader.Read`, `ctlwriter.Write`); every message is one line ending in a newline:

* on connect the server sends `ctlv0`;
* the client sends the command name, then each parameter on a line of its own;
* the server answers `ok`, or an error text (then it closes the connection);
* some commands then send one more line (`addressaccount`) or a data stream: repeated `<n>` + n
  bytes, each answered by the reader with `ok`, ended by `0`. An error inside a stream comes in
  place of a count.

A connection can carry several commands; this client opens one per call (a unix socket costs
little, and an error closes the server's side anyway). Every call has one deadline.
"""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import stat
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, NoReturn

from reconciler.mox.errors import (
    CtlCommandFailed,
    CtlError,
    CtlNotRunning,
    CtlPermissionDenied,
    CtlProtocolError,
    CtlTimeout,
    CtlUnavailable,
)
from reconciler.mox.golang import nfc
from reconciler.mox.live import ConfigPaths, read_static

VERSION_LINE = "ctlv0"
DEFAULT_TIMEOUT = 30.0  # a domainadd generates two RSA keys; a busy two-core machine needs seconds
MAX_LINE = 1 << 20  # mox's longest lines are validation error lists
SUN_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux
_COUNT = re.compile(r"[0-9]{1,10}")

Reply = Literal["ok", "line", "stream"]


@dataclass(frozen=True, slots=True)
class AccountEntry:
    """One line of `accountlist`: an account, and whether its login is disabled."""

    name: str
    login_disabled: bool


@dataclass(frozen=True, slots=True)
class AliasInfo:
    """`aliasprint`: an alias's flags and members as mox holds them."""

    post_public: bool
    list_members: bool
    allow_msg_from: bool
    members: tuple[str, ...]


def ctl_path(paths: ConfigPaths, data_dir: str) -> Path:
    """`<DataDir>/ctl`, DataDir relative to mox.conf's directory (mox-/dir.go `DataDirPath`,
    whose filepath.Join also cleans the path)."""
    return Path(os.path.normpath(paths.resolve(data_dir) / "ctl"))


class Ctl:
    """Calls to one mox's control socket. Thread-safe: no state is kept between calls."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = os.fspath(path)
        self.timeout = timeout

    @classmethod
    def for_config(cls, mox_conf: str | os.PathLike[str], *, timeout: float = DEFAULT_TIMEOUT) -> Ctl:
        """The socket of the mox that `mox_conf` configures (reads DataDir from it; LiveConfigError
        when mox.conf cannot be read)."""
        paths = ConfigPaths(Path(mox_conf))
        return cls(ctl_path(paths, read_static(paths).DataDir), timeout=timeout)

    # -- connection-level calls

    def version(self) -> str:
        """Connect and check the version line; the cheapest proof that mox is serving."""
        with _Exchange(self.path, self.timeout, "connecting") as x:
            return x.version

    def call(self, command: str, params: Sequence[str] = (), *, reply: Reply = "ok",
             label: str | None = None, secrets: Sequence[str] = ()) -> str:
        """Run one command; returns "" (reply "ok"), the line after `ok`, or the stream's text.

        `label` is how errors name the call (default: the command and its parameters); pass one
        without secret parameters, and list those in `secrets` so no text from mox repeats them.
        """
        shown = label if label is not None else " ".join([command, *params])
        for i, p in enumerate([command, *params]):
            if "\n" in p:
                what = "the command" if i == 0 else f"parameter {i}"
                raise CtlError(f"cannot send `{label or command}` to mox: {what} contains a newline, "
                               f"which the control protocol cannot carry", path=self.path)
        with _Exchange(self.path, self.timeout, shown, secrets) as x:
            x.send([command, *params])
            return x.answer(reply)

    # -- typed commands (parameters in mox's order; ctl.go `servectlcmd`)

    def account_list(self) -> list[AccountEntry]:
        out = []
        for line in _lines(self.call("accountlist", reply="stream")):
            name, sep, rest = line.partition("\t")
            if sep and rest != "(disabled)":
                raise CtlProtocolError(f"unexpected accountlist line from mox: {line!r}", path=self.path)
            out.append(AccountEntry(name, bool(sep)))
        return out

    def account_addresses(self, account: str) -> list[str]:
        return _lines(self.call("accountaddresses", [account], reply="stream"))

    def address_account(self, address: str) -> str:
        """The account an address (or `@domain` catch-all) delivers to."""
        return self.call("addressaccount", [address], reply="line")

    def alias_list(self, domain: str) -> list[str]:
        return _lines(self.call("aliaslist", [domain], reply="stream"))

    def alias_print(self, address: str) -> AliasInfo:
        lines = _lines(self.call("aliasprint", [address], reply="stream"))
        flags = {}
        for line, key in zip(lines[:3], ("postpublic", "listmembers", "allowmsgfrom"), strict=False):
            prefix = f"# {key} "
            value = line[len(prefix):] if line.startswith(prefix) else ""
            if value not in ("true", "false"):
                break
            flags[key] = value == "true"
        if len(flags) != 3 or lines[3:4] != ["# members:"]:
            raise CtlProtocolError(f"unexpected aliasprint output from mox: {lines[:4]!r}", path=self.path)
        return AliasInfo(flags["postpublic"], flags["listmembers"], flags["allowmsgfrom"], tuple(lines[4:]))

    def domain_add(self, domain: str, account: str, localpart: str = "", *, disabled: bool = False) -> None:
        """mox's DomainAdd: a new account needs `localpart`; an existing one must have none."""
        self.call("domainadd", [_bool(disabled), domain, account, localpart])

    def domain_remove(self, domain: str) -> None:
        self.call("domainrm", [domain])

    def domain_set_disabled(self, domain: str, disabled: bool) -> None:
        self.call("domaindisabled", [domain, _bool(disabled)])

    def account_add(self, account: str, address: str) -> None:
        self.call("accountadd", [account, address])

    def account_remove(self, account: str) -> None:
        self.call("accountrm", [account])

    def address_add(self, address: str, account: str) -> None:
        self.call("addressadd", [address, account])

    def address_remove(self, address: str) -> None:
        self.call("addressrm", [address])

    def alias_add(self, address: str, members: Sequence[str], *, post_public: bool = False,
                  list_members: bool = False, allow_msg_from: bool = False) -> None:
        """mox's AliasAdd with the flags as given (mox's CLI sets PostPublic; this does not)."""
        alias = {"Addresses": list(members), "PostPublic": post_public, "ListMembers": list_members,
                 "AllowMsgFrom": allow_msg_from}
        self.call("aliasadd", [address, json.dumps(alias)])

    def alias_update(self, address: str, *, post_public: bool | None = None, list_members: bool | None = None,
                     allow_msg_from: bool | None = None) -> None:
        """Set the given flags; None leaves a flag as it is."""
        flags = [post_public, list_members, allow_msg_from]
        self.call("aliasupdate", [address, *("" if f is None else _bool(f) for f in flags)])

    def alias_remove(self, address: str) -> None:
        self.call("aliasrm", [address])

    def alias_add_members(self, address: str, members: Sequence[str]) -> None:
        self.call("aliasaddaddr", [address, json.dumps(list(members))])

    def alias_remove_members(self, address: str, members: Sequence[str]) -> None:
        self.call("aliasrmaddr", [address, json.dumps(list(members))])

    def set_account_password(self, account: str, password: str) -> None:
        """Store the password's derived secrets in the account's database (bcrypt, SCRAM,
        CRAM-MD5). mox refuses fewer than 8 bytes (after PRECIS) and unknown accounts."""
        self.call("setaccountpassword", [account, password], label=f"setaccountpassword {account}",
                  secrets=[password])


def password_problem(password: str) -> str | None:
    """Why `setaccountpassword` would refuse `password` (mox's words), or None.

    mox's Account.SetPassword (store/account.go) prepares the password with PRECIS OpaqueString
    and wants at least 8 bytes of the result. Of PRECIS this checks what a password file can get
    wrong (control characters such as a tab or a second line; NFC and non-ASCII spaces mapped to
    ASCII ones before counting); mox itself refuses the rarer rest (unassigned code points) when
    the password is set. The text never contains the password.
    """
    if any(unicodedata.category(c) == "Cc" for c in password):
        return 'password not allowed by "precis" (it contains a control character)'
    prepared = nfc("".join(" " if unicodedata.category(c) == "Zs" else c for c in password))
    if len(prepared.encode()) < 8:
        return "password must be at least 8 characters long (mox counts bytes)"
    return None


def _bool(b: bool) -> str:
    return "true" if b else "false"


def _lines(text: str) -> list[str]:
    return text.splitlines()


class _Exchange:
    """One connection for one command: connect, version check, send, read the answer."""

    def __init__(self, path: str, timeout: float, label: str, secrets: Sequence[str] = ()) -> None:
        self.path = path
        self.timeout = timeout
        self.label = label
        self.secrets = [s for s in secrets if s]
        self.deadline = time.monotonic() + timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.reader: IO[bytes] = self.sock.makefile("rb")
        self.version = ""

    def __enter__(self) -> _Exchange:
        try:
            self._connect()
            self.version = self._readline("waiting for mox's version line")
        except BaseException:
            self.close()
            raise
        if self.version != VERSION_LINE:
            self.close()
            raise CtlProtocolError(
                f"{self.path} does not speak mox's control protocol: expected {VERSION_LINE!r}, got "
                f"{self._shown(self.version)!r} (is this the ctl socket of mox v0.0.17?)", path=self.path)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def _connect(self) -> None:
        if len(os.fsencode(self.path)) > SUN_PATH_MAX:
            raise CtlNotRunning(f"mox's control socket path {self.path} is longer than a unix socket path "
                                f"can be ({SUN_PATH_MAX} bytes): no mox can listen there", path=self.path)
        self._settimeout("connecting")
        try:
            self.sock.connect(self.path)
        except (FileNotFoundError, NotADirectoryError):
            raise CtlNotRunning(
                f"mox's control socket {self.path} does not exist: mox is not running (start it with "
                f"`mox serve`), or mox.conf's DataDir is not this mox's data directory", path=self.path) from None
        except ConnectionRefusedError:
            raise CtlNotRunning(self._refused_text(), path=self.path) from None
        except PermissionError:
            raise CtlPermissionDenied(self._denied_text(), path=self.path) from None
        except TimeoutError:
            raise self._timeout("connecting") from None
        except OSError as e:
            raise CtlUnavailable(f"cannot connect to mox's control socket {self.path}: "
                                 f"{e.strerror or e}", path=self.path) from None

    def _refused_text(self) -> str:
        try:
            is_socket = stat.S_ISSOCK(os.stat(self.path).st_mode)
        except OSError:
            is_socket = True
        if not is_socket:
            return f"{self.path} is not a socket: not mox's control socket (check DataDir in mox.conf)"
        return (f"mox's control socket {self.path} refuses connections: mox is not running (the socket "
                f"is left from a mox that stopped); start it with `mox serve`")

    def _denied_text(self) -> str:
        me = os.geteuid()
        try:
            st = os.stat(self.path)
            detail = f"the socket is owned by uid {st.st_uid} with mode {stat.S_IMODE(st.st_mode):04o}"
        except OSError:
            detail = f"its directory {os.path.dirname(self.path) or '.'} is not accessible"
        return (f"permission denied connecting to mox's control socket {self.path} ({detail}; this "
                f"process runs as uid {me}): run as root or as mox's user (`User` in mox.conf)")

    def _timeout(self, phase: str) -> CtlTimeout:
        return CtlTimeout(f"mox's control socket {self.path} did not answer within {self.timeout:g} s "
                          f"({phase}): mox may be hung or overloaded; see its log, or allow more time",
                          path=self.path)

    def _settimeout(self, phase: str) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self._timeout(phase)
        self.sock.settimeout(left)

    def _shown(self, text: str) -> str:
        """Text from the other side, safe to put in a message: secrets masked, length bounded."""
        for s in self.secrets:
            text = text.replace(s, "(redacted)")
        return text if len(text) <= 2000 else text[:2000] + "…"

    def _readline(self, phase: str) -> str:
        self._settimeout(phase)
        try:
            raw = self.reader.readline(MAX_LINE + 1)
        except TimeoutError:
            raise self._timeout(phase) from None
        except OSError as e:
            raise CtlProtocolError(f"reading from mox's control socket {self.path} ({phase}): "
                                   f"{e.strerror or e}", path=self.path) from None
        if not raw.endswith(b"\n"):
            what = "a line longer than 1 MiB" if len(raw) > MAX_LINE else "the connection closed"
            raise CtlProtocolError(f"mox's control socket {self.path}: {what} ({phase})", path=self.path)
        return raw[:-1].decode("utf-8", errors="replace")

    def _read_exact(self, n: int, phase: str) -> bytes:
        self._settimeout(phase)
        try:
            data = self.reader.read(n)
        except TimeoutError:
            raise self._timeout(phase) from None
        if len(data) != n:
            raise CtlProtocolError(f"mox's control socket {self.path}: the connection closed in the "
                                   f"middle of data ({phase})", path=self.path)
        return data

    def _write(self, data: bytes, phase: str) -> None:
        self._settimeout(phase)
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise self._timeout(phase) from None
        except OSError as e:
            if e.errno not in (errno.EPIPE, errno.ECONNRESET):
                raise CtlProtocolError(f"writing to mox's control socket {self.path} ({phase}): "
                                       f"{e.strerror or e}", path=self.path) from None
            # mox stops reading after a bad parameter: its error line explains why.
            self._fail(self._readline(phase))

    def send(self, lines: Sequence[str]) -> None:
        self._write("".join(line + "\n" for line in lines).encode(), f"sending {self.label}")

    def _fail(self, reply: str) -> NoReturn:
        shown = self._shown(reply)
        raise CtlCommandFailed(f"mox refused `{self.label}`: {shown}", path=self.path,
                               command=self.label, reply=shown)

    def answer(self, reply: Reply) -> str:
        phase = f"waiting for the answer to {self.label}"
        first = self._readline(phase)
        if first != "ok":
            self._fail(first)
        if reply == "ok":
            return ""
        if reply == "line":
            return self._readline(phase)
        chunks: list[bytes] = []
        while True:
            count = self._readline(phase)
            if not _COUNT.fullmatch(count):
                self._fail(count)
            n = int(count)
            if n == 0:
                return b"".join(chunks).decode("utf-8", errors="replace")
            chunks.append(self._read_exact(n, phase))
            self._write(b"ok\n", phase)
