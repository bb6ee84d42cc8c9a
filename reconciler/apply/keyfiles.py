"""Writing new DKIM key files beside domains.conf: O_EXCL, mox's modes, owned like domains.conf, fsynced."""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.fsutil import write_fully
from reconciler.mox.keygen import KEY_DIR_MODE, KEY_FILE_MODE


def _owner_of(like: os.stat_result | None) -> tuple[int, int] | None:
    return (like.st_uid, like.st_gid) if like is not None else None


def make_dirs(path: Path, stop: Path, like: os.stat_result | None) -> None:
    """Create missing directories up to `stop` as 02750, owned like `like` (domains.conf)."""
    missing: list[Path] = []
    p = path
    while p != stop and not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, KEY_DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(d, KEY_DIR_MODE)  # mkdir's mode is filtered by the umask.
        owner = _owner_of(like)
        if owner is not None:
            _chown(d, owner)


def _chown(path: Path | int, owner: tuple[int, int]) -> None:
    st = os.stat(path)
    if (st.st_uid, st.st_gid) == owner:
        return
    if isinstance(path, int):
        os.fchown(path, *owner)
    else:
        os.chown(path, *owner)


def write_key_file(config_dir: Path, relpath: str, pem: bytes, like: os.stat_result | None) -> Path:
    """Create a new key file (O_EXCL: never overwrite), 0640, owned like domains.conf, fsynced."""
    path = config_dir / relpath
    make_dirs(path.parent, config_dir, like)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, KEY_FILE_MODE)
    try:
        os.fchmod(fd, KEY_FILE_MODE)
        owner = _owner_of(like)
        if owner is not None:
            _chown(fd, owner)
        write_fully(fd, pem)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    return path
