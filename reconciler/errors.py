"""The reconciler's errors: one small hierarchy, turned into messages and exit codes by the CLI only."""

from __future__ import annotations

from collections.abc import Sequence


class ReconcilerError(Exception):
    """Any error the CLI reports as a message (no traceback), exit code `exit_code`."""

    exit_code = 1


class LiveConfigError(ReconcilerError):
    """mox.conf or domains.conf cannot be found, read or parsed."""


class ConfigInvalid(ReconcilerError):
    """A config that mox would reject (mox's ErrConfig); carries every error at once."""

    def __init__(self, errors: Sequence[str], *, where: str = "") -> None:
        self.errors = list(errors)
        self.where = where
        head = f"{where}: " if where else ""
        super().__init__(head + "config error: " + "; ".join(self.errors))


class RequestError(ReconcilerError):
    """A precondition of a mox admin primitive failed (mox's ErrRequest, 'bad request: ...')."""

    def __str__(self) -> str:
        return f"bad request: {super().__str__()}"


class DesiredStateError(ReconcilerError):
    """The desired-state YAML is invalid; every problem as `file:line:col: field: message`."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class UnsafePlan(ReconcilerError):
    """A plan that needs --force (too many changes, or a destructive operation)."""


class StalePlan(ReconcilerError):
    """A saved plan whose live config or source has changed since it was made."""


class LockTimeout(ReconcilerError):
    """Another writer holds the config lock for too long."""


class ConcurrentChange(ReconcilerError):
    """domains.conf changed between read and write; nothing was written."""


class SourceError(ReconcilerError):
    """The git source cannot be read (clone, fetch, ref, signature)."""
