"""Parsed desired-state files, cached by content: a plan after a one-file change parses one file.

Composing YAML is most of the cost of reading a large desired state (10,000 domain files). The
parse of each file (its data and the line:column of every key and value) is kept in one bundle
per source, under the file's name and the SHA-256 of its bytes, in the cache dir
(`$XDG_CACHE_HOME/mox-reconciler/parsed/<version>/`, or `<--cache-dir>/parsed/<version>/`): a
new version of the reconciler starts a new cache. A file whose bytes changed is parsed again;
only files that parsed without a problem are kept, so every problem is found by the parser
itself, with its own words.

A bundle holds what the files hold, no more (secret references stay references: their text is
read after loading), owner-only (0600 in a 0700 directory). The cache is an optimisation and
never a reason to fail: a cache dir that cannot be created or
written, or that another user owns or can write (its bundles are read with `marshal`, which
must only read our own data), means no cache; a damaged bundle is ignored and replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import marshal
import os
import stat
import sys
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.desired.yamlload import Document, Locations, line_breaks, parse_source
from reconciler.fsutil import atomic_write

log = logging.getLogger(__name__)

BUNDLE_FORMAT = 5  # 4: strings interned (`_interned`); 5: whether a file has a line break
KEEP_BUNDLES = 32  # sources remembered per cache dir; the least recently written go first

# One entry: (sha256 of the file's bytes, marshal of its data, its packed `Locations`, whether a
# text in it holds a line break). Kept serialized: every use gets its own copy of the data
# (readers may change it: an `Include` is taken out of it), only the files read are decoded, and
# their locations stay packed (the loaded state keeps them, to say where a problem is). The line
# breaks are looked for once per parse, not in every file at every load (`load_desired`).
_Entry = tuple[bytes, bytes, bytes, bool]


def _interned(value: Any) -> Any:
    """`value` with its strings interned. marshal keeps the mark, so decoding the bundle makes
    one string of each text for all files (the keys every domain and account repeats, a name
    written in several places), shared with the models' field names."""
    if type(value) is str:
        return sys.intern(value)
    if type(value) is dict:
        return {_interned(k): _interned(v) for k, v in value.items()}
    if type(value) is list:
        return [_interned(v) for v in value]
    return value


def default_root(cache_dir: Path | None = None) -> Path:
    """Where parsed files are cached: `--cache-dir` (the source cache) or the user's cache."""
    base = cache_dir or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mox-reconciler"
    return base / "parsed" / __version__


def private_dir(path: Path) -> bool:
    """`path` is a directory (created 0700 if missing) that we own and no one else can write."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def read_private(path: Path) -> bytes | None:
    """The bytes of a cache file only we can have written (ours, not writable by others, not a
    link); None for any other file or none at all."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.geteuid() or st.st_mode & 0o022:
                return None
            return f.read()
    except OSError:
        return None


class ParseCache:
    """The bundle of one source (`key`: its location), read once, written back when it changed.

    Use `document(name, display, raw)` for each file, then `save()` (once).
    """

    def __init__(self, root: Path | None, key: str) -> None:
        self.path = root / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".bundle") \
            if root is not None and private_dir(root) else None
        self._old: dict[str, _Entry] = self._read() if self.path is not None else {}
        self._new: dict[str, _Entry] = {}
        self.hits = 0
        self.misses = 0

    def _read(self) -> dict[str, _Entry]:
        assert self.path is not None
        raw = read_private(self.path)
        if raw is None:
            return {}
        try:
            bundle = marshal.loads(raw)
            if isinstance(bundle, dict) and bundle.get("format") == BUNDLE_FORMAT:
                entries = bundle.get("entries")
                if isinstance(entries, dict):
                    return entries
        except (OSError, EOFError, ValueError, TypeError):
            log.debug("parse cache: ignoring unreadable %s", self.path)
        return {}

    def document(self, name: str, display: str, raw: bytes) -> Document:
        """The Document of file `name` (shown as `display`) with contents `raw`: from the cache
        when these bytes were parsed before, else parsed (YAMLProblem as the parser raises it)."""
        digest = hashlib.sha256(raw).digest()
        entry = self._old.get(name)
        if isinstance(entry, tuple) and len(entry) == 4 and entry[0] == digest and isinstance(entry[2], bytes) \
                and isinstance(entry[3], bool):
            try:
                data = marshal.loads(entry[1])
            except (EOFError, ValueError, TypeError):
                pass  # damaged: parsed again below
            else:
                if isinstance(data, dict):
                    self.hits += 1
                    self._new[name] = entry
                    return Document(display, data, Locations(display, entry[2]), entry[3])
        self.misses += 1
        doc = parse_source(display, raw)
        doc.data = _interned(doc.data)
        doc.line_breaks = next(line_breaks(doc.data, ()), None) is not None
        try:
            blob = marshal.dumps(doc.data)
        except ValueError:  # a YAML date or another value marshal cannot keep: not cached
            return doc
        self._new[name] = (digest, blob, doc.locations.packed, doc.line_breaks)
        return doc

    def save(self) -> None:
        """Write the bundle back if a file was parsed or dropped (entries of the files read now),
        then forget the entries (read the bundle again with a new ParseCache)."""
        if self.path is None or (self.misses == 0 and self._new.keys() == self._old.keys()):
            self._old = self._new = {}
            return
        self._old = {}
        data = marshal.dumps({"format": BUNDLE_FORMAT, "entries": self._new})
        self._new = {}  # the entries are not needed after loading: let them go before the models are built
        with contextlib.suppress(OSError):
            atomic_write(self.path, data, 0o600, exact_mode=True, sync_dir=False, sync_data=False)
            self._prune()

    def _prune(self) -> None:
        assert self.path is not None
        bundles = sorted(self.path.parent.glob("*.bundle"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in bundles[KEEP_BUNDLES:]:
            old.unlink(missing_ok=True)
