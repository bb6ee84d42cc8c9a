"""DKIM key files' verdicts kept in the cache dir from one run to the next.

A plan validates its result as mox would, and mox reads every DKIM key file the config names.
`KeyCache` keeps each file's verdict (its kind, or mox's error) by file identity (path, device,
inode, mtime, size, ctime) for the life of a process; `StoredKeyCache` also keeps them on disk,
so a new process (every `plan` and `apply`) parses only key files that changed, and a plan whose
key files are all known does not even import cryptography. A file written, replaced or touched
has a new identity and is parsed again.

Like the parse cache (`reconciler.desired.cache`): versioned by the reconciler's version (a verdict
holds mox's error text), owner-only, never a reason to fail: a file that cannot be read, is not
ours or is damaged counts as empty; one that cannot be written is left alone.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

from reconciler.desired.cache import private_dir, read_private
from reconciler.fsutil import atomic_write
from reconciler.mox.keyfiles import FileIdentity, KeyCache, file_identity

log = logging.getLogger(__name__)

FILE_NAME = "dkim-keys.json"
FORMAT = 1


def _read(path: Path) -> dict[FileIdentity, str]:
    raw = read_private(path)
    if raw is None:
        return {}
    try:
        stored = json.loads(raw)
        if stored.get("format") != FORMAT:
            return {}
        return {(str(p), int(dev), int(ino), int(mtime), int(size), int(ctime)): str(verdict)
                for p, dev, ino, mtime, size, ctime, verdict in stored["verdicts"]}
    except (ValueError, TypeError, KeyError, AttributeError):
        log.debug("key verdicts: ignoring unreadable %s", path)
        return {}


class StoredKeyCache(KeyCache):
    """A KeyCache read from `root/dkim-keys.json` (when `root` is a private directory of ours)
    and written back by `save` when it learnt a verdict."""

    def __init__(self, root: Path | None) -> None:
        self.path = root / FILE_NAME if root is not None and private_dir(root) else None
        super().__init__(_read(self.path) if self.path is not None else None)
        self._stored = dict(self.verdicts)

    def save(self) -> None:
        """Write the verdicts back if one was learnt (by this cache or one sharing its verdicts);
        those of files that are gone or changed are dropped."""
        if self.path is None or self.verdicts == self._stored:
            return
        current = {}
        for ident, verdict in list(self.verdicts.items()):
            with contextlib.suppress(OSError, ValueError):
                if file_identity(Path(ident[0])) == ident:
                    current[ident] = verdict
        data = json.dumps({"format": FORMAT, "verdicts": [[*ident, v] for ident, v in sorted(current.items())]})
        with contextlib.suppress(OSError):
            atomic_write(self.path, data.encode(), 0o600, exact_mode=True, sync_dir=False, sync_data=False)
            self._stored = dict(self.verdicts)
