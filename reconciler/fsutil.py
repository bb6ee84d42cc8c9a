"""Durable file writes, the one way every writer of the package writes a file: domains.conf, DKIM
key files, the inventory, the status file, DNS-record reports, the apply report, `plan --out`,
`import -o`, `records --out`.

`atomic_write`: a temp file beside the target (mode and owner set before any byte is written),
written fully and fsynced, renamed over the target (or linked to it when it must not exist yet),
then the directory fsynced so the rename survives a crash. Readers see the old file or the new
one, never a part. Writers of many files in one directory pass `sync_dir=False` and call
`fsync_dir` once at the end.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_fully(fd: int, data: bytes) -> None:
    """Write all of `data` to `fd` (os.write may write less) and fsync it."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
    os.fsync(fd)


def fsync_dir(path: Path) -> None:
    """Make the renames and new names in directory `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path(path: Path) -> Path:
    """`.<name>.<pid>.<thread>.tmp` beside `path`: unique per writer, and recognisable as a leftover
    of `path` after a crash (`.<name>.*.tmp`)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def atomic_write(path: Path, data: bytes, mode: int = 0o644, *, exact_mode: bool = False,
                 owner: tuple[int, int] | None = None, exclusive: bool = False,
                 before_rename: Callable[[], None] | None = None, sync_dir: bool = True) -> None:
    """Replace `path` with `data` durably and atomically (see the module doc).

    `mode` is filtered by the umask as `open` does, unless `exact_mode`; `owner` (uid, gid) is
    set when it differs from ours. `exclusive`: never replace; FileExistsError if `path` exists.
    `before_rename` runs once the data is on disk and may raise to abort (nothing changes then).
    """
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600 if exact_mode else mode)
    try:
        try:
            if owner is not None and owner != (os.getuid(), os.getgid()):
                os.fchown(fd, *owner)  # before chmod: a chown clears the set-id bits
            if exact_mode:
                os.fchmod(fd, mode)
            write_fully(fd, data)
        finally:
            os.close(fd)
        if before_rename is not None:
            before_rename()
        if exclusive:
            os.link(tmp, path)  # fails if `path` exists: rename without replacing
            tmp.unlink()
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(path.parent)


def atomic_write_json(path: Path, data: Any, *, sync_dir: bool = True) -> None:
    """`data` as indented JSON with sorted keys, written with `atomic_write`."""
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write(path, text.encode(), sync_dir=sync_dir)
