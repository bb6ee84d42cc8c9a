"""Writing new DKIM key files beside domains.conf: never over an existing file, mox's modes, owned
like domains.conf, complete or absent after a crash, never through a link planted in the config
dir (fsutil.SharedDir, exclusive); and which selector names key files (current and retired) use."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from reconciler.fsutil import Owner, SharedDir
from reconciler.mox.keygen import KEY_FILE_MODE, parse_key_name
from reconciler.mox.names import ParseError, parse_domain


def key_dir(config_dir: Path, like: os.stat_result | None) -> SharedDir:
    """The config dir, what is created in it owned like `like` (domains.conf)."""
    return SharedDir(config_dir, Owner.of(like) if like is not None else None)


def write_key_file(config_dir: Path, relpath: str, pem: bytes, like: os.stat_result | None,
                   before_link: Callable[[], None] | None = None) -> Path:
    """Create a new key file (never over an existing one: FileExistsError), 0640, owned like
    domains.conf; missing directories 02750. Its directory is not fsynced: the caller does that
    once for all new keys, before domains.conf names them."""
    path = config_dir / relpath
    shared = key_dir(config_dir, like)
    shared.remove_temps(path)  # of a write killed mid-way (we hold the lock)
    shared.write(path, pem, KEY_FILE_MODE, exclusive=True, before_rename=before_link, sync_dir=False)
    return path


def used_selector_names(config_dir: Path) -> dict[str, frozenset[str]]:
    """Selector names of the key files in dkim/ and dkim/old/, per domain (names never to reuse)."""
    out: dict[str, set[str]] = {}
    shared = SharedDir(config_dir)
    for folder in (config_dir / "dkim", config_dir / "dkim" / "old"):
        try:
            names = shared.names(folder)
        except OSError:
            continue
        for n in names:
            key = parse_key_name(n)
            if key is None:
                continue
            try:
                domain = parse_domain(key.domain).name()
                selector = parse_domain(key.selector).name()
            except ParseError:
                continue
            out.setdefault(domain, set()).add(selector)
    return {d: frozenset(s) for d, s in out.items()}
