"""Writing new DKIM key files beside domains.conf: never over an existing file, mox's modes, owned
like domains.conf, complete or absent after a crash (fsutil.atomic_write, exclusive)."""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.fsutil import atomic_write, fsync_dir
from reconciler.mox.keygen import KEY_DIR_MODE, KEY_FILE_MODE


def _owner_of(like: os.stat_result | None) -> tuple[int, int] | None:
    return (like.st_uid, like.st_gid) if like is not None else None


def make_dirs(path: Path, stop: Path, like: os.stat_result | None) -> None:
    """Create missing directories up to `stop` as 02750, owned like `like` (domains.conf), durably."""
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
        fsync_dir(d.parent)


def _chown(path: Path, owner: tuple[int, int]) -> None:
    st = os.stat(path)
    if (st.st_uid, st.st_gid) != owner:
        os.chown(path, *owner)


def write_key_file(config_dir: Path, relpath: str, pem: bytes, like: os.stat_result | None) -> Path:
    """Create a new key file (never over an existing one: FileExistsError), 0640, owned like
    domains.conf. Its directory is not fsynced: the caller does that once for all new keys,
    before domains.conf names them."""
    path = config_dir / relpath
    make_dirs(path.parent, config_dir, like)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # of a write killed mid-way (we hold the lock)
        stale.unlink(missing_ok=True)
    atomic_write(path, pem, KEY_FILE_MODE, exact_mode=True, owner=_owner_of(like), exclusive=True, sync_dir=False)
    return path
