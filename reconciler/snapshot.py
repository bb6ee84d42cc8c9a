"""A secret-free copy of the live config, for planning where the server is not (a CI job).

`mox-reconciler snapshot OUT_DIR` writes what `plan --config OUT_DIR/mox.conf` needs and nothing
secret: mox.conf and domains.conf as read (written in sconf form, secrets such as webhook
`Authorization` and transport `Password` replaced by `<redacted>`, comments dropped), the
inventory, and the DNS-record reports of every domain (their DKIM public keys stand in for the
private keys, which are never copied). A marker file says it is a snapshot: plans against it
leave secret references unread, and apply refuses it. docs/deploying.md shows the CI setup.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from reconciler.dns.formats import write_files
from reconciler.dns.reports import for_live, load_host_keys
from reconciler.errors import ReconcilerError
from reconciler.fsutil import atomic_write, json_bytes
from reconciler.mox import sconf
from reconciler.mox.admin import now_local
from reconciler.mox.config import Dynamic, Static
from reconciler.mox.live import ConfigPaths, read_live
from reconciler.mox.secret import redacted
from reconciler.pipeline import REPORT_FORMATS, SNAPSHOT_FILE, reports_dir_default
from reconciler.plan.inventory import INVENTORY_FILE, read_inventory, write_inventory

SNAPSHOT_VERSION = 1


class SnapshotError(ReconcilerError):
    """The snapshot cannot be written where asked."""


@dataclass(frozen=True)
class Snapshot:
    """What `snapshot` wrote."""

    out: Path
    files: tuple[Path, ...]
    domains: int


def _check_target(paths: ConfigPaths, out: Path) -> None:
    """OUT_DIR must not be the live config dir, and must be empty or an earlier snapshot."""
    if out.exists() and not out.is_dir():
        raise SnapshotError(f"{out}: not a directory")
    if out.exists() and os.path.samefile(out, paths.config_dir):
        raise SnapshotError(f"{out} is the live config dir; give another directory for the snapshot")
    if out.is_dir() and any(out.iterdir()) and not (out / SNAPSHOT_FILE).exists():
        raise SnapshotError(f"{out} is not empty and holds no earlier snapshot ({SNAPSHOT_FILE}); "
                            "give an empty or new directory")


def _config_text(value: Static | Dynamic, kind: type[Static] | type[Dynamic], name: str) -> bytes:
    """The config without secrets as sconf text, checked to read back to the same."""
    clean = redacted(value)
    try:
        text = sconf.write(clean)
    except sconf.WriteRefused as e:
        raise SnapshotError(f"{name}: cannot be written as a snapshot: {e}") from None
    if sconf.parse(text, kind, name) != clean:
        raise SnapshotError(f"{name}: does not read back the same after redaction; not written")
    return text.encode()


def take_snapshot(paths: ConfigPaths, out: Path) -> Snapshot:
    """Write the snapshot of the live config at `paths` into `out` (created)."""
    _check_target(paths, out)
    live = read_live(paths)
    mox_conf = _config_text(live.static, Static, str(paths.mox_conf))
    domains_conf = _config_text(live.dynamic, Dynamic, str(paths.domains_conf))
    inventory = read_inventory(paths.config_dir)
    host_keys = load_host_keys(paths, live.static)
    reports = [for_live(live, d, host_keys=host_keys) for d in sorted(live.dynamic.Domains)]
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for name, data in (("mox.conf", mox_conf), ("domains.conf", domains_conf)):
        atomic_write(out / name, data, 0o644)
        files.append(out / name)
    write_inventory(out, inventory)
    files.append(out / INVENTORY_FILE)
    snap_paths = ConfigPaths(out / "mox.conf")
    files += write_files(reports_dir_default(snap_paths), reports, REPORT_FORMATS)
    marker = {"version": SNAPSHOT_VERSION, "created": now_local().isoformat(), "config_dir": str(paths.config_dir),
              "domains_conf_sha256": live.digest, "secrets": "redacted", "dkim_private_keys": "not copied"}
    atomic_write(out / SNAPSHOT_FILE, json_bytes(marker), 0o644)
    files.append(out / SNAPSHOT_FILE)
    return Snapshot(out, tuple(files), len(reports))
