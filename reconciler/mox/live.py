"""The live side: find mox.conf and domains.conf as mox does, and read them.

mox names its static config with `-config` (default `config/mox.conf`, or `$MOXCONF`) and always
reads the dynamic config from `domains.conf` in the same directory. Files named in either are
relative to that directory; DataDir is relative to it too.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reconciler.mox import sconf
from reconciler.mox.config import Dynamic, Static
from reconciler.mox.errors import LiveConfigError

DEFAULT_CONFIG = "config/mox.conf"


@functools.lru_cache(maxsize=1 << 16)  # validation resolves every key file of every selector, each time
def config_dir_path(config_dir: Path, name: str) -> Path:
    """mox's configDirPath (mox-/dir.go): `name` itself when absolute, else joined to the
    config dir and cleaned like Go's filepath.Join. Every file named in the config is found so."""
    if os.path.isabs(name):
        return Path(name)
    return Path(os.path.normpath(config_dir / name))


@dataclass(frozen=True, slots=True)
class ConfigPaths:
    """Where a mox installation keeps its configuration."""

    mox_conf: Path

    @property
    def config_dir(self) -> Path:
        return self.mox_conf.parent

    @property
    def domains_conf(self) -> Path:
        return self.config_dir / "domains.conf"

    def resolve(self, name: str) -> Path:
        """A file name from mox.conf or domains.conf, as mox finds it (see `config_dir_path`)."""
        return config_dir_path(self.config_dir, name)

    def data_dir(self, static: Static) -> Path:
        """mox.conf's DataDir, resolved like every config file name (mox-/dir.go dataDirPath)."""
        return self.resolve(static.DataDir)


def account_dirs(data_dir: Path) -> frozenset[str]:
    """Names under DataDir/accounts: mox's AccountAdd refuses an account whose directory exists."""
    try:
        return frozenset(p.name for p in (data_dir / "accounts").iterdir())
    except FileNotFoundError:
        return frozenset()


def locate(config: str | None = None) -> ConfigPaths:
    """`--config`, else $MOXCONF, else `config/mox.conf` (mox's own rule)."""
    path = config or os.environ.get("MOXCONF") or DEFAULT_CONFIG
    return ConfigPaths(Path(path))


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """mox's config as read from disk, with what a writer needs to detect concurrent changes."""

    paths: ConfigPaths
    static: Static
    dynamic: Dynamic
    dynamic_bytes: bytes
    mtime_ns: int

    @property
    def digest(self) -> str:
        """SHA-256 of domains.conf as read: plans are bound to it."""
        return hashlib.sha256(self.dynamic_bytes).hexdigest()


def _read(path: Path, missing: str = "file not found") -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise LiveConfigError(f"{path}: {missing}") from None
    except OSError as e:
        raise LiveConfigError(f"{path}: {e.strerror or e}") from None


def read_static(paths: ConfigPaths) -> Static:
    data = _read(paths.mox_conf)
    try:
        return sconf.parse_bytes(data, Static, str(paths.mox_conf))
    except sconf.SconfError as e:
        raise LiveConfigError(str(e)) from None


def parse_dynamic(data: bytes, path: Path) -> Dynamic:
    try:
        return sconf.parse_bytes(data, Dynamic, str(path))
    except sconf.SconfError as e:
        raise LiveConfigError(str(e)) from None


def dynamic_digest(paths: ConfigPaths) -> str:
    """SHA-256 of domains.conf's bytes (`LiveConfig.digest`) without parsing them: enough to tell
    whether the file is the one a plan was made against."""
    data = _read(paths.domains_conf, "file not found (domains.conf must be beside mox.conf)")
    return hashlib.sha256(data).hexdigest()


def read_live(paths: ConfigPaths, on_read: Callable[[bytes], None] | None = None) -> LiveConfig:
    """Read mox.conf and domains.conf (parse only; validation is `validate`'s job).
    `on_read`: given domains.conf's bytes before they are parsed (a parse of 10,000 domains
    takes a second that work started from the bytes can use)."""
    static = read_static(paths)
    path = paths.domains_conf
    try:
        before = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise LiveConfigError(f"{path}: file not found (domains.conf must be beside mox.conf)") from None
    data = _read(path)
    if on_read is not None:
        on_read(data)
    return LiveConfig(paths, static, parse_dynamic(data, path), data, before)
