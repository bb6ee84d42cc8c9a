"""A fleet: one repository, many mox servers (`instances/<name>/`, each sharing `common/`).

Each server's reconciler runs with `--subdir instances/<name>`; CI checks and plans every
instance (`validate --all-instances`, `plan --all-instances`). An instance is a directory under
`instances/` (hidden ones and plain files are skipped); its name is the directory's name, which
is also the watcher's default `--instance` (metrics label, status field, notifications).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from reconciler.errors import ReconcilerError

INSTANCES_DIR = "instances"


@dataclass(frozen=True, order=True)
class Instance:
    """One mox server of a fleet."""

    name: str
    subdir: str  # relative to the repository root, POSIX form: "instances/<name>"


def relative_dir(text: str, what: str, error: type[ReconcilerError] = ReconcilerError) -> str:
    """A directory inside the repository as given by --subdir and the like: POSIX form, "" for
    the root; absolute paths and `..` are refused (`error`, naming `what`)."""
    p = PurePosixPath(text.replace(os.sep, "/"))
    if p.is_absolute() or ".." in p.parts:
        raise error(f"{what} {text!r}: must be a relative path inside the repository")
    return "" if str(p) == "." else str(p)


def find_instances(root: Path, instances_dir: str = INSTANCES_DIR, *, must_exist: bool = True) -> list[Instance]:
    """The instances under `root/instances_dir`, sorted by name. An error when there is no such
    directory or it holds no instance (unless not `must_exist`: a base commit may predate the fleet)."""
    rel = PurePosixPath(relative_dir(instances_dir, "instances directory") or ".")
    where = root / rel
    if not where.is_dir():
        if not must_exist:
            return []
        raise ReconcilerError(f"{where}: no such directory (the fleet layout keeps one directory per "
                              f"mox server in {rel}/)")
    found = sorted(Instance(p.name, (rel / p.name).as_posix()) for p in where.iterdir()
                   if p.is_dir() and not p.name.startswith("."))
    if not found and must_exist:
        raise ReconcilerError(f"{where}: no instance directories in it")
    return found


def default_instance_name(subdir: str | None) -> str:
    """The watcher's `--instance` when none is given: the last directory of `--subdir`
    (`instances/mail-a` -> `mail-a`), else this machine's host name."""
    if subdir:
        name = PurePosixPath(subdir.replace("\\", "/")).name
        if name and name not in (".", ".."):
            return name
    return socket.gethostname() or "localhost"
