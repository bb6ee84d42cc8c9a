"""The errors of the mox port: the kinds of failure mox itself has, with mox's texts.

The rest of the package has its own root, `reconciler.errors.ReconcilerError`; the CLI reports
both as one message (`reconciler.errors.REPORTED`). Parse errors of names, Go values and sconf
(`names.ParseError`, `golang.GoSyntaxError`, `sconf.SconfError`) stay `ValueError`s beside the code
that raises them: callers turn them into one of these, with the location they know.
"""

from __future__ import annotations

from collections.abc import Sequence


class MoxError(Exception):
    """An error the CLI reports as a message (no traceback), exit code `exit_code`."""

    exit_code = 1


class LiveConfigError(MoxError):
    """mox.conf or domains.conf cannot be found, read or parsed."""


class ConfigInvalid(MoxError):
    """A config that mox would reject (mox's ErrConfig); carries every error at once."""

    def __init__(self, errors: Sequence[str], *, where: str = "") -> None:
        self.errors = list(errors)
        self.where = where
        head = f"{where}: " if where else ""
        super().__init__(head + "config error: " + "; ".join(self.errors))


class RequestError(MoxError):
    """A precondition of a mox admin primitive failed (mox's ErrRequest, 'bad request: ...')."""

    def __str__(self) -> str:
        return f"bad request: {super().__str__()}"


class PrimitiveError(MoxError):
    """A primitive failed with a mox error that is not a 'bad request' (printed as mox prints it)."""


class RecordsError(MoxError):
    """DNS records cannot be made: unknown domain, unreadable or unusable key file, bad config value."""


class CtlError(MoxError):
    """Talking to a running mox over its control socket failed (see `mox.ctl`).

    Messages name the socket and what to do; they never contain a secret parameter (a password).
    The keyword attributes have defaults so that the errors pickle (they cross process borders)."""

    def __init__(self, message: str, *, path: str = "") -> None:
        self.path = path
        super().__init__(message)


class CtlUnavailable(CtlError):
    """No connection to mox: it is not running, or this process may not use its socket."""


class CtlNotRunning(CtlUnavailable):
    """The socket is missing, refuses connections or has a path too long for a unix socket: no
    mox serves this data directory."""


class CtlPermissionDenied(CtlUnavailable):
    """The socket (or its directory) belongs to mox's user and this process is someone else."""


class CtlTimeout(CtlError):
    """mox accepted the connection but did not answer in time."""


class CtlProtocolError(CtlError):
    """The other side does not speak mox's `ctlv0` protocol, or broke off mid-answer."""


class CtlCommandFailed(CtlError):
    """mox ran the command and answered with an error (its text, as mox's CLI prints it)."""

    def __init__(self, message: str, *, path: str = "", command: str = "", reply: str = "") -> None:
        self.command = command
        self.reply = reply
        super().__init__(message, path=path)
