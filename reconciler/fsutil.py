"""Durable file writes, the one way every writer of the package writes a file: domains.conf, DKIM
key files, the inventory, the status file, DNS-record reports, the apply report, `plan --out`,
`import -o`, `records --out`.

A write: a temp file beside the target (created exclusively, mode and owner set before any byte
is written), written fully and fsynced, renamed over the target (or linked to it when it must not
exist yet), then the directory fsynced so the rename survives a crash. Readers see the old file
or the new one, never a part. Writers of many files in one directory pass `sync_dir=False` and
call `fsync_dir` once at the end. Artifacts (DNS-record reports, the apply report) also pass
`sync_data=False`: no fsync per file (a hundred fsyncs cost about half a second), only the one of
their directory; after a crash such a file may be empty, and the next apply or `records` writes it again.

Writes into mox's config dir go through a `SharedDir`: that directory is shared with mox's user
(and with root, when the reconciler runs as root), and whoever can write in it can plant a
symbolic link where we are about to create or replace something. So below the directory every
path is opened relative to a directory descriptor without following links (a link where we
create or replace a file or directory is refused, naming it), and what we create gets the owner
and group of domains.conf and a narrow mode, set through the descriptor of the file we just
created (we never chown a path, so never a file we did not create). The directory itself (the
path the operator named) is trusted.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from reconciler.errors import LockTimeout, PermissionProblem, UnsafePath

# Modes of what the reconciler creates in mox's config dir: mox's own (umask 027, setgid dirs);
# the lock is shared by every writer that may hold it (mox's user, root), so group-writable.
FILE_MODE = 0o640
DIR_MODE = 0o2750
LOCK_MODE = 0o660

_NOFOLLOW_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class Owner:
    """The uid and gid files are created for (domains.conf's)."""

    uid: int
    gid: int

    @classmethod
    def of(cls, st: os.stat_result) -> Owner:
        return cls(st.st_uid, st.st_gid)

    def __str__(self) -> str:
        return f"{self.uid}:{self.gid}"


def write_fully(fd: int, data: bytes, *, sync: bool = True) -> None:
    """Write all of `data` to `fd` (os.write may write less) and fsync it (unless not `sync`)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
    if sync:
        os.fsync(fd)


def fsync_dir(path: Path) -> None:
    """Make the renames and new names in directory `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(name: str) -> str:
    """`.<name>.<pid>.<thread>.tmp`: unique per writer, and recognisable as a leftover of `name`
    after a crash (`.<name>.*.tmp`)."""
    return f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"


def temp_path(path: Path) -> Path:
    return path.with_name(temp_name(path.name))


def temp_owner(name: str) -> int | None:
    """The pid in a temp file name of `temp_name`'s form, or None for any other name."""
    if not (name.startswith(".") and name.endswith(".tmp")):
        return None
    parts = name[:-len(".tmp")].rsplit(".", 2)
    if len(parts) != 3 or parts[0] in ("", ".") or not (parts[1].isdigit() and parts[2].isdigit()):
        return None
    return int(parts[1])


def pid_alive(pid: int) -> bool:
    """A process with this pid exists (here: in this PID namespace)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's
        return True
    return True


# ---------------------------------------------------------------------------------------------
# Messages


def _describe(path: Path) -> str:
    """`uid U gid G, mode 0750` of `path` (not following a link), or why it cannot be said."""
    try:
        st = os.lstat(path)
    except OSError as e:
        return f"cannot stat it: {e.strerror}"
    return f"owner uid {st.st_uid} gid {st.st_gid}, mode {stat.S_IMODE(st.st_mode):04o}"


def permission_problem(path: Path, owner: Owner | None, *, creating: bool = False) -> PermissionProblem:
    """One message for a refused write: the path, who owns it, who we are, and what to do."""
    me = os.geteuid()
    where = path.parent if creating else path
    head = f"{path}: permission denied: cannot {'create it in' if creating else 'write'} {where} " \
           f"({_describe(where)}; this process runs as uid {me})"
    if owner is None:
        return PermissionProblem(f"{head}; run as a user that may write there")
    fix = f"run mox-reconciler as uid {owner.uid} (the owner of domains.conf) or as root"
    if not creating and me not in (0, owner.uid):
        return PermissionProblem(f"{head}; {fix}")
    return PermissionProblem(f"{head}; {fix}, or give it to that owner: chown {owner} {where}")


def _refuse_link(path: Path, what: str) -> UnsafePath:
    return UnsafePath(f"{path}: is a symbolic link; refusing to {what} through it (the reconciler never "
                      "follows links where it writes: replace it with a real directory or remove it)")


# ---------------------------------------------------------------------------------------------
# Descriptors


def _own(fd: int, owner: Owner | None, mode: int | None, *, strict: bool = False) -> None:
    """Give the file or directory we just created (`fd`) to `owner`, then set `mode` (after the
    chown, which clears set-id bits). Not root, we can only pick one of our groups: the group is
    set if we may; `strict` raises PermissionError when the owner cannot be had."""
    if owner is not None:
        st = os.fstat(fd)
        if (st.st_uid, st.st_gid) != (owner.uid, owner.gid):
            if os.geteuid() == 0 or strict:
                os.fchown(fd, owner.uid, owner.gid)
            elif st.st_gid != owner.gid:
                with contextlib.suppress(PermissionError):  # not a member of that group
                    os.fchown(fd, -1, owner.gid)
    if mode is not None:
        os.fchmod(fd, mode)


def _open_root(root: Path) -> int:
    try:
        return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except PermissionError:
        raise permission_problem(root, None) from None


def _open_subdir(parent_fd: int, name: str, path: Path, *, create: bool, owner: Owner | None,
                 mode: int) -> int:
    """Directory `name` in `parent_fd`, never through a link; created (owned, `mode`) if missing."""
    for _ in range(3):
        try:
            return os.open(name, _NOFOLLOW_DIR, dir_fd=parent_fd)
        except FileNotFoundError:
            if not create:
                raise
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                if stat.S_ISLNK(os.lstat(name, dir_fd=parent_fd).st_mode):
                    raise _refuse_link(path, "write") from None
                raise UnsafePath(f"{path}: is not a directory") from None
            if e.errno == errno.EACCES:
                raise permission_problem(path, owner) from None
            raise
        try:
            os.mkdir(name, 0o700, dir_fd=parent_fd)  # narrow until it is owned and moded
        except FileExistsError:
            continue
        except PermissionError:
            raise permission_problem(path, owner, creating=True) from None
        fd = os.open(name, _NOFOLLOW_DIR, dir_fd=parent_fd)
        _own(fd, owner, mode)
        os.fsync(parent_fd)
        return fd
    raise UnsafePath(f"{path}: keeps changing while being created")


@contextlib.contextmanager
def _dir_fd(root: Path, rel: PurePosixPath, *, create: bool, owner: Owner | None,
            mode: int = DIR_MODE) -> Iterator[int]:
    """A descriptor of directory `root/rel`: `root` as named, each part of `rel` without links."""
    fd = _open_root(root)
    try:
        path = root
        for part in rel.parts:
            path = path / part
            sub = _open_subdir(fd, part, path, create=create, owner=owner, mode=mode)
            os.close(fd)
            fd = sub
        yield fd
    finally:
        os.close(fd)


def _write_at(dir_fd: int, name: str, path: Path, data: bytes, mode: int, *, exact_mode: bool,
              owner: Owner | None, exclusive: bool, before_rename: Callable[[], None] | None,
              strict_owner: bool = False, sync_data: bool = True) -> None:
    """The temp-file-and-rename write of `name` in `dir_fd` (see the module doc)."""
    tmp = temp_name(name)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        try:
            fd = os.open(tmp, flags, 0o600 if exact_mode else mode, dir_fd=dir_fd)
        except FileExistsError:  # ours, left by a killed write (same pid and thread), or planted
            os.unlink(tmp, dir_fd=dir_fd)
            fd = os.open(tmp, flags, 0o600 if exact_mode else mode, dir_fd=dir_fd)
    except PermissionError:
        raise permission_problem(path, owner, creating=True) from None
    try:
        try:
            try:
                _own(fd, owner, mode if exact_mode else None, strict=strict_owner)
            except PermissionError:
                raise PermissionProblem(
                    f"{path}: cannot give the new file the owner {owner} (this process runs as uid "
                    f"{os.geteuid()}); run mox-reconciler as that owner or as root") from None
            write_fully(fd, data, sync=sync_data)
        finally:
            os.close(fd)
        if before_rename is not None:
            before_rename()
        if exclusive:
            # link(2) fails if `name` exists: a rename that never replaces; it does not follow.
            os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
            os.unlink(tmp, dir_fd=dir_fd)
        else:
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


# ---------------------------------------------------------------------------------------------
# The shared directory


@dataclass(frozen=True)
class SharedDir:
    """A directory shared with another user: mox's config dir. See the module doc.

    `owner`: who what we create belongs to (None: whoever we are). Paths given to the methods
    are inside `root`; a path outside it is written as a plain `atomic_write` (the operator chose
    it: `--reports-dir`, `--status-file` elsewhere).
    """

    root: Path
    owner: Owner | None = None

    @classmethod
    def of(cls, path: Path) -> SharedDir:
        """The directory of `path` (domains.conf), what is created in it owned like `path`."""
        try:
            st = os.stat(path)
        except OSError:
            return cls(path.parent)
        return cls(path.parent, Owner.of(st))

    def relative(self, path: Path) -> PurePosixPath | None:
        """`path` relative to the root, or None when it is outside."""
        root = Path(os.path.abspath(self.root))
        full = Path(os.path.abspath(path))
        if full == root or not full.is_relative_to(root):
            return None
        return PurePosixPath(full.relative_to(root).as_posix())

    def _split(self, path: Path) -> tuple[PurePosixPath, str]:
        rel = self.relative(path)
        if rel is None:
            raise ValueError(f"{path} is not inside {self.root}")
        return rel.parent, rel.name

    def write(self, path: Path, data: bytes, mode: int = FILE_MODE, *, exclusive: bool = False,
              owner: Owner | None = None, before_rename: Callable[[], None] | None = None,
              sync_dir: bool = True, sync_data: bool = True) -> None:
        """Replace (or, `exclusive`, create) `path` with `data`: exact `mode`, owned by `owner`
        (which must be had: domains.conf keeps its owner) or else as far as we may by the
        directory's owner; missing directories are created (DIR_MODE)."""
        if self.relative(path) is None:
            atomic_write(path, data, mode, exact_mode=True, exclusive=exclusive, before_rename=before_rename,
                         sync_dir=sync_dir, sync_data=sync_data)
            return
        parent, name = self._split(path)
        who = owner or self.owner
        with _dir_fd(self.root, parent, create=True, owner=self.owner) as dfd:
            _write_at(dfd, name, path, data, mode, exact_mode=True, owner=who, exclusive=exclusive,
                      before_rename=before_rename, strict_owner=owner is not None, sync_data=sync_data)
            if sync_dir:
                os.fsync(dfd)

    def write_json(self, path: Path, data: Any, mode: int = FILE_MODE, *, sync_dir: bool = True,
                   sync_data: bool = True) -> None:
        self.write(path, json_bytes(data), mode, sync_dir=sync_dir, sync_data=sync_data)

    def read(self, path: Path) -> bytes:
        """The bytes of `path`, never through a link (FileNotFoundError when it is missing)."""
        if self.relative(path) is None:
            return path.read_bytes()
        parent, name = self._split(path)
        try:
            with _dir_fd(self.root, parent, create=False, owner=self.owner) as dfd:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise _refuse_link(path, "read") from None
            raise
        with os.fdopen(fd, "rb") as f:
            return f.read()

    def names(self, directory: Path) -> list[str]:
        """The entries of `directory` (empty when it does not exist), never through a link."""
        rel = self.relative(directory)
        if rel is None:
            try:
                return sorted(os.listdir(directory))
            except FileNotFoundError:
                return []
        try:
            with _dir_fd(self.root, rel, create=False, owner=self.owner) as dfd:
                return sorted(os.listdir(dfd))
        except FileNotFoundError:
            return []

    def remove(self, path: Path) -> bool:
        """Unlink `path` (a link is removed, not followed); False when it was not there."""
        if self.relative(path) is None:
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            return True
        parent, name = self._split(path)
        try:
            with _dir_fd(self.root, parent, create=False, owner=self.owner) as dfd:
                os.unlink(name, dir_fd=dfd)
        except FileNotFoundError:
            return False
        except PermissionError:
            raise permission_problem(path, self.owner) from None
        return True

    def move(self, src: Path, dst: Path) -> None:
        """Move `src` to `dst` (its directory created as needed), never replacing anything:
        FileExistsError if `dst` exists. A link at `src` is moved as a link."""
        sparent, sname = self._split(src)
        dparent, dname = self._split(dst)
        with _dir_fd(self.root, sparent, create=False, owner=self.owner) as sfd, \
                _dir_fd(self.root, dparent, create=True, owner=self.owner) as dfd:
            try:
                os.link(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd, follow_symlinks=False)
            except PermissionError:
                raise permission_problem(dst, self.owner, creating=True) from None
            os.unlink(sname, dir_fd=sfd)
            os.fsync(dfd)
            os.fsync(sfd)

    def remove_temps(self, path: Path) -> list[str]:
        """Remove the temp files a killed write of `path` left (`.<name>.*.tmp`); their names."""
        parent, name = self._split(path)
        try:
            with _dir_fd(self.root, parent, create=False, owner=self.owner) as dfd:
                stale = [n for n in os.listdir(dfd) if n.startswith(f".{name}.") and n.endswith(".tmp")]
                for n in stale:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(n, dir_fd=dfd)
        except FileNotFoundError:
            return []
        return stale

    def remove_stale_temps(self, directory: Path) -> list[str]:
        """Remove the temp files (`temp_name`'s form) in `directory` whose writer no longer
        runs: what a killed write left; their names. Never through a link."""
        rel = self.relative(directory)
        try:
            with contextlib.ExitStack() as stack:
                if rel is None:
                    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                    stack.callback(os.close, dfd)
                else:
                    dfd = stack.enter_context(_dir_fd(self.root, rel, create=False, owner=self.owner))
                stale = [n for n in os.listdir(dfd) if (pid := temp_owner(n)) is not None and not pid_alive(pid)]
                for n in stale:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(n, dir_fd=dfd)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return stale

    def fsync(self, directory: Path) -> None:
        rel = self.relative(directory)
        if rel is None:
            fsync_dir(directory)
            return
        with _dir_fd(self.root, rel, create=False, owner=self.owner) as dfd:
            os.fsync(dfd)

    @contextlib.contextmanager
    def lock(self, path: Path, timeout: float, holder: str = "another process") -> Iterator[None]:
        """An exclusive flock(2) on `path`, created (LOCK_MODE, owned) if missing, never through a
        link and never truncated. LockTimeout after `timeout` seconds."""
        parent, name = self._split(path)
        with _dir_fd(self.root, parent, create=False, owner=self.owner) as dfd:
            fd = _open_lock(dfd, name, path, self.owner)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockTimeout(f"{path}: {holder} holds the config lock for > {timeout:g}s") from None
                    time.sleep(0.02)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _open_lock(dir_fd: int, name: str, path: Path, owner: Owner | None) -> int:
    """The lock file's descriptor: the existing file (read-write if we may, else read-only: flock
    needs neither), or a new one given to `owner`."""
    for _ in range(3):
        for flags in (os.O_RDWR, os.O_RDONLY):
            try:
                return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            except FileNotFoundError:
                break
            except PermissionError:
                continue
            except OSError as e:
                if e.errno == errno.ELOOP:
                    raise _refuse_link(path, "open the lock") from None
                raise
        else:
            raise permission_problem(path, owner)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=dir_fd)
        except FileExistsError:
            continue
        except PermissionError:
            raise permission_problem(path, owner, creating=True) from None
        _own(fd, owner, LOCK_MODE)
        return fd
    raise UnsafePath(f"{path}: keeps changing while being created")


# ---------------------------------------------------------------------------------------------
# Plain writes (a destination the operator chose)


def atomic_write(path: Path, data: bytes, mode: int = 0o644, *, exact_mode: bool = False,
                 owner: tuple[int, int] | None = None, exclusive: bool = False,
                 before_rename: Callable[[], None] | None = None, sync_dir: bool = True,
                 sync_data: bool = True) -> None:
    """Replace `path` with `data` durably and atomically (see the module doc).

    `mode` is filtered by the umask as `open` does, unless `exact_mode`; `owner` (uid, gid) is
    set when it differs from ours. `exclusive`: never replace; FileExistsError if `path` exists.
    `before_rename` runs once the data is on disk and may raise to abort (nothing changes then).
    The directory is taken as named; the temp file is never followed through a link.
    """
    who = Owner(*owner) if owner is not None else None
    dfd = _open_root(path.parent)
    try:
        _write_at(dfd, path.name, path, data, mode, exact_mode=exact_mode, owner=who, exclusive=exclusive,
                  before_rename=before_rename, strict_owner=who is not None, sync_data=sync_data)
        if sync_dir:
            os.fsync(dfd)
    finally:
        os.close(dfd)


def json_bytes(data: Any) -> bytes:
    """`data` as indented JSON with sorted keys and a final newline."""
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def atomic_write_json(path: Path, data: Any, *, sync_dir: bool = True) -> None:
    """`data` as indented JSON with sorted keys, written with `atomic_write`."""
    atomic_write(path, json_bytes(data), sync_dir=sync_dir)
