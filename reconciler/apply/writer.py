"""Locked, atomic replacement of domains.conf.

mox writes domains.conf in place (not atomically; mox-/config.go WriteDynamicLocked) and reloads it
lazily, at most once a second, when its mtime changes (mox-/config.go Config.DynamicLockUnlock).
So: hold a lock for the whole read-modify-write, read until two reads agree and parse, refuse to
replace a file that changed since it was read, write it with `fsutil.SharedDir` (temp file,
fsync, rename, fsync dir) with the old owner/group/mode and a different mtime, and notice a
write of mox's that landed in the old file at the moment it was replaced. Whether the running
mox then loaded it is `confirm`'s job.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from reconciler.errors import ConcurrentChange, LiveConfigError, LockTimeout
from reconciler.fsutil import Owner, SharedDir
from reconciler.mox import sconf
from reconciler.mox.config import Dynamic

log = logging.getLogger(__name__)

LOCK_NAME = "domains.conf.lock"
_PROCESS_LOCK = threading.Lock()

# The named points of an apply, in the order it passes them: key generation (in a worker when
# there is one), the key journal written, each key file (before it; its temp file written), the
# domains.conf temp file and rename (batch.py and `replace`), the inventory, and waiting for mox
# to load the change (pipeline/confirm).
CHECKPOINTS = ("keygen", "journal", "key-file", "key-temp", "before-temp", "before-rename", "after-rename",
               "after-commit", "inventory", "confirm")
# Test hook: `NAME` or `NAME:N` stops the process at the first (N-th) time it reaches checkpoint
# NAME: it prints `checkpoint NAME:N` on stderr and waits to be killed, so a crash test kills it
# inside every window without guessing a time. Unset in normal operation.
STOP_ENV = "MOX_RECONCILER_TEST_STOP_AT"
_reached: dict[str, int] = {}


def checkpoint(name: str) -> None:
    """A named point in the write protocol (one of CHECKPOINTS); stops here when the test hook says so."""
    if name not in CHECKPOINTS:
        raise ValueError(f"unknown checkpoint {name!r}")
    stop = os.environ.get(STOP_ENV)
    if not stop:
        return
    _reached[name] = n = _reached.get(name, 0) + 1
    want, _, nth = stop.partition(":")
    if want == name and n == int(nth or 1):
        sys.stderr.write(f"checkpoint {name}:{n}\n")
        sys.stderr.flush()
        threading.Event().wait()  # until killed


def config_dir_of(config_dir: Path) -> SharedDir:
    """mox's config dir as a directory shared with mox's user: what we create there belongs to
    the owner of domains.conf."""
    return SharedDir.of(config_dir / "domains.conf")


@contextmanager
def config_lock(config_dir: Path, timeout: float = 30.0) -> Iterator[None]:
    """One writer at a time: a thread lock in this process plus `domains.conf.lock` across processes
    (a flock: mox's user and root share the file, so it is owned like domains.conf, mode 0660)."""
    if not _PROCESS_LOCK.acquire(timeout=timeout):
        raise LockTimeout(f"{config_dir / LOCK_NAME}: another thread holds the config lock for > {timeout}s")
    try:
        with config_dir_of(config_dir).lock(config_dir / LOCK_NAME, timeout):
            yield
    finally:
        _PROCESS_LOCK.release()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """domains.conf as read: bytes, parsed config and the stat needed to detect later changes."""

    path: Path
    data: bytes
    dynamic: Dynamic
    stat: os.stat_result

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def mtime_ns(self) -> int:
        return self.stat.st_mtime_ns

    @property
    def identity(self) -> tuple[int, int, int, int, int]:
        """What changes whenever anyone writes the file (in place or by rename), even with the
        same bytes: device, inode, size, mtime and ctime (which no one can set back)."""
        st = self.stat
        return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns

    def same_file(self, other: Snapshot) -> bool:
        """The same bytes in the same, unwritten file."""
        return self.identity == other.identity and self.data == other.data


def _read_once(path: Path) -> tuple[bytes, os.stat_result]:
    """domains.conf's bytes and stat, never through a link: the write renames a new file over
    the name, which would replace a link instead of the file it points to."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise LiveConfigError(
                f"{path}: is a symbolic link; the reconciler replaces domains.conf by renaming a new file "
                "over it, which would replace the link: point --config at the directory it links to") from None
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        return f.read(), st


# domains.conf's bytes and the config they parse to, known from an earlier read or write.
Parsed = tuple[bytes, Dynamic]


def read_stable(path: Path, attempts: int = 20, pause: float = 0.05, known: Iterable[Parsed] = ()) -> Snapshot:
    """Read domains.conf until two consecutive reads agree (bytes and mtime) and the content parses.

    mox rewrites the file in place, so a single read can see a half-written file. `known`: the
    parsed config of bytes read or written before (the plan's read, the batch's write): when the
    file holds exactly those bytes, their config is taken instead of parsing them again (configs
    are never modified; at 10,000 domains a parse takes seconds), and the file is compared with
    them a piece at a time instead of being read whole (no second copy of it is held).
    """
    known = tuple(known)
    last_error = ""
    for data, dynamic in known:
        try:
            stat = _holds_twice(path, data)
        except OSError:
            break  # the reads below say why
        if stat is not None:
            return Snapshot(path, data, dynamic, stat)
    try:
        prev = _signature(_read_once(path))
    except FileNotFoundError:
        raise LiveConfigError(f"{path}: file not found") from None
    except OSError as e:
        raise LiveConfigError(f"{path}: {e.strerror or e}") from None
    for _ in range(attempts):
        cur = _read_once(path)
        sig = _signature(cur)
        if sig == prev:
            for data, dynamic in known:
                if data == cur[0]:  # the known bytes kept, the equal ones just read let go
                    return Snapshot(path, data, dynamic, cur[1])
            try:
                dyn = sconf.parse_bytes(cur[0], Dynamic, str(path))
            except sconf.SconfError as e:
                last_error = str(e)
            else:
                return Snapshot(path, cur[0], dyn, cur[1])
        prev = sig
        del cur
        time.sleep(pause)
    raise LiveConfigError(last_error or f"{path}: keeps changing while being read (is mox writing it?)")


def _same_bytes(path: Path, data: bytes, piece: int = 1 << 20) -> os.stat_result | None:
    """The file's stat when it holds exactly `data` (compared a piece at a time, never through a
    link), else None."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        return st if st.st_size == len(data) and _equal_pieces(f, data, piece) else None


def _equal_pieces(f: BinaryIO, data: bytes, piece: int) -> bool:
    """The rest of the open file is `data`, read a piece at a time."""
    view = memoryview(data)
    at = 0
    while chunk := f.read(piece):
        if view[at:at + len(chunk)] != chunk:
            return False
        at += len(chunk)
    return at == len(view)


def _holds_twice(path: Path, data: bytes) -> os.stat_result | None:
    """`read_stable`'s two agreeing reads for bytes already known: the file holds `data` twice
    under the same mtime (the stat of the second look), compared a piece at a time, so the apply
    holds no second copy of an 8.5 MB file to see it unchanged."""
    first = _same_bytes(path, data)
    if first is None:
        return None
    second = _same_bytes(path, data)
    if second is None or second.st_mtime_ns != first.st_mtime_ns:
        return None
    return second


def _signature(read: tuple[bytes, os.stat_result]) -> tuple[bytes, int, int]:
    """What two reads must share to be the same content: digest, size and mtime. A digest
    instead of the bytes, so only one copy of the file is held at a time (8.5 MB at 10,000
    domains, read twice per look)."""
    data, st = read
    return hashlib.sha256(data).digest(), len(data), st.st_mtime_ns


def holds(snap: Snapshot, piece: int = 1 << 20) -> bool:
    """domains.conf is the unwritten file of `snap` (`Snapshot.same_file`), compared a piece at a
    time: no second copy of the whole file is held."""
    fd = os.open(snap.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) != snap.identity:
            return False
        return _equal_pieces(f, snap.data, piece)


def check_unchanged(snap: Snapshot) -> None:
    """Raise ConcurrentChange if domains.conf is not the file `snap` was read from."""
    try:
        same = holds(snap)
    except OSError as e:
        raise ConcurrentChange(f"{snap.path}: cannot re-read before writing: {e.strerror or e}") from None
    if not same:
        raise ConcurrentChange(
            f"{snap.path}: changed by another writer since it was read (mox admin or an editor?); "
            "nothing was written, re-run to apply on top of the new content"
        )


@dataclass(frozen=True, slots=True)
class Replaced:
    """A committed replacement: the new file's stat, and what mox wrote into the old file at the
    moment it was replaced (its in-place write began before our rename and ended after it), which
    the new file lacks and must be written again on top of."""

    stat: os.stat_result
    displaced: Snapshot | None = None


def replace(snap: Snapshot, data: bytes, *, not_mtime: int | None = None,
            after_rename: Callable[[], None] | None = None) -> Replaced:
    """Atomically replace domains.conf with `data`, if it still is the file of `snap`.

    Keeps owner, group and mode; makes sure the mtime differs from the old one (and from
    `not_mtime`), because mox only reloads on an mtime change. A crash at any point leaves the old
    or the new file. The old file stays open through the rename: a write of mox's that slipped in
    between our last check and the rename is found there (`Replaced.displaced`). mox writes in
    place under its config lock, so a write it began on the old file before the rename may end
    after it: `after_rename` (the apply makes mox take its lock once) runs before the old file is
    looked at, so such a write has ended by then.
    """
    path = snap.path
    old = snap.stat
    held: list[int] = []

    def still_unchanged() -> None:
        checkpoint("before-rename")
        held.append(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC))
        check_unchanged(snap)
        if _changed(os.fstat(held[0]), old):
            raise ConcurrentChange(f"{path}: changed by another writer while being replaced; nothing was written")

    checkpoint("before-temp")
    shared = SharedDir.of(path)
    try:
        shared.write(path, data, old.st_mode & 0o7777, owner=Owner.of(old), before_rename=still_unchanged,
                     sync_dir=False)
        if after_rename is not None:
            try:
                after_rename()
            except Exception as e:  # written already: a failed look only leaves the window open
                log.warning("apply: after replacing %s: %s", path, e)
        displaced = _displaced(snap, held[0])
    finally:
        for fd in held:
            os.close(fd)
    checkpoint("after-rename")
    shared.fsync(path.parent)
    st = os.stat(path)
    if st.st_mtime_ns in (snap.mtime_ns, not_mtime):
        bumped = max(snap.mtime_ns, not_mtime or 0) + 1_000_000  # 1 ms: visible on coarse-timestamp filesystems too.
        os.utime(path, ns=(st.st_atime_ns, bumped))
        st = os.stat(path)
    return Replaced(st, displaced)


def _changed(st: os.stat_result, old: os.stat_result) -> bool:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) != (
        old.st_ino, old.st_size, old.st_mtime_ns, old.st_ctime_ns)


def _written(st: os.stat_result, old: os.stat_result) -> bool:
    """The (replaced) file's contents were written: its ctime moves anyway when the rename
    unlinks it, its size or mtime only on a write."""
    return (st.st_size, st.st_mtime_ns) != (old.st_size, old.st_mtime_ns)


def _displaced(snap: Snapshot, fd: int, attempts: int = 20, pause: float = 0.05) -> Snapshot | None:
    """The old file as mox left it, when mox wrote it in place after our last check (read until
    two reads agree and parse: mox may still be writing)."""
    if not _written(os.fstat(fd), snap.stat):
        return None
    log.warning("apply: mox wrote %s in place at the moment it was replaced; writing again on top of mox's version",
                snap.path)
    prev = b""
    for _ in range(attempts):
        st = os.fstat(fd)
        data = os.pread(fd, st.st_size, 0)
        if data == prev:
            try:
                return Snapshot(snap.path, data, sconf.parse_bytes(data, Dynamic, str(snap.path)), st)
            except sconf.SconfError:
                pass
        prev = data
        time.sleep(pause)
    log.error("apply: mox's write into the replaced %s never became readable; mox reloads ours, without it",
              snap.path)
    return None
