"""The intent journal of new DKIM key files: a crash between writing a private key and committing
the domains.conf that names it must not leave the key behind for good.

Under the config lock, before the first new key file of a write, the apply records the files it
is about to create in `mox-reconciler.keys.<pid>.json` beside domains.conf, with the identity
(device, inode) of the domains.conf it is about to replace; once a domains.conf naming them has
been renamed into place they are marked published. When the apply ends it settles its journal;
the next apply (under the lock) settles the journals of processes that no longer run. Settling a
key file:

* named by the current domains.conf: it stays (it is in use);
* never published (its domains.conf was never renamed into place: the file there is still the
  one the journal recorded): it is removed; no mox ever read it, no DNS record ever showed it;
* published, or possibly published (the domains.conf there is another file since), but named no
  more (mox wrote over it, or someone removed the selector): it moves to `dkim/old/`, as mox moves
  the keys of removed selectors; keys that were ever in use are never deleted.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.fsutil import SharedDir, pid_alive

log = logging.getLogger(__name__)

PREFIX = "mox-reconciler.keys."
SUFFIX = ".json"
VERSION = 1


def _read_text(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def process_identity(pid: int) -> dict[str, Any]:
    """What tells this process from a later one with the same pid: the boot and its start time
    (/proc/PID/stat field 22, clock ticks since boot). Empty strings where /proc does not say."""
    stat = _read_text(f"/proc/{pid}/stat")
    start = stat.rpartition(")")[2].split()[19] if ")" in stat else ""
    return {"pid": pid, "boot": _read_text("/proc/sys/kernel/random/boot_id"), "start": start}


def process_gone(identity: dict[str, Any]) -> bool:
    """The process that wrote a journal no longer runs."""
    pid = identity.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        return True
    now = process_identity(pid)
    return any(identity.get(k) and now[k] and identity[k] != now[k] for k in ("boot", "start"))


@dataclass
class Entry:
    path: str  # config-dir relative, as PrivateKeyFile names it
    base: tuple[int, int]  # (st_dev, st_ino) of the domains.conf the write was to replace
    published: bool = False


@dataclass
class KeyJournal:
    """This process's journal in `config_dir` (one per apply; the file exists while it has entries)."""

    config_dir: Path
    shared: SharedDir
    entries: list[Entry] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.config_dir / f"{PREFIX}{os.getpid()}{SUFFIX}"

    def _write(self) -> None:
        data = {"version": VERSION, "process": process_identity(os.getpid()),
                "keys": [{"path": e.path, "base": list(e.base), "published": e.published} for e in self.entries]}
        self.shared.write_json(self.path, data)

    def intend(self, paths: Iterable[str], base: os.stat_result) -> None:
        """Record key files about to be created (durably, before the first is written)."""
        new = [Entry(p, (base.st_dev, base.st_ino)) for p in paths]
        if new:
            self.entries += new
            self._write()

    def published(self) -> None:
        """A domains.conf naming every recorded key file was renamed into place."""
        if any(not e.published for e in self.entries):
            for e in self.entries:
                e.published = True
            self._write()

    def forget(self, paths: Iterable[str]) -> None:
        """Key files removed again before anything named them (a failed write)."""
        gone = set(paths)
        if gone and any(e.path in gone for e in self.entries):
            self.entries = [e for e in self.entries if e.path not in gone]
            self._write() if self.entries else self.shared.remove(self.path)

    def settle(self, referenced: set[str], current: os.stat_result, move_to_old: Callable[[str], bool]) -> None:
        """End of the apply (under the lock): settle every entry, then drop the journal."""
        if not self.entries:
            return
        _settle(self.config_dir, self.shared, self.entries, referenced, current, move_to_old)
        self.entries = []
        self.shared.remove(self.path)


def settle_dead(config_dir: Path, shared: SharedDir, referenced: set[str], current: os.stat_result,
                move_to_old: Callable[[str], bool]) -> None:
    """Settle the journals of processes that no longer run (under the lock, before a write)."""
    for name in shared.names(config_dir):
        if not (name.startswith(PREFIX) and name.endswith(SUFFIX)) or name == f"{PREFIX}{os.getpid()}{SUFFIX}":
            continue
        path = config_dir / name
        try:
            data = json.loads(shared.read(path))
            identity = data["process"]
            entries = [Entry(str(k["path"]), (int(k["base"][0]), int(k["base"][1])), bool(k["published"]))
                       for k in data["keys"]]
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
            log.error("apply: %s: unreadable key journal, left alone: %s", path, e)
            continue
        if not isinstance(identity, dict) or not process_gone(identity):
            continue
        log.warning("apply: settling %s, left by an apply that was interrupted", path)
        _settle(config_dir, shared, entries, referenced, current, move_to_old)
        shared.remove(path)


def _settle(config_dir: Path, shared: SharedDir, entries: list[Entry], referenced: set[str],
            current: os.stat_result, move_to_old: Callable[[str], bool]) -> None:
    for e in entries:
        key = config_dir / e.path
        if e.path in referenced or not os.path.lexists(key):
            continue
        never_named = not e.published and (current.st_dev, current.st_ino) == e.base
        if never_named:
            shared.remove(key)
            log.info("apply: removed new key file %s: no domains.conf ever named it", e.path)
        elif move_to_old(e.path):
            log.warning("apply: moved key file %s to old/: it was written for a domains.conf that is no longer "
                        "there", e.path)
