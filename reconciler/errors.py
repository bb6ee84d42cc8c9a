"""The reconciler's errors: one small hierarchy, turned into messages and exit codes by the CLI only.

The rule: the mox port (`reconciler.mox`) raises the errors of `reconciler.mox.errors` (rooted at
`MoxError`); everything else raises these (rooted at `ReconcilerError`). Both are re-exported here,
and `REPORTED` is what the CLI and the watcher catch to report a failure as one message.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.mox.errors import ConfigInvalid, LiveConfigError, MoxError, PrimitiveError, RecordsError, RequestError

__all__ = [
    "REPORTED",
    "ConcurrentChange",
    "ConfigInvalid",
    "DesiredStateError",
    "LiveConfigError",
    "LockTimeout",
    "MoxError",
    "PermissionProblem",
    "PrimitiveError",
    "ReconcilerError",
    "RecordsError",
    "RequestError",
    "SourceError",
    "StalePlan",
    "UnsafePath",
    "UnsafePlan",
    "printable",
]


class ReconcilerError(Exception):
    """Any error the CLI reports as a message (no traceback), exit code `exit_code`."""

    exit_code = 1


class DesiredStateError(ReconcilerError):
    """The desired-state YAML is invalid; every problem as `file:line:col: field: message`."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class UnsafePlan(ReconcilerError):
    """A plan that needs --force; `problem` says why (a `reconciler.plan.safety.SafetyProblem`:
    unstated removals, or too large a share of change)."""

    def __init__(self, problem: object) -> None:
        self.problem = problem
        super().__init__(str(problem))


class StalePlan(ReconcilerError):
    """A saved plan whose live config or source has changed since it was made."""


class LockTimeout(ReconcilerError):
    """Another writer holds the config lock for too long."""


class ConcurrentChange(ReconcilerError):
    """domains.conf changed between read and write; nothing was written."""


class PermissionProblem(ReconcilerError):
    """A file the reconciler must write belongs to another user; the message names the path, its
    owner and what to do."""


class UnsafePath(ReconcilerError):
    """A symbolic link (or other surprise) where the reconciler creates, replaces or reads a file
    in a directory others can write, or in a desired-state source; nothing is followed."""


class SourceError(ReconcilerError):
    """The git source cannot be read (clone, fetch, ref, signature)."""


# Every error that is reported as a one-line message rather than a traceback.
REPORTED: tuple[type[Exception], ...] = (ReconcilerError, MoxError)


def printable(text: str, keep: str = "") -> str:
    """Text for a terminal: control characters that came from the input (a NUL in a file name,
    an escape sequence in a commit subject) shown as escapes, never sent; those in `keep` stay."""
    return "".join(c if c.isprintable() or c in keep else repr(c)[1:-1] for c in text)
