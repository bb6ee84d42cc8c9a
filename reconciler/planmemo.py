"""A plan that found nothing to do, remembered with everything it was computed from.

A CI job or a scheduled `plan` asks the same question again and again while nothing changed; at
10,000 domains answering it from scratch re-reads every desired-state file, parses an 8 MB
domains.conf and compares every object (seconds each time). When a plan has no operations (and
no domain rotates its DKIM keys, whose plan depends on the clock and on DNS), this module keeps
its document with the identity of each input, in the cache dir
(`<cache>/plans/<version>/`, owner-only, like the parse cache). The next plan with the same
config dir, source and `--domain` scope is answered from it when every input is unchanged:

* mox.conf, domains.conf, the inventory, the password book and the rotation memory: the same
  bytes (SHA-256, read again every time);
* the desired-state files: the same names in each directory the state was read from, and each
  file the same inode, size, mtime and ctime (ctime cannot be set back; a file changed while the
  plan was made is never remembered: see `record`), else the same SHA-256;
* the secrets the state references: the same text (an HMAC with a key of the cache dir, never
  the secret), the account directories in mox's DataDir, the source's commit and whether it
  has uncommitted changes.

Anything else (a different version of the reconciler, a damaged or foreign-owned memo) means no
memo: the plan is made from scratch, the memo is an optimisation and never a reason to fail.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler import __version__
from reconciler.desired.cache import default_root, private_dir, read_private
from reconciler.fsutil import atomic_write
from reconciler.plan.inventory import INVENTORY_FILE
from reconciler.plan.passwords import PASSWORDS_FILE
from reconciler.plan.rotation_memory import MEMORY_FILE

if TYPE_CHECKING:
    from reconciler.desired.models import DesiredState
    from reconciler.desired.source import Source
    from reconciler.mox.live import ConfigPaths
    from reconciler.plan.document import PlanDocument

log = logging.getLogger(__name__)

MEMO_FORMAT = 1
SETTLED = 2.0  # seconds: a file whose ctime is younger may have changed while the plan read it
KEEP_MEMOS = 32
YAML_SUFFIXES = (".yaml", ".yml")

# The marker of a config dir made by `snapshot` (pipeline.SNAPSHOT_FILE, a layer above; a test
# checks they are the same name).
SNAPSHOT_MARKER = "mox-reconciler.snapshot.json"
# The config dir's own files a plan reads besides domains.conf.
_STATE_FILES = (INVENTORY_FILE, PASSWORDS_FILE, MEMORY_FILE, SNAPSHOT_MARKER)


def memo_root(cache_dir: Path | None) -> Path:
    """`<cache>/plans/<version>`: beside the parse cache, a new version starts afresh."""
    parsed = default_root(cache_dir)
    return parsed.parent.parent / "plans" / parsed.name


def _sha(path: Path) -> str | None:
    """SHA-256 of a file's bytes; None when it does not exist (or cannot be read)."""
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def _config_files(paths: ConfigPaths) -> dict[str, str | None]:
    """The bytes (SHA-256) of the config dir's files a plan reads, domains.conf aside."""
    out = {"mox.conf": _sha(paths.mox_conf)}
    for name in _STATE_FILES:
        out[name] = _sha(paths.config_dir / name)
    return out


def _yaml_names(directory: str) -> list[str] | None:
    """The `*.yaml`/`*.yml` entries of a directory that are files or links (what the desired
    state takes from a directory), sorted; None when it cannot be listed."""
    try:
        with os.scandir(directory) as it:
            return sorted(e.name for e in it if e.name.endswith(YAML_SUFFIXES)
                          and (e.is_symlink() or e.is_file(follow_symlinks=False)))
    except OSError:
        return None


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _file_sha(path: str) -> tuple[str, os.stat_result] | None:
    """SHA-256 of a regular file (never through a link) and its stat, unchanged while read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        h = hashlib.sha256()
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
        if _identity(os.fstat(fd)) != _identity(st):
            return None
        return h.hexdigest(), st
    except OSError:
        return None
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Before:
    """What the config dir's small files held before a plan read them (`record` keeps a memo
    only when they still hold it afterwards), and when the plan started."""

    files: dict[str, str | None]
    started: float


@dataclass(frozen=True)
class Recalled:
    doc: PlanDocument
    warnings: tuple[str, ...]
    recorded: str | None = None  # when the remembered plan was made


def say_recalled(recalled: Recalled) -> None:
    """Say that a plan is answered from the memo (`recall` does unless told not to)."""
    log.info("plan: nothing changed since the plan of %s (every input is the same); its answer is reused",
             recalled.recorded)


class PlanMemo:
    """The memos of one cache dir (`root` None: none kept)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    @classmethod
    def for_cli(cls, cache_dir: Path | None) -> PlanMemo:
        return cls(memo_root(cache_dir))

    # -- where ---------------------------------------------------------------------------

    def _path(self, paths: ConfigPaths, source: Source, scope: Iterable[str] | None) -> Path | None:
        if self.root is None:
            return None
        key = json.dumps([os.path.abspath(paths.config_dir), source.location, source.subdir, str(source.path),
                          sorted(scope) if scope is not None else None])
        return self.root / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")

    def _hmac_key(self, *, create: bool) -> bytes | None:
        """The key secrets are digested with (random, owner-only, in the memo dir)."""
        if self.root is None:
            return None
        path = self.root / "secret-digest.key"
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(f.fileno())
                key = f.read()
                if st.st_uid == os.geteuid() and not st.st_mode & 0o077 and len(key) == 32:
                    return key
            return None
        if not create:
            return None
        key = secrets.token_bytes(32)
        try:
            atomic_write(path, key, 0o600, exact_mode=True, exclusive=True, sync_dir=False)
        except OSError:
            return None
        return key

    def _secret_digests(self, texts: Sequence[tuple[str, str, str]], key: bytes) -> list[list[str]]:
        return [[kind, where, hmac.new(key, text.encode(), hashlib.sha256).hexdigest()]
                for kind, where, text in texts]

    # -- recall ----------------------------------------------------------------------------

    def recall(self, paths: ConfigPaths, source: Source, scope: Iterable[str] | None,
               now: datetime, *, announce: bool = True) -> Recalled | None:
        """The remembered plan (made `now`) when nothing it was computed from changed, else None.
        `announce`: log that it is reused (else the caller does: `say_recalled`)."""
        path = self._path(paths, source, scope)
        if path is None:
            return None
        entry = self._read(path)
        if entry is None:
            return None
        why = self._changed(entry, paths, source)
        if why:
            log.debug("plan memo: not used (%s)", why)
            return None
        from reconciler.plan.document import PlanDocument

        try:
            doc = PlanDocument.model_validate({**entry["doc"], "created": now.isoformat()})
        except ValueError:
            return None
        recalled = Recalled(doc, tuple(entry.get("warnings", ())), entry.get("recorded"))
        if announce:
            say_recalled(recalled)
        return recalled

    def _read(self, path: Path) -> dict[str, Any] | None:
        raw = read_private(path)
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(entry, dict) or entry.get("format") != MEMO_FORMAT or entry.get("version") != __version__:
            return None
        return entry

    def _changed(self, entry: dict[str, Any], paths: ConfigPaths, source: Source) -> str | None:
        """What differs from the memo's inputs (a short reason), or None."""
        try:
            if entry["source"] != source.to_json():
                return "the source moved"
            if entry["config"] != _config_files(paths):
                return "a file of the config dir changed"
            if entry["domains_conf"] != _sha(paths.domains_conf):
                return "domains.conf changed"
            for directory, names in entry["dirs"].items():
                if os.path.realpath(directory) != directory or _yaml_names(directory) != names:
                    return f"the files of {directory} changed"
            for name, ident, digest in entry["files"]:
                try:
                    st = os.lstat(name)
                except OSError:
                    return f"{name} is gone"
                if _identity(st) != ident:
                    read = _file_sha(name)
                    if read is None or read[0] != digest:
                        return f"{name} changed"
            if sorted(_account_dirs(Path(entry["data_dir"]))) != entry["account_dirs"]:
                return "the account directories changed"
            if entry["secrets"]:
                key = self._hmac_key(create=False)
                if key is None:
                    return "no secret-digest key"
                texts = _read_texts(entry["secrets"])
                if texts is None or self._secret_digests(texts, key) != entry["secrets"]:
                    return "a secret changed"
        except (KeyError, TypeError, ValueError):
            return "a damaged memo"
        return None

    # -- record ----------------------------------------------------------------------------

    def before(self, paths: ConfigPaths) -> Before | None:
        """Read before a plan reads its inputs (None: no memo is kept)."""
        if self.root is None:
            return None
        return Before(_config_files(paths), time.time())

    def record(self, before: Before | None, paths: ConfigPaths, source: Source, scope: Iterable[str] | None, *,
               desired: DesiredState, live_digest: str, data_dir: Path, account_dirs: Iterable[str],
               doc: PlanDocument) -> bool:
        """Keep `doc` (a plan with no operations, no DKIM rotation) for `recall`; whether it was
        kept. Not kept when an input may have changed while the plan read it: a config-dir file
        that differs from `before`, a desired-state file or directory changed within SETTLED
        seconds of the plan's start."""
        path = self._path(paths, source, scope)
        if before is None or path is None or doc.changes or doc.dkim_rotation or doc.base_ref:
            return False
        settled = before.started - SETTLED
        files: list[list[Any]] = []
        dirs: dict[str, list[str] | None] = {}
        for p in desired.paths:
            name = os.path.abspath(p)
            read = _file_sha(name)
            if read is None or read[1].st_ctime_ns / 1e9 >= settled:
                return False
            files.append([name, _identity(read[1]), read[0]])
            dirs.setdefault(os.path.dirname(name), None)
        taken = {f[0] for f in files}
        for directory in dirs:
            names = _yaml_names(directory)
            # Every YAML file of each directory was read (a directory of the state, or one
            # included whole), so a file added later shows in its listing. A directory from
            # which only single files were included is not remembered (nor is such a plan).
            if names is None or os.path.realpath(directory) != directory or _changed_since(directory, settled) \
                    or {os.path.join(directory, n) for n in names} != _under(directory, taken):
                return False
            dirs[directory] = names
        if _config_files(paths) != before.files:
            return False
        if self.root is None or not private_dir(self.root):
            return False
        refs = _secret_texts(desired)
        key = self._hmac_key(create=True) if refs else b""
        if key is None:
            return False
        entry = {
            "format": MEMO_FORMAT, "version": __version__, "recorded": doc.created,
            "source": source.to_json(), "config": before.files, "domains_conf": live_digest,
            "dirs": dirs, "files": files, "data_dir": str(data_dir), "account_dirs": sorted(account_dirs),
            "secrets": self._secret_digests(refs, key) if refs else [],
            "warnings": list(desired.warnings), "doc": {k: v for k, v in doc.to_json().items() if k != "created"},
        }
        with contextlib.suppress(OSError):
            atomic_write(path, json.dumps(entry).encode(), 0o600, exact_mode=True, sync_dir=False, sync_data=False)
            self._prune()
            return True
        return False

    def _prune(self) -> None:
        assert self.root is not None
        memos = sorted(self.root.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in memos[KEEP_MEMOS:]:
            old.unlink(missing_ok=True)


def _under(directory: str, files: set[str]) -> set[str]:
    return {f for f in files if os.path.dirname(f) == directory}


def _changed_since(directory: str, when: float) -> bool:
    """The directory's entries may have changed at or after `when` (or it cannot be read)."""
    try:
        st = os.stat(directory)
    except OSError:
        return True
    return max(st.st_mtime, st.st_ctime) >= when


def _account_dirs(data_dir: Path) -> list[str]:
    try:
        return os.listdir(data_dir / "accounts")
    except FileNotFoundError:
        return []


def _secret_texts(desired: DesiredState) -> list[tuple[str, str, str]]:
    """(kind, file or variable, the text the plan read) of every secret reference, in order."""
    from reconciler.desired.secrets import secret_references

    out = []
    for _, ref in secret_references(desired):
        if not ref.is_read:
            continue  # a snapshot's stand-in: nothing was read, nothing to compare
        out.append(("File", ref.File, ref.text()) if ref.File else ("Env", ref.Env, ref.text()))
    return out


def _read_texts(stored: Sequence[Sequence[str]]) -> list[tuple[str, str, str]] | None:
    """The texts the stored references point at now (None: one cannot be read)."""
    from reconciler.desired.secrets import SecretError, SecretRef, read_secret

    out = []
    for kind, where, _ in stored:
        ref = SecretRef(File=where) if kind == "File" else SecretRef(Env=where)
        try:
            out.append((kind, where, read_secret(ref)))
        except SecretError:
            return None
    return out
